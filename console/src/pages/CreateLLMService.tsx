import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, request } from "../api";
import { errorText } from "../format";
import { navigate } from "../router";

const COLLECTION = "/apis/model.kubellm.io/v1alpha1";
const DRY_RUN_DELAY_MS = 300;

interface Form {
  name: string;
  model: string;
  quantization: string;
  maxModelLen: string;
  gpuMemoryUtilization: string;
  replicas: string;
  autoscaling: boolean;
  minReplicas: string;
  maxReplicas: string;
  waitingThreshold: string;
  clusters: string;
  scheduling: string;
}

const INITIAL: Form = {
  name: "",
  model: "",
  quantization: "",
  maxModelLen: "2048",
  gpuMemoryUtilization: "0.85",
  replicas: "1",
  autoscaling: false,
  minReplicas: "1",
  maxReplicas: "2",
  waitingThreshold: "5",
  clusters: "",
  scheduling: "Divided",
};

/** The API field path each form field writes; the server's causes come back with these paths. */
const FIELDS: Record<string, keyof Form> = {
  "metadata.name": "name",
  "spec.model": "model",
  "spec.quantization": "quantization",
  "spec.maxModelLen": "maxModelLen",
  "spec.gpuMemoryUtilization": "gpuMemoryUtilization",
  "spec.replicas": "replicas",
  "spec.autoscaling.minReplicas": "minReplicas",
  "spec.autoscaling.maxReplicas": "maxReplicas",
  "spec.autoscaling.waitingThreshold": "waitingThreshold",
  "spec.placement.clusterAffinity.clusterNames": "clusters",
  "spec.placement.replicaScheduling.replicaSchedulingType": "scheduling",
};

/** An integer when the text is one; else the text itself, for the server to refuse with its own words. */
function integer(text: string): number | string {
  return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
}

function body(form: Form, namespace: string): unknown {
  const clusters = form.clusters
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  return {
    apiVersion: "model.kubellm.io/v1alpha1",
    kind: "LLMService",
    metadata: { name: form.name, namespace },
    spec: {
      model: form.model,
      quantization: form.quantization,
      maxModelLen: integer(form.maxModelLen),
      gpuMemoryUtilization: form.gpuMemoryUtilization,
      replicas: integer(form.replicas),
      ...(form.autoscaling
        ? {
            autoscaling: {
              enabled: true,
              minReplicas: integer(form.minReplicas),
              maxReplicas: integer(form.maxReplicas),
              waitingThreshold: integer(form.waitingThreshold),
            },
          }
        : {}),
      placement: {
        ...(clusters.length ? { clusterAffinity: { clusterNames: clusters } } : {}),
        replicaScheduling: { replicaSchedulingType: form.scheduling },
      },
    },
  };
}

interface Problems {
  fields: Partial<Record<keyof Form, string>>;
  general: string[];
}

function problemsOf(err: unknown): Problems {
  const out: Problems = { fields: {}, general: [] };
  if (err instanceof ApiError && err.status.details?.causes?.length) {
    for (const cause of err.status.details.causes) {
      const key = FIELDS[cause.field || ""];
      const text = cause.message || cause.reason || "invalid";
      if (key && !out.fields[key]) out.fields[key] = text;
      else out.general.push(cause.field ? `${cause.field}: ${text}` : text);
    }
  } else {
    out.general.push(errorText(err));
  }
  return out;
}

async function post(form: Form, namespace: string, dryRun: boolean, signal?: AbortSignal): Promise<void> {
  const query = `?fieldValidation=Strict${dryRun ? "&dryRun=All" : ""}&fieldManager=kubellm-console`;
  await request(`${COLLECTION}/namespaces/${encodeURIComponent(namespace)}/llmservices${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body(form, namespace)),
    signal,
  });
}

/** Create an LLMService: the server validates it (a dry-run create) as the user types, and its field
 * errors are shown next to the fields they name. */
export function CreateLLMServicePage(props: { namespace: string }) {
  const { namespace } = props;
  const [form, setForm] = useState<Form>(INITIAL);
  const [touched, setTouched] = useState<Set<keyof Form>>(new Set());
  const [problems, setProblems] = useState<Problems>({ fields: {}, general: [] });
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
      post(form, namespace, true, abort.signal)
        .then(() => {
          setProblems({ fields: {}, general: [] });
          setChecked(true);
        })
        .catch((err: unknown) => {
          if (abort.signal.aborted) return;
          setProblems(problemsOf(err));
          setChecked(true);
        });
    }, DRY_RUN_DELAY_MS);
    return () => clearTimeout(timer);
  }, [form, namespace]);

  useEffect(() => () => pending.current?.abort(), []);

  const set = (key: keyof Form, value: string | boolean): void => {
    setForm((f) => ({ ...f, [key]: value }));
    setTouched((t) => (t.has(key) ? t : new Set([...t, key])));
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setSubmitted(true);
    setBusy(true);
    pending.current?.abort();
    try {
      await post(form, namespace, false);
      navigate(`llmservices?namespace=${encodeURIComponent(namespace)}`);
    } catch (err) {
      setProblems(problemsOf(err));
      setBusy(false);
    }
  };

  const shown = (key: keyof Form): string | undefined => (submitted || touched.has(key) ? problems.fields[key] : undefined);

  const field = (key: keyof Form, label: string, input: preact.JSX.Element, hint?: string) => {
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

  const text = (key: Exclude<keyof Form, "autoscaling">, extra: Record<string, string> = {}) => {
    const error = shown(key);
    return (
      <input
        id={`f-${key}`}
        name={key}
        value={form[key]}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `e-${key}` : undefined}
        onInput={(e) => set(key, (e.target as HTMLInputElement).value)}
        {...extra}
      />
    );
  };

  const general = submitted || touched.size > 0 ? problems.general : [];

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New LLMService in {namespace}</h1>
      <form class="create" onSubmit={submit} noValidate>
        {field("name", "Name", text("name", { autocomplete: "off" }))}
        {field("model", "Model", text("model", { placeholder: "Qwen/Qwen2.5-3B-Instruct" }))}
        {field(
          "quantization",
          "Quantization",
          <select
            id="f-quantization"
            value={form.quantization}
            onChange={(e) => set("quantization", (e.target as HTMLSelectElement).value)}
          >
            <option value="">none</option>
            <option value="awq">awq</option>
            <option value="gptq">gptq</option>
            <option value="fp8">fp8</option>
          </select>,
        )}
        {field("maxModelLen", "Max model length", text("maxModelLen", { inputMode: "numeric" }))}
        {field("gpuMemoryUtilization", "GPU memory utilization", text("gpuMemoryUtilization", { inputMode: "decimal" }))}
        {field("replicas", "Replicas", text("replicas", { inputMode: "numeric" }))}
        <fieldset>
          <legend>Autoscaling</legend>
          <label class="inline">
            <input
              type="checkbox"
              checked={form.autoscaling}
              onChange={(e) => set("autoscaling", (e.target as HTMLInputElement).checked)}
            />{" "}
            Autoscale on vLLM's waiting requests
          </label>
          {form.autoscaling && (
            <div>
              {field("minReplicas", "Min replicas", text("minReplicas", { inputMode: "numeric" }))}
              {field("maxReplicas", "Max replicas", text("maxReplicas", { inputMode: "numeric" }))}
              {field("waitingThreshold", "Waiting requests per replica", text("waitingThreshold", { inputMode: "numeric" }))}
            </div>
          )}
        </fieldset>
        <fieldset>
          <legend>Placement</legend>
          {field("clusters", "Clusters", text("clusters", { placeholder: "gpu-a, gpu-b" }), "Comma-separated; empty: any")}
          {field(
            "scheduling",
            "Replicas over clusters",
            <select
              id="f-scheduling"
              value={form.scheduling}
              onChange={(e) => set("scheduling", (e.target as HTMLSelectElement).value)}
            >
              <option value="Divided">Divided</option>
              <option value="Duplicated">Duplicated</option>
            </select>,
          )}
        </fieldset>
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
        <div class="actions">
          <button type="button" class="secondary" onClick={() => navigate(`llmservices?namespace=${encodeURIComponent(namespace)}`)}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </section>
  );
}
