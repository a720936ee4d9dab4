import { request } from "../api";
import { integer, useServerForm } from "../form";
import { navigate } from "../router";

const COLLECTION = "/apis/model.kubellm.io/v1alpha1";

interface Form {
  name: string;
  llmService: string;
  embeddingModel: string;
  dimension: string;
  storeType: string;
  storeEndpoint: string;
  storeCollection: string;
  sourceName: string;
  sourceType: string;
  sourceUri: string;
  refreshInterval: string;
  chunkSize: string;
  chunkOverlap: string;
  topK: string;
  replicas: string;
}

const INITIAL: Form = {
  name: "",
  llmService: "",
  embeddingModel: "",
  dimension: "",
  storeType: "chromadb",
  storeEndpoint: "",
  storeCollection: "",
  sourceName: "",
  sourceType: "git",
  sourceUri: "",
  refreshInterval: "",
  chunkSize: "512",
  chunkOverlap: "64",
  topK: "4",
  replicas: "1",
};

/** The API field path each form field writes; the server's causes come back with these paths. */
const FIELDS: Record<string, keyof Form> = {
  "metadata.name": "name",
  "spec.llmServiceRef.name": "llmService",
  "spec.embedding.model": "embeddingModel",
  "spec.embedding.dimension": "dimension",
  "spec.vectorStore.type": "storeType",
  "spec.vectorStore.endpoint": "storeEndpoint",
  "spec.vectorStore.collection": "storeCollection",
  "spec.sources[0].name": "sourceName",
  "spec.sources[0].type": "sourceType",
  "spec.sources[0].uri": "sourceUri",
  "spec.sources[0].refreshInterval": "refreshInterval",
  "spec.chunking.chunkSize": "chunkSize",
  "spec.chunking.chunkOverlap": "chunkOverlap",
  "spec.retrieval.topK": "topK",
  "spec.replicas": "replicas",
};

function body(form: Form, namespace: string): unknown {
  const source = form.sourceName || form.sourceUri;
  return {
    apiVersion: "model.kubellm.io/v1alpha1",
    kind: "RAGService",
    metadata: { name: form.name, namespace },
    spec: {
      llmServiceRef: { name: form.llmService },
      embedding: { model: form.embeddingModel, ...(form.dimension.trim() ? { dimension: integer(form.dimension) } : {}) },
      vectorStore: {
        type: form.storeType,
        ...(form.storeEndpoint ? { endpoint: form.storeEndpoint } : {}),
        ...(form.storeCollection ? { collection: form.storeCollection } : {}),
      },
      ...(source
        ? {
            sources: [
              {
                name: form.sourceName,
                type: form.sourceType,
                uri: form.sourceUri,
                ...(form.refreshInterval ? { refreshInterval: form.refreshInterval } : {}),
              },
            ],
          }
        : {}),
      chunking: { chunkSize: integer(form.chunkSize), chunkOverlap: integer(form.chunkOverlap) },
      retrieval: { topK: integer(form.topK) },
      replicas: integer(form.replicas),
    },
  };
}

async function post(form: Form, namespace: string, dryRun: boolean, signal?: AbortSignal): Promise<void> {
  const query = `?fieldValidation=Strict${dryRun ? "&dryRun=All" : ""}&fieldManager=kubellm-console`;
  await request(`${COLLECTION}/namespaces/${encodeURIComponent(namespace)}/ragservices${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body(form, namespace)),
    signal,
  });
}

/** Create a RAGService: validated by a server dry-run as the user types, its field errors next to the fields. */
export function CreateRAGServicePage(props: { namespace: string }) {
  const { namespace } = props;
  const { form, set, submit, busy, field, text, footer } = useServerForm<Form>(
    INITIAL,
    FIELDS,
    (f, dryRun, signal) => post(f, namespace, dryRun, signal),
    [namespace],
  );
  const list = `ragservices?namespace=${encodeURIComponent(namespace)}`;
  const select = (key: "storeType" | "sourceType", options: string[]) => (
    <select id={`f-${key}`} value={form[key]} onChange={(e) => set(key, (e.target as HTMLSelectElement).value)}>
      {options.map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
    </select>
  );

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New RAGService in {namespace}</h1>
      <form class="create" onSubmit={(e) => void submit(e, () => navigate(list))} noValidate>
        {field("name", "Name", text("name", { autocomplete: "off" }))}
        {field("llmService", "LLMService", text("llmService", { autocomplete: "off" }), "The LLMService in this namespace that answers")}
        <fieldset>
          <legend>Embedding</legend>
          {field("embeddingModel", "Embedding model", text("embeddingModel", { placeholder: "paraphrase-multilingual-MiniLM-L12-v2" }))}
          {field("dimension", "Dimension", text("dimension", { inputMode: "numeric" }), "Empty: the model's own")}
        </fieldset>
        <fieldset>
          <legend>Vector store</legend>
          {field("storeType", "Vector store type", select("storeType", ["chromadb", "milvus", "qdrant", "weaviate", "pgvector"]))}
          {field("storeEndpoint", "Vector store endpoint", text("storeEndpoint"), "Empty (chromadb only): provisioned by the server")}
          {field("storeCollection", "Collection", text("storeCollection"), "Empty: the RAGService's name")}
        </fieldset>
        <fieldset>
          <legend>Documents</legend>
          {field("sourceName", "Source name", text("sourceName", { autocomplete: "off" }))}
          {field("sourceType", "Source type", select("sourceType", ["git", "url", "s3"]))}
          {field("sourceUri", "Source URI", text("sourceUri"))}
          {field("refreshInterval", "Refresh interval", text("refreshInterval", { placeholder: "5m" }), "Empty: index once")}
        </fieldset>
        <fieldset>
          <legend>Chunking and retrieval</legend>
          {field("chunkSize", "Chunk size", text("chunkSize", { inputMode: "numeric" }))}
          {field("chunkOverlap", "Chunk overlap", text("chunkOverlap", { inputMode: "numeric" }))}
          {field("topK", "Chunks per query (top k)", text("topK", { inputMode: "numeric" }))}
        </fieldset>
        {field("replicas", "Replicas", text("replicas", { inputMode: "numeric" }))}
        {footer()}
        <div class="actions">
          <button type="button" class="secondary" onClick={() => navigate(list)}>
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
