import { useEffect, useState } from "preact/hooks";
import { ApiError, canI, getJSON, request } from "../api";
import { age, errorText } from "../format";
import { toYAML } from "../yaml";
import { Link } from "../router";
import { type Condition, ConditionsTable, EventsTable, show, useEvents, useLive } from "../detail";
import type { LLMService } from "./LLMServices";

interface ClusterPlacement {
  name: string;
  replicas?: number;
  readyReplicas?: number;
  phase?: string;
  message?: string;
}

interface Detailed extends LLMService {
  spec?: LLMService["spec"] & Record<string, unknown>;
  status?: LLMService["status"] & {
    replicas?: number;
    observedGeneration?: number;
    conditions?: Condition[];
    clusters?: ClusterPlacement[];
  };
}

const SPEC_FIELDS: [string, string][] = [
  ["model", "Model"],
  ["quantization", "Quantization"],
  ["maxModelLen", "Max model length"],
  ["gpuMemoryUtilization", "GPU memory utilization"],
  ["replicas", "Replicas"],
  ["image", "Image"],
  ["hfEndpoint", "Hugging Face endpoint"],
];

/** One LLMService: spec, status, placement per cluster, conditions and Events, all live. */
export function LLMServiceDetailPage(props: { namespace: string; name: string }) {
  const { namespace, name } = props;
  const ns = encodeURIComponent(namespace);
  const selector = encodeURIComponent(`metadata.name=${name}`);
  const objects = useLive<Detailed>(
    `/apis/model.kubellm.io/v1alpha1/namespaces/${ns}/llmservices?fieldSelector=${selector}`,
    () => 0,
  );
  const events = useEvents(namespace, "LLMService", name);
  const obj = objects.items?.[0];
  const now = Date.now();
  const [canEdit, setCanEdit] = useState(false);
  const [editing, setEditing] = useState(false);
  useEffect(() => {
    let live = true;
    void canI("patch", "model.kubellm.io", "llmservices", namespace).then((ok) => live && setCanEdit(ok));
    return () => {
      live = false;
    };
  }, [namespace]);
  const status = obj?.status || {};

  return (
    <section aria-labelledby="detail-title">
      <p>
        <Link route={`llmservices?namespace=${ns}`}>← LLMServices in {namespace}</Link>
      </p>
      <h1 id="detail-title">
        LLMService {namespace}/{name}
      </h1>
      {objects.error && (
        <p class="error" role="alert">
          {objects.error}
        </p>
      )}
      {objects.items && !obj && <p class="empty">There is no LLMService {name} in {namespace} (it may have been deleted).</p>}
      {obj && canEdit && !editing && (
        <button type="button" class="secondary" onClick={() => setEditing(true)}>
          Edit YAML
        </button>
      )}
      {obj && editing && <YamlEditor namespace={namespace} name={name} onDone={() => setEditing(false)} />}
      {obj && (
        <div class="detail">
          <h2>Status</h2>
          <dl data-testid="status">
            <dt>Phase</dt>
            <dd data-testid="phase">{show(status.phase)}</dd>
            <dt>Ready</dt>
            <dd>
              {status.readyReplicas ?? 0}/{status.replicas ?? 0}
            </dd>
            <dt>Endpoint</dt>
            <dd>{show(status.endpoint)}</dd>
            <dt>Message</dt>
            <dd>{show(status.message)}</dd>
            <dt>Age</dt>
            <dd>{age(obj.metadata.creationTimestamp, now)}</dd>
          </dl>
          <h2>Spec</h2>
          <dl>
            {SPEC_FIELDS.map(([key, label]) => [<dt key={`t-${key}`}>{label}</dt>, <dd key={`d-${key}`}>{show(obj.spec?.[key])}</dd>])}
            <dt>Autoscaling</dt>
            <dd>{show(obj.spec?.autoscaling)}</dd>
            <dt>Placement</dt>
            <dd>{show(obj.spec?.placement)}</dd>
          </dl>
          <h2 id="placement-title">Placement</h2>
          <table class="grid" aria-labelledby="placement-title">
            <thead>
              <tr>
                <th scope="col">Cluster</th>
                <th scope="col">Replicas</th>
                <th scope="col">Ready</th>
                <th scope="col">Phase</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {(status.clusters || []).map((c) => (
                <tr key={c.name} data-cluster={c.name}>
                  <th scope="row">{c.name}</th>
                  <td class="num">{c.replicas ?? 0}</td>
                  <td class="num">{c.readyReplicas ?? 0}</td>
                  <td>{c.phase}</td>
                  <td>{c.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <ConditionsTable conditions={status.conditions} now={now} />
        </div>
      )}
      <EventsTable events={events} now={now} />
    </section>
  );
}

const ITEM = (namespace: string, name: string): string =>
  `/apis/model.kubellm.io/v1alpha1/namespaces/${encodeURIComponent(namespace)}/llmservices/${encodeURIComponent(name)}`;

/** What the user owns of an object, for server-side apply: identity, labels, annotations and spec. */
function applyConfiguration(obj: Detailed & { apiVersion?: string; kind?: string }): unknown {
  const meta = obj.metadata as Detailed["metadata"] & { labels?: object; annotations?: object };
  return {
    apiVersion: obj.apiVersion || "model.kubellm.io/v1alpha1",
    kind: obj.kind || "LLMService",
    metadata: {
      name: meta.name,
      namespace: meta.namespace,
      ...(meta.labels ? { labels: meta.labels } : {}),
      ...(meta.annotations ? { annotations: meta.annotations } : {}),
    },
    spec: obj.spec || {},
  };
}

/** Edit the object as YAML and apply it server-side (field manager kubellm-console); the server's
 * message and field errors are shown under the editor; a conflict with another manager can be forced. */
function YamlEditor(props: { namespace: string; name: string; onDone: () => void }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [causes, setCauses] = useState<string[]>([]);
  const [conflict, setConflict] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const abort = new AbortController();
    getJSON<Detailed>(ITEM(props.namespace, props.name), abort.signal)
      .then((obj) => setText(toYAML(applyConfiguration(obj))))
      .catch((err: unknown) => !abort.signal.aborted && setError(errorText(err)));
    return () => abort.abort();
  }, [props.namespace, props.name]);

  const apply = async (force: boolean): Promise<void> => {
    setBusy(true);
    setError("");
    setCauses([]);
    setConflict(false);
    try {
      await request(`${ITEM(props.namespace, props.name)}?fieldManager=kubellm-console${force ? "&force=true" : ""}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/apply-patch+yaml" },
        body: text || "",
      });
      props.onDone();
    } catch (err) {
      setError(errorText(err));
      if (err instanceof ApiError) {
        setCauses((err.status.details?.causes || []).map((c) => (c.field ? `${c.field}: ${c.message}` : c.message || "")));
        setConflict(err.code === 409);
      }
      setBusy(false);
    }
  };

  return (
    <div class="yaml-editor">
      <h2 id="yaml-title">Edit YAML (server-side apply)</h2>
      {text === null && !error && <p>loading…</p>}
      {text !== null && (
        <textarea
          aria-labelledby="yaml-title"
          aria-describedby={error ? "yaml-error" : undefined}
          aria-invalid={error ? "true" : undefined}
          spellcheck={false}
          rows={Math.min(30, text.split("\n").length + 2)}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        />
      )}
      {error && (
        <div class="error" role="alert" id="yaml-error">
          <p>{error}</p>
          {causes.length > 1 && (
            <ul>
              {causes.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div class="actions">
        <button type="button" class="secondary" onClick={props.onDone}>
          Cancel
        </button>
        <button type="button" disabled={busy || text === null} onClick={() => void apply(false)}>
          Apply
        </button>
        {conflict && (
          <button type="button" class="danger" disabled={busy} onClick={() => void apply(true)}>
            Apply and take over the conflicting fields
          </button>
        )}
      </div>
    </div>
  );
}
