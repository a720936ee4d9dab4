import { useEffect, useMemo, useState } from "preact/hooks";
import { canI } from "../api";
import { ConfirmDelete } from "../dialog";
import { age, errorText } from "../format";
import { NamespaceSelect } from "../namespaces";
import { Link } from "../router";
import { listWatch, type KubeObject, type Snapshot } from "../watch";

const API = "/apis/model.kubellm.io/v1alpha1";

export interface RAGService extends KubeObject {
  spec?: {
    llmServiceRef?: { name?: string };
    embedding?: { model?: string };
    vectorStore?: { type?: string };
    sources?: { name?: string; type?: string; uri?: string; refreshInterval?: string }[];
    replicas?: number;
  };
  status?: { phase?: string; readyReplicas?: number; indexedDocuments?: number; endpoint?: string; message?: string };
}

/** RAGServices of a namespace, live (list+watch); delete when a SelfSubjectAccessReview allows it. */
export function RAGServicesPage(props: { namespace: string; onNamespace: (ns: string) => void }) {
  const { namespace } = props;
  const [snapshot, setSnapshot] = useState<Snapshot<RAGService> | null>(null);
  const [error, setError] = useState("");
  const [canDelete, setCanDelete] = useState(false);
  const [canCreate, setCanCreate] = useState(false);
  const [confirming, setConfirming] = useState<RAGService | null>(null);
  const now = Date.now();
  const collection = namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}/ragservices` : `${API}/ragservices`;

  useEffect(() => {
    setSnapshot(null);
    return listWatch<RAGService>(collection, {
      onChange: (s) => {
        setError("");
        setSnapshot({ ...s });
      },
      onError: (err) => setError(errorText(err)),
    });
  }, [collection]);

  useEffect(() => {
    let live = true;
    setCanDelete(false);
    setCanCreate(false);
    void canI("delete", "model.kubellm.io", "ragservices", namespace).then((ok) => live && setCanDelete(ok));
    if (namespace) void canI("create", "model.kubellm.io", "ragservices", namespace).then((ok) => live && setCanCreate(ok));
    return () => {
      live = false;
    };
  }, [namespace]);

  const rows = useMemo(
    () => (snapshot ? [...snapshot.items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) : []),
    [snapshot?.revision],
  );

  const itemPath = (r: RAGService): string =>
    `${API}/namespaces/${encodeURIComponent(r.metadata.namespace || "")}/ragservices/${encodeURIComponent(r.metadata.name)}`;

  return (
    <section aria-labelledby="rag-title">
      <div class="toolbar">
        <h1 id="rag-title">RAGServices</h1>
        <NamespaceSelect namespace={namespace} onNamespace={props.onNamespace} />
        {canCreate && (
          <Link route={`ragservices/new?namespace=${encodeURIComponent(namespace)}`} class="button">
            New RAGService
          </Link>
        )}
        <span class="sync" role="status" aria-live="polite">
          {snapshot ? `${rows.length} in ${namespace || "all namespaces"}, live` : "loading…"}
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table class="grid" aria-label={`RAGServices in ${namespace || "all namespaces"}`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">LLMService</th>
            <th scope="col">Embedding</th>
            <th scope="col">Vector store</th>
            <th scope="col">Sources</th>
            <th scope="col">Ready</th>
            <th scope="col">Documents</th>
            <th scope="col">Phase</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Age</th>
            {canDelete && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.metadata.uid || r.metadata.name} data-name={r.metadata.name}>
              <th scope="row">
                <Link route={`ragservices/${encodeURIComponent(r.metadata.namespace || "")}/${encodeURIComponent(r.metadata.name)}`}>
                  {r.metadata.name}
                </Link>
              </th>
              <td>{r.spec?.llmServiceRef?.name}</td>
              <td>{r.spec?.embedding?.model}</td>
              <td>{r.spec?.vectorStore?.type}</td>
              <td class="num">{r.spec?.sources?.length ?? 0}</td>
              <td class="num">
                {r.status?.readyReplicas ?? 0}/{r.spec?.replicas ?? 1}
              </td>
              <td class="num">{r.status?.indexedDocuments ?? 0}</td>
              <td>
                <span data-testid="phase" title={r.status?.message}>
                  {r.status?.phase}
                </span>
              </td>
              <td class="endpoint">{r.status?.endpoint}</td>
              <td>{age(r.metadata.creationTimestamp, now)}</td>
              {canDelete && (
                <td class="actions">
                  <button type="button" class="secondary" aria-label={`Delete ${r.metadata.name}`} onClick={() => setConfirming(r)}>
                    Delete
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {snapshot && rows.length === 0 && <p class="empty">No RAGServices in {namespace || "any namespace"}.</p>}
      {confirming && (
        <ConfirmDelete kind="RAGService" name={confirming.metadata.name} path={itemPath(confirming)} onClose={() => setConfirming(null)}>
          <p>Its index and retrieval endpoint are removed. Namespace: {confirming.metadata.namespace}.</p>
        </ConfirmDelete>
      )}
    </section>
  );
}
