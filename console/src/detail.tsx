// What the detail pages share: a live object (list+watch with a name field selector), its conditions and
// its Events (list+watch by involvedObject), shown the same way on each page.

import { useEffect, useMemo, useState } from "preact/hooks";
import { age, errorText } from "./format";
import { listWatch, type KubeObject, type Snapshot } from "./watch";

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface Event extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  source?: { component?: string };
  reportingComponent?: string;
}

/** A list+watch of `path` into sorted items; `error` is the server's message if it refuses. */
export function useLive<T extends KubeObject>(path: string, order: (a: T, b: T) => number) {
  const [snapshot, setSnapshot] = useState<Snapshot<T> | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setSnapshot(null);
    return listWatch<T>(path, {
      onChange: (s) => {
        setError("");
        setSnapshot({ ...s });
      },
      onError: (err) => setError(errorText(err)),
    });
  }, [path]);
  const items = useMemo(() => (snapshot ? [...snapshot.items.values()].sort(order) : null), [snapshot?.revision]);
  return { items, error };
}

/** The Events of one object (`kind` `name` in `namespace`), newest first, live. */
export function useEvents(namespace: string, kind: string, name: string) {
  return useLive<Event>(
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/events?fieldSelector=${encodeURIComponent(`involvedObject.kind=${kind},involvedObject.name=${name}`)}`,
    (a, b) => (Date.parse(b.lastTimestamp || b.eventTime || "") || 0) - (Date.parse(a.lastTimestamp || a.eventTime || "") || 0),
  );
}

export function show(value: unknown): string {
  if (value === undefined || value === null || value === "") return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** An object's status conditions. */
export function ConditionsTable(props: { conditions?: Condition[]; now: number }) {
  const { now } = props;
  return (
    <>
          <h2 id="conditions-title">Conditions</h2>
          <table class="grid" aria-labelledby="conditions-title">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">Reason</th>
                <th scope="col">Message</th>
                <th scope="col">Changed</th>
              </tr>
            </thead>
            <tbody>
              {(props.conditions || []).map((c) => (
                <tr key={c.type} data-condition={c.type}>
                  <th scope="row">{c.type}</th>
                  <td>{c.status}</td>
                  <td>{c.reason}</td>
                  <td>{c.message}</td>
                  <td>{age(c.lastTransitionTime, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
    </>
  );
}

/** An object's Events, with the server's message if it refuses to list them. */
export function EventsTable(props: { events: { items: Event[] | null; error: string }; now: number }) {
  const { events, now } = props;
  return (
    <>
      <h2 id="events-title">Events</h2>
      {events.error && (
        <p class="error" role="alert">
          {events.error}
        </p>
      )}
      <table class="grid" aria-labelledby="events-title">
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Reason</th>
            <th scope="col">Age</th>
            <th scope="col">From</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {(events.items || []).map((e) => (
            <tr key={e.metadata.uid || e.metadata.name} data-event={e.reason}>
              <td>{e.type}</td>
              <th scope="row">{e.reason}</th>
              <td>{age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp, now)}</td>
              <td>{e.reportingComponent || e.source?.component}</td>
              <td>{e.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
