import { useEffect, useMemo, useState } from "preact/hooks";
import { canI, request } from "../api";
import { age, errorText } from "../format";
import { Link } from "../router";
import { listWatch, type KubeObject, type Snapshot } from "../watch";

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface GPU {
  model: string;
  count?: number;
  allocatable?: number;
  available?: number;
}

const GROUP = "cluster.kubellm.io";
const COLLECTION = "/apis/cluster.kubellm.io/v1alpha1/clusters";

export interface Cluster extends KubeObject {
  spec?: { region?: string; zone?: string; unschedulable?: boolean };
  status?: { conditions?: Condition[]; kubernetesVersion?: string; nodeCount?: number; gpus?: GPU[] };
}

/** The status of a cluster's Ready condition: "True", "False" or "Unknown". */
export function readyCondition(c: Cluster): string {
  return c.status?.conditions?.find((cond) => cond.type === "Ready")?.status || "Unknown";
}

export function GpuBar({ gpu, cluster }: { gpu: GPU; cluster?: string }) {
  const total = gpu.allocatable ?? gpu.count ?? 0;
  const free = Math.min(gpu.available ?? 0, total);
  return (
    <div class="gpu">
      <span class="gpu-label">
        {gpu.model}: {free}/{total} free
      </span>
      <meter min={0} max={Math.max(total, 1)} value={free}
        aria-label={`${cluster ? `${cluster}: ` : ""}${gpu.model} GPUs free`} />
    </div>
  );
}

export function ClustersPage() {
  const [snapshot, setSnapshot] = useState<Snapshot<Cluster> | null>(null);
  const [error, setError] = useState("");
  const [canPatch, setCanPatch] = useState(false);
  const [canCreate, setCanCreate] = useState(false);
  const now = Date.now();

  useEffect(() => {
    let live = true;
    void Promise.all([canI("patch", GROUP, "clusters"), canI("create", GROUP, "clusters")]).then(([patch, create]) => {
      if (!live) return;
      setCanPatch(patch);
      setCanCreate(create);
    });
    return () => {
      live = false;
    };
  }, []);

  const cordon = async (c: Cluster, unschedulable: boolean): Promise<void> => {
    try {
      await request(`${COLLECTION}/${encodeURIComponent(c.metadata.name)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/merge-patch+json" },
        body: JSON.stringify({ spec: { unschedulable } }),
      });
    } catch (err) {
      setError(errorText(err));
    }
  };

  useEffect(
    () =>
      listWatch<Cluster>(COLLECTION, {
        onChange: (s) => {
          setError("");
          setSnapshot({ ...s });
        },
        onError: (err) => setError(errorText(err)),
      }),
    [],
  );

  const rows = useMemo(
    () => (snapshot ? [...snapshot.items.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) : []),
    [snapshot?.revision],
  );

  return (
    <section aria-labelledby="clusters-title">
      <div class="toolbar">
        <h1 id="clusters-title">Clusters</h1>
        {canCreate && (
          <Link route="clusters/new" class="button">
            Register a cluster
          </Link>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table class="grid" aria-label="Member clusters">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Conditions</th>
            <th scope="col">Version</th>
            <th scope="col">Nodes</th>
            <th scope="col">GPUs (free/total)</th>
            <th scope="col">Region</th>
            <th scope="col">Age</th>
            {canPatch && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => (
            <tr key={c.metadata.uid || c.metadata.name} data-name={c.metadata.name}>
              <th scope="row">
                {c.metadata.name}
                {c.spec?.unschedulable ? " (cordoned)" : ""}
              </th>
              <td>
                {(c.status?.conditions || []).map((cond) => (
                  <span
                    key={cond.type}
                    class={`cond cond-${cond.status === "True" ? "true" : "false"}`}
                    title={cond.message || cond.reason}
                  >
                    {cond.type}={cond.status}
                  </span>
                ))}
              </td>
              <td>{c.status?.kubernetesVersion}</td>
              <td class="num">{c.status?.nodeCount ?? ""}</td>
              <td>
                {(c.status?.gpus || []).map((g) => (
                  <GpuBar key={g.model} gpu={g} />
                ))}
              </td>
              <td>{[c.spec?.region, c.spec?.zone].filter(Boolean).join(" / ")}</td>
              <td>{age(c.metadata.creationTimestamp, now)}</td>
              {canPatch && (
                <td class="actions">
                  <button type="button" class="secondary" onClick={() => void cordon(c, !c.spec?.unschedulable)}
                    aria-label={`${c.spec?.unschedulable ? "Uncordon" : "Cordon"} ${c.metadata.name}`}>
                    {c.spec?.unschedulable ? "Uncordon" : "Cordon"}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {snapshot && rows.length === 0 && <p class="empty">No member clusters are registered.</p>}
    </section>
  );
}
