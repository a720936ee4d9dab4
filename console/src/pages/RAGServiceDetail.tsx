import { ConditionsTable, EventsTable, show, type Condition, useEvents, useLive } from "../detail";
import { age } from "../format";
import { Link } from "../router";
import type { RAGService } from "./RAGServices";

interface Detailed extends RAGService {
  spec?: RAGService["spec"] & {
    embedding?: { model?: string; dimension?: number };
    vectorStore?: { type?: string; endpoint?: string; collection?: string; storage?: string };
    chunking?: { chunkSize?: number; chunkOverlap?: number };
    retrieval?: { topK?: number };
  };
  status?: RAGService["status"] & { conditions?: Condition[] };
}

/** One RAGService: status, spec, sources, conditions and Events, all live. */
export function RAGServiceDetailPage(props: { namespace: string; name: string }) {
  const { namespace, name } = props;
  const ns = encodeURIComponent(namespace);
  const objects = useLive<Detailed>(
    `/apis/model.kubellm.io/v1alpha1/namespaces/${ns}/ragservices?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
    () => 0,
  );
  const events = useEvents(namespace, "RAGService", name);
  const obj = objects.items?.[0];
  const now = Date.now();
  const status = obj?.status || {};
  const spec = obj?.spec || {};

  return (
    <section aria-labelledby="detail-title">
      <p>
        <Link route={`ragservices?namespace=${ns}`}>← RAGServices in {namespace}</Link>
      </p>
      <h1 id="detail-title">
        RAGService {namespace}/{name}
      </h1>
      {objects.error && (
        <p class="error" role="alert">
          {objects.error}
        </p>
      )}
      {objects.items && !obj && <p class="empty">There is no RAGService {name} in {namespace} (it may have been deleted).</p>}
      {obj && (
        <div class="detail">
          <h2>Status</h2>
          <dl data-testid="status">
            <dt>Phase</dt>
            <dd data-testid="phase">{show(status.phase)}</dd>
            <dt>Ready</dt>
            <dd>
              {status.readyReplicas ?? 0}/{spec.replicas ?? 1}
            </dd>
            <dt>Indexed documents</dt>
            <dd>{status.indexedDocuments ?? 0}</dd>
            <dt>Endpoint</dt>
            <dd>{show(status.endpoint)}</dd>
            <dt>Message</dt>
            <dd>{show(status.message)}</dd>
            <dt>Age</dt>
            <dd>{age(obj.metadata.creationTimestamp, now)}</dd>
          </dl>
          <h2>Spec</h2>
          <dl>
            <dt>LLMService</dt>
            <dd>
              <Link route={`llmservices/${ns}/${encodeURIComponent(spec.llmServiceRef?.name || "")}`}>{show(spec.llmServiceRef?.name)}</Link>
            </dd>
            <dt>Embedding model</dt>
            <dd>{show(spec.embedding?.model)}</dd>
            <dt>Dimension</dt>
            <dd>{show(spec.embedding?.dimension)}</dd>
            <dt>Vector store</dt>
            <dd>{show(spec.vectorStore?.type)}</dd>
            <dt>Vector store endpoint</dt>
            <dd>{show(spec.vectorStore?.endpoint)}</dd>
            <dt>Collection</dt>
            <dd>{show(spec.vectorStore?.collection)}</dd>
            <dt>Chunk size</dt>
            <dd>{show(spec.chunking?.chunkSize)}</dd>
            <dt>Chunk overlap</dt>
            <dd>{show(spec.chunking?.chunkOverlap)}</dd>
            <dt>Top k</dt>
            <dd>{show(spec.retrieval?.topK)}</dd>
            <dt>Replicas</dt>
            <dd>{show(spec.replicas)}</dd>
          </dl>
          <h2 id="sources-title">Sources</h2>
          <table class="grid" aria-labelledby="sources-title">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">URI</th>
                <th scope="col">Refresh</th>
              </tr>
            </thead>
            <tbody>
              {(spec.sources || []).map((s) => (
                <tr key={s.name} data-source={s.name}>
                  <th scope="row">{s.name}</th>
                  <td>{s.type}</td>
                  <td>{s.uri}</td>
                  <td>{s.refreshInterval}</td>
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
