import { Component } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { canI, request } from "../api";
import { ConfirmDelete } from "../dialog";
import { NamespaceSelect } from "../namespaces";
import { age, errorText } from "../format";
import { Link } from "../router";
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
  /** What the user may do here (SelfSubjectAccessReview); the same object between renders. */
  actions: Actions;
}

interface Actions {
  scale: ((obj: LLMService) => void) | null;
  remove: ((obj: LLMService) => void) | null;
}

/** One table row, rendered again only when its object (a new one per watch event), the clock or the
 * user's permissions change. */
class Row extends Component<RowProps> {
  shouldComponentUpdate(next: RowProps): boolean {
    return next.obj !== this.props.obj || next.now !== this.props.now || next.actions !== this.props.actions;
  }

  render({ obj, now, actions }: RowProps) {
    const spec = obj.spec || {};
    const status = obj.status || {};
    const phase = status.phase || "";
    return (
      <tr data-name={obj.metadata.name}>
        <th scope="row">
          <Link route={`llmservices/${encodeURIComponent(obj.metadata.namespace || "")}/${encodeURIComponent(obj.metadata.name)}`}>
            {obj.metadata.name}
          </Link>
        </th>
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
        {(actions.scale || actions.remove) && (
          <td class="actions">
            {actions.scale && (
              <button type="button" class="secondary" onClick={() => actions.scale?.(obj)}
                aria-label={`Scale ${obj.metadata.name}`}>
                Scale
              </button>
            )}
            {actions.remove && (
              <button type="button" class="secondary" onClick={() => actions.remove?.(obj)}
                aria-label={`Delete ${obj.metadata.name}`}>
                Delete
              </button>
            )}
          </td>
        )}
      </tr>
    );
  }
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
  const [snapshot, setSnapshot] = useState<Snapshot<LLMService> | null>(null);
  const [error, setError] = useState("");
  const [synced, setSynced] = useState(false);
  const [canDelete, setCanDelete] = useState(false);
  const [canScale, setCanScale] = useState(false);
  const [canCreate, setCanCreate] = useState(false);
  const [scaling, setScaling] = useState<LLMService | null>(null);
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
    setCanScale(false);
    setCanCreate(false);
    setRbacChecked(false);
    void Promise.all([
      canI("delete", GROUP, "llmservices", namespace),
      canI("patch", GROUP, "llmservices", namespace, "scale"),
      namespace ? canI("create", GROUP, "llmservices", namespace) : Promise.resolve(false),
    ]).then(([remove, scale, create]) => {
      if (!live) return;
      setCanDelete(remove);
      setCanScale(scale);
      setCanCreate(create);
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

  const actions = useMemo<Actions>(
    () => ({ scale: canScale ? setScaling : null, remove: canDelete ? setConfirming : null }),
    [canScale, canDelete],
  );
  const anyAction = actions.scale !== null || actions.remove !== null;

  return (
    <section aria-labelledby="llms-title" data-permissions={rbacChecked ? "checked" : "pending"}>
      <div class="toolbar">
        <h1 id="llms-title">LLMServices</h1>
        <NamespaceSelect namespace={namespace} onNamespace={props.onNamespace} />
        {canCreate && (
          <Link route={`llmservices/new?namespace=${encodeURIComponent(namespace)}`} class="button">
            New LLMService
          </Link>
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
            {anyAction && (
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
              actions={actions}
            />
          ))}
        </tbody>
      </table>
      {synced && rows.length === 0 && <p class="empty">No LLMServices in {namespace || "any namespace"}.</p>}
      {confirming && (
        <ConfirmDelete kind="LLMService" name={confirming.metadata.name} path={itemPath(confirming)} onClose={() => setConfirming(null)}>
          <p>Its replicas on every member cluster are removed. Namespace: {confirming.metadata.namespace}.</p>
        </ConfirmDelete>
      )}
      {scaling && <ScaleDialog obj={scaling} onClose={() => setScaling(null)} />}
    </section>
  );
}

function itemPath(obj: LLMService): string {
  const { name, namespace } = obj.metadata;
  return `${COLLECTION}/namespaces/${encodeURIComponent(namespace || "")}/llmservices/${encodeURIComponent(name)}`;
}

/** Scale through the scale subresource (a merge patch of spec.replicas); the server's message if it refuses. */
function ScaleDialog(props: { obj: LLMService; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [replicas, setReplicas] = useState(String(props.obj.spec?.replicas ?? 1));
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const { name } = props.obj.metadata;

  useEffect(() => {
    ref.current?.showModal();
  }, []);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const value = Number(replicas);
      await request(`${itemPath(props.obj)}/scale`, {
        method: "PATCH",
        headers: { "Content-Type": "application/merge-patch+json" },
        body: JSON.stringify({ spec: { replicas: Number.isInteger(value) && replicas.trim() !== "" ? value : replicas } }),
      });
      ref.current?.close();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} aria-labelledby="scale-title" onClose={props.onClose}>
      <form onSubmit={submit}>
        <h2 id="scale-title">Scale LLMService {name}</h2>
        <label for="scale-replicas">Replicas</label>{" "}
        <input id="scale-replicas" inputMode="numeric" value={replicas} aria-describedby={error ? "scale-error" : undefined}
          onInput={(e) => setReplicas((e.target as HTMLInputElement).value)} />
        {error && (
          <p class="error" role="alert" id="scale-error">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="button" class="secondary" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Scale {name}
          </button>
        </div>
      </form>
    </dialog>
  );
}
