import { request } from "../api";
import { integer, useServerForm } from "../form";
import { navigate } from "../router";

const COLLECTION = "/apis/model.kubellm.io/v1alpha1";

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
const FIELDS: Record<string, keyof Form & string> = {
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
  const { form, set, submit, busy, field, text, footer } = useServerForm<Form>(
    INITIAL,
    FIELDS,
    (f, dryRun, signal) => post(f, namespace, dryRun, signal),
    [namespace],
  );
  const list = `llmservices?namespace=${encodeURIComponent(namespace)}`;

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New LLMService in {namespace}</h1>
      <form class="create" onSubmit={(e) => void submit(e, () => navigate(list))} noValidate>
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
