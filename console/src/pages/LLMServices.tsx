import { Component } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { canI, getJSON } from "../api";
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
}

/** One table row, rendered again only when its object (a new one per watch event) or the clock changes. */
class Row extends Component<RowProps> {
  shouldComponentUpdate(next: RowProps): boolean {
    return next.obj !== this.props.obj || next.now !== this.props.now;
  }

  render({ obj, now }: RowProps) {
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
  const [canCreate, setCanCreate] = useState(false);
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
    void canI("create", GROUP, "llmservices", namespace).then((ok) => live && setCanCreate(ok));
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

  const choices = namespaces && namespace && !namespaces.includes(namespace) ? [...namespaces, namespace] : namespaces;

  return (
    <section aria-labelledby="llms-title">
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
        {canCreate && <span class="hint" data-testid="can-create">You may create LLMServices here.</span>}
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
          </tr>
        </thead>
        <tbody>
          {rows.map((obj) => (
            <Row key={obj.metadata.uid || `${obj.metadata.namespace}/${obj.metadata.name}`} obj={obj} now={now} />
          ))}
        </tbody>
      </table>
      {synced && rows.length === 0 && <p class="empty">No LLMServices in {namespace || "any namespace"}.</p>}
    </section>
  );
}
