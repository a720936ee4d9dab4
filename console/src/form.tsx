// A create form validated by the server as the user types: the form is sent as a dry-run create 300 ms
// after the last keystroke (an earlier check cancelled), and the server's field errors (details.causes)
// are shown next to the fields they name. Used by the LLMService and RAGService create pages.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api";
import { errorText } from "./format";

const DRY_RUN_DELAY_MS = 300;

/** An integer when the text is one; else the text itself, for the server to refuse with its own words. */
export function integer(text: string): number | string {
  return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
}

export interface Problems<K extends string> {
  fields: Partial<Record<K, string>>;
  general: string[];
}

/** The server's causes by form field (`fields` maps an API field path to the form field writing it). */
export function problemsOf<K extends string>(err: unknown, fields: Record<string, K>): Problems<K> {
  const out: Problems<K> = { fields: {}, general: [] };
  if (err instanceof ApiError && err.status.details?.causes?.length) {
    for (const cause of err.status.details.causes) {
      const key = fields[cause.field || ""];
      const text = cause.message || cause.reason || "invalid";
      if (key && !out.fields[key]) out.fields[key] = text;
      else out.general.push(cause.field ? `${cause.field}: ${text}` : text);
    }
  } else {
    out.general.push(errorText(err));
  }
  return out;
}

type Post<F> = (form: F, dryRun: boolean, signal?: AbortSignal) => Promise<void>;

/** The state of a server-validated form: `post` sends it (as a dry run while typing). */
export function useServerForm<F extends object>(initial: F, fieldsOf: Record<string, keyof F & string>, post: Post<F>, deps: unknown[]) {
  type K = keyof F & string;
  const [form, setForm] = useState<F>(initial);
  const [touched, setTouched] = useState<Set<K>>(new Set());
  const [problems, setProblems] = useState<Problems<K>>({ fields: {}, general: [] });
  const [checked, setChecked] = useState(false);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const pending = useRef<AbortController | null>(null);

  useEffect(() => {
    if (touched.size === 0) return undefined;
    setChecked(false);
    const timer = setTimeout(() => {
      pending.current?.abort();
      const abort = new AbortController();
      pending.current = abort;
      post(form, true, abort.signal)
        .then(() => {
          setProblems({ fields: {}, general: [] });
          setChecked(true);
        })
        .catch((err: unknown) => {
          if (abort.signal.aborted) return;
          setProblems(problemsOf(err, fieldsOf));
          setChecked(true);
        });
    }, DRY_RUN_DELAY_MS);
    return () => clearTimeout(timer);
  }, [form, ...deps]);

  useEffect(() => () => pending.current?.abort(), []);

  const set = (key: K, value: string | boolean): void => {
    setForm((f) => ({ ...f, [key]: value }));
    setTouched((t) => (t.has(key) ? t : new Set([...t, key])));
  };

  /** Create for real; `done` runs when the server accepted it. */
  const submit = async (e: Event, done: () => void): Promise<void> => {
    e.preventDefault();
    setSubmitted(true);
    setBusy(true);
    pending.current?.abort();
    try {
      await post(form, false);
      done();
    } catch (err) {
      setProblems(problemsOf(err, fieldsOf));
      setBusy(false);
    }
  };

  const shown = (key: K): string | undefined => (submitted || touched.has(key) ? problems.fields[key] : undefined);

  /** A labelled field with its hint and the server's error for it. */
  const field = (key: K, label: string, input: preact.JSX.Element, hint?: string) => {
    const error = shown(key);
    return (
      <div class={`field${error ? " invalid" : ""}`}>
        <label for={`f-${key}`}>{label}</label>
        {input}
        {hint && <small id={`h-${key}`}>{hint}</small>}
        {error && (
          <p class="field-error" id={`e-${key}`} data-field={key}>
            {error}
          </p>
        )}
      </div>
    );
  };

  /** A text input for `key`, invalid (and described by the error) while the server refuses it. */
  const text = (key: K, extra: Record<string, string> = {}) => {
    const error = shown(key);
    return (
      <input
        id={`f-${key}`}
        name={key}
        value={String(form[key])}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `e-${key}` : undefined}
        onInput={(e) => set(key, (e.target as HTMLInputElement).value)}
        {...extra}
      />
    );
  };

  /** The server's messages that name no field of the form, and the check's state. */
  const footer = () => {
    const general = submitted || touched.size > 0 ? problems.general : [];
    return (
      <>
        {general.length > 0 && (
          <ul class="error" role="alert">
            {general.map((g) => (
              <li key={g}>{g}</li>
            ))}
          </ul>
        )}
        <p class="sync" role="status" aria-live="polite">
          {touched.size === 0 ? "" : !checked ? "checking…" : Object.keys(problems.fields).length || problems.general.length ? "" : "valid"}
        </p>
      </>
    );
  };

  return { form, set, submit, busy, field, text, footer };
}
