import { useEffect, useMemo, useState } from "preact/hooks";
import { age, errorText } from "../format";
import { Link } from "../router";
import { listWatch, type KubeObject, type Snapshot } from "../watch";
import { type Cluster, GpuBar, readyCondition } from "./Clusters";
import type { LLMService } from "./LLMServices";

const PHASES = ["Pending", "Loading", "Serving", "Scaling", "Failed"];
const RECENT_EVENTS = 20;

interface Event extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  lastTimestamp?: string;
  eventTime?: string;
  involvedObject?: { kind?: string; name?: string; namespace?: string };
}

function useWatched<T extends KubeObject>(path: string): { items: T[] | null; error: string } {
  const [snapshot, setSnapshot] = useState<Snapshot<T> | null>(null);
  const [error, setError] = useState("");
  useEffect(
    () =>
      listWatch<T>(path, {
        onChange: (s) => {
          setError("");
          setSnapshot({ ...s });
        },
        onError: (err) => setError(errorText(err)),
      }),
    [path],
  );
  const items = useMemo(() => (snapshot ? [...snapshot.items.values()] : null), [snapshot?.revision]);
  return { items, error };
}

function Problem({ text }: { text: string }) {
  return text ? (
    <p class="error" role="alert">
      {text}
    </p>
  ) : null;
}

/** Clusters with health and GPUs, LLMServices by phase, recent Events: all live, all namespaces. */
export function OverviewPage() {
  const clusters = useWatched<Cluster>("/apis/cluster.kubellm.io/v1alpha1/clusters");
  const services = useWatched<LLMService>("/apis/model.kubellm.io/v1alpha1/llmservices");
  const events = useWatched<Event>("/api/v1/events");
  const now = Date.now();

  const byPhase = useMemo(() => {
    const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
    for (const s of services.items || []) {
      const phase = s.status?.phase || "Pending";
      counts.set(phase, (counts.get(phase) || 0) + 1);
    }
    return [...counts.entries()];
  }, [services.items]);

  const recent = useMemo(
    () =>
      [...(events.items || [])]
        .sort(
          (a, b) =>
            (Date.parse(b.lastTimestamp || b.eventTime || b.metadata.creationTimestamp || "") || 0) -
            (Date.parse(a.lastTimestamp || a.eventTime || a.metadata.creationTimestamp || "") || 0),
        )
        .slice(0, RECENT_EVENTS),
    [events.items],
  );

  return (
    <section aria-labelledby="overview-title" class="overview">
      <h1 id="overview-title">Overview</h1>
      <div class="panels">
        <section aria-labelledby="ov-clusters" class="panel">
          <h2 id="ov-clusters">
            <Link route="clusters">Clusters</Link>
          </h2>
          <Problem text={clusters.error} />
          {clusters.items?.length === 0 && <p class="empty">No member clusters are registered.</p>}
          <ul class="plain">
            {(clusters.items || [])
              .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
              .map((c) => {
                const ready = readyCondition(c);
                return (
                  <li key={c.metadata.name} data-cluster={c.metadata.name}>
                    <strong>{c.metadata.name}</strong>{" "}
                    <span class={ready === "True" ? "cond-true" : "cond-false"}>
                      {ready === "True" ? "Ready" : ready === "False" ? "Not ready" : "Unknown"}
                    </span>
                    {(c.status?.gpus || []).map((g) => (
                      <GpuBar key={g.model} gpu={g} cluster={c.metadata.name} />
                    ))}
                  </li>
                );
              })}
          </ul>
        </section>
        <section aria-labelledby="ov-llms" class="panel">
          <h2 id="ov-llms">
            <Link route="llmservices">LLMServices</Link> by phase
          </h2>
          <Problem text={services.error} />
          <dl class="phases" data-synced={services.items ? "true" : "false"}>
            {byPhase.map(([phase, count]) => [
              <dt key={`t-${phase}`}>{phase}</dt>,
              <dd key={`d-${phase}`} data-phase={phase}>
                {count}
              </dd>,
            ])}
          </dl>
        </section>
      </div>
      <section aria-labelledby="ov-events">
        <h2 id="ov-events">Recent Events</h2>
        <Problem text={events.error} />
        <table class="grid" aria-labelledby="ov-events">
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Reason</th>
              <th scope="col">Object</th>
              <th scope="col">Age</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((e) => (
              <tr key={e.metadata.uid || e.metadata.name} data-event={e.reason}>
                <td>{e.type}</td>
                <th scope="row">{e.reason}</th>
                <td>
                  {e.involvedObject?.kind} {e.involvedObject?.namespace ? `${e.involvedObject.namespace}/` : ""}
                  {e.involvedObject?.name}
                </td>
                <td>{age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp, now)}</td>
                <td>{e.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </section>
  );
}
