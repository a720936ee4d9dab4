import { Component } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { canI, getJSON, request } from "../api";
import { age, errorText } from "../format";
import { listWatch, type KubeObject, type Snapshot } from "../watch";

const GROUP = "model.kubellm.io";
const COLLECTION = "/apis/model.kubellm.io/v1alpha1";

export interface LLMService extends KubeObject {
  spec?: { model?: string; quantization?: string; replicas?: number };
  status?: { phase?: string; readyReplicas?: number; endpoint?: string; message?: string };
}

interface RowProps {
  obj: LLMService;
  now: number;
  /** Set when the user may delete LLMServices here (SelfSubjectAccessReview); stable between renders. */
  onDelete: ((obj: LLMService) => void) | null;
}

/** One table row, rendered again only when its object (a new one per watch event), the clock or the
 * user's permissions change. */
class Row extends Component<RowProps> {
  shouldComponentUpdate(next: RowProps): boolean {
    return next.obj !== this.props.obj || next.now !== this.props.now || next.onDelete !== this.props.onDelete;
  }

  render({ obj, now, onDelete }: RowProps) {
    const spec = obj.spec || {};
    const status = obj.status || {};
    const phase = status.phase || "";
    return (
      <tr data-name={obj.metadata.name}>
        <th scope="row">{obj.metadata.name}</th>
        <td>{spec.model}</td>
        <td>{spec.quantization}</td>
        <td class="num">{spec.replicas ?? ""}</td>
        <td class="num">{status.readyReplicas ?? 0}</td>
        <td>
          <span class={`phase phase-${phase.toLowerCase() || "none"}`} data-testid="phase" title={status.message}>
            {phase}
          </span>
        </td>
        <td class="endpoint">{status.endpoint}</td>
        <td>{age(obj.metadata.creationTimestamp, now)}</td>
        {onDelete && (
          <td>
            <button type="button" class="secondary" onClick={() => onDelete(obj)}
              aria-label={`Delete ${obj.metadata.name}`}>
              Delete
            </button>
          </td>
        )}
      </tr>
    );
  }
}

/** The namespaces the user may list, or null when they cannot be listed (then a name is typed). */
function useNamespaces(): string[] | null {
  const [names, setNames] = useState<string[] | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    getJSON<{ items: KubeObject[] }>("/api/v1/namespaces", abort.signal)
      .then((list) => setNames(list.items.map((n) => n.metadata.name).sort()))
      .catch(() => setNames(null));
    return () => abort.abort();
  }, []);
  return names;
}

function useClock(periodMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(timer);
  }, [periodMs]);
  return now;
}

export function LLMServicesPage(props: { namespace: string; onNamespace: (ns: string) => void }) {
  const { namespace } = props;
  const namespaces = useNamespaces();
  const [snapshot, setSnapshot] = useState<Snapshot<LLMService> | null>(null);
  const [error, setError] = useState("");
  const [synced, setSynced] = useState(false);
  const [canDelete, setCanDelete] = useState(false);
  const [rbacChecked, setRbacChecked] = useState(false);
  const [confirming, setConfirming] = useState<LLMService | null>(null);
  const now = useClock(10_000);

  useEffect(() => {
    setSnapshot(null);
    setError("");
    setSynced(false);
    const path = namespace ? `${COLLECTION}/namespaces/${encodeURIComponent(namespace)}/llmservices` : `${COLLECTION}/llmservices`;
    return listWatch<LLMService>(path, {
      onChange: (s) => {
        setError("");
        setSnapshot({ ...s });
      },
      onError: (err) => setError(errorText(err)),
      onSynced: setSynced,
    });
  }, [namespace]);

  useEffect(() => {
    let live = true;
    setCanDelete(false);
    setRbacChecked(false);
    void canI("delete", GROUP, "llmservices", namespace).then((ok) => {
      if (!live) return;
      setCanDelete(ok);
      setRbacChecked(true);
    });
    return () => {
      live = false;
    };
  }, [namespace]);

  const rows = useMemo(() => {
    if (!snapshot) return [];
    return [...snapshot.items.values()].sort((a, b) =>
      a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
    );
  }, [snapshot?.revision]);

  const onDelete = useMemo(() => (canDelete ? (obj: LLMService) => setConfirming(obj) : null), [canDelete]);

  const choices = namespaces && namespace && !namespaces.includes(namespace) ? [...namespaces, namespace] : namespaces;

  return (
    <section aria-labelledby="llms-title" data-permissions={rbacChecked ? "checked" : "pending"}>
      <div class="toolbar">
        <h1 id="llms-title">LLMServices</h1>
        <label for="namespace">Namespace</label>
        {choices ? (
          <select id="namespace" value={namespace} onChange={(e) => props.onNamespace((e.target as HTMLSelectElement).value)}>
            <option value="">All namespaces</option>
            {choices.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        ) : (
          <input
            id="namespace"
            value={namespace}
            onChange={(e) => props.onNamespace((e.target as HTMLInputElement).value.trim())}
          />
        )}
        <span class="sync" role="status" aria-live="polite">
          {synced ? `${rows.length} LLMService${rows.length === 1 ? "" : "s"}, live` : "loading…"}
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table class="grid" aria-label={`LLMServices in ${namespace || "all namespaces"}`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Model</th>
            <th scope="col">Quant</th>
            <th scope="col">Replicas</th>
            <th scope="col">Ready</th>
            <th scope="col">Phase</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Age</th>
            {onDelete && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {rows.map((obj) => (
            <Row
              key={obj.metadata.uid || `${obj.metadata.namespace}/${obj.metadata.name}`}
              obj={obj}
              now={now}
              onDelete={onDelete}
            />
          ))}
        </tbody>
      </table>
      {synced && rows.length === 0 && <p class="empty">No LLMServices in {namespace || "any namespace"}.</p>}
      {confirming && <ConfirmDelete obj={confirming} onClose={() => setConfirming(null)} />}
    </section>
  );
}

/** A modal dialog that asks before deleting; the server's message is shown if it refuses. The row goes
 * away when the watch delivers the deletion. */
function ConfirmDelete(props: { obj: LLMService; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const { name, namespace } = props.obj.metadata;

  useEffect(() => {
    ref.current?.showModal();
  }, []);

  const remove = async (): Promise<void> => {
    setBusy(true);
    setError("");
    try {
      await request(`${COLLECTION}/namespaces/${encodeURIComponent(namespace || "")}/llmservices/${encodeURIComponent(name)}`, {
        method: "DELETE",
      });
      props.onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={props.onClose}>
      <h2 id="confirm-title">Delete LLMService {name}?</h2>
      <p>
        Its replicas on every member cluster are removed. Namespace: {namespace}.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="button" class="secondary" onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>
          Delete {name}
        </button>
      </div>
    </dialog>
  );
}
