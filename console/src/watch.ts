// List + watch, as client-go's reflector does: list, then watch from the list's resourceVersion; resume
// from the last version seen when a watch ends; list again when the server answers 410 Gone. No polling.
// Events are applied in batches, once per animation frame, so a burst of changes is one render.

import { ApiError, getJSON, request } from "./api";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
}

export interface KubeObject {
  metadata: ObjectMeta;
}

interface List<T> {
  metadata: { resourceVersion: string };
  items: T[];
}

interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T & { code?: number; message?: string };
}

export interface Snapshot<T> {
  items: Map<string, T>;
  /** Increases on every applied batch: a cheap change marker for renders. */
  revision: number;
}

export interface WatchCallbacks<T> {
  onChange: (snapshot: Snapshot<T>) => void;
  onError: (err: Error) => void;
  /** True once the first list arrived; false while re-listing after an error. */
  onSynced?: (synced: boolean) => void;
}

function keyOf(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

class GoneError extends Error {}

/** Starts a list+watch of `path` (a collection URL); returns a function that stops it. */
export function listWatch<T extends KubeObject>(path: string, cb: WatchCallbacks<T>): () => void {
  const abort = new AbortController();
  const items = new Map<string, T>();
  let revision = 0;
  let pending: WatchEvent<T>[] = [];
  let frame = 0;

  const flush = (): void => {
    frame = 0;
    const batch = pending;
    pending = [];
    for (const ev of batch) {
      const key = keyOf(ev.object);
      if (ev.type === "DELETED") items.delete(key);
      else items.set(key, ev.object);
    }
    revision += 1;
    cb.onChange({ items, revision });
  };

  const enqueue = (ev: WatchEvent<T>): void => {
    pending.push(ev);
    if (!frame) frame = requestAnimationFrame(flush);
  };

  const sep = path.includes("?") ? "&" : "?";

  async function relist(): Promise<string> {
    const list = await getJSON<List<T>>(path, abort.signal);
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    pending = [];
    items.clear();
    for (const item of list.items) items.set(keyOf(item), item);
    revision += 1;
    cb.onChange({ items, revision });
    cb.onSynced?.(true);
    return list.metadata.resourceVersion;
  }

  /** One watch request; returns the last resourceVersion seen when the server ends it. */
  async function watchFrom(rv: string): Promise<string> {
    const resp = await request(
      `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}`,
      { signal: abort.signal },
    );
    if (!resp.body) throw new Error("the browser gave no response stream");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let last = rv;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return last;
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line) as WatchEvent<T>;
        if (ev.type === "ERROR") {
          if (ev.object.code === 410) throw new GoneError(ev.object.message || "resource version too old");
          throw new ApiError(ev.object.code || 500, ev.object);
        }
        last = ev.object.metadata?.resourceVersion || last;
        if (ev.type !== "BOOKMARK") enqueue(ev);
      }
    }
  }

  async function run(): Promise<void> {
    let rv = "";
    let backoff = 500;
    while (!abort.signal.aborted) {
      try {
        if (!rv) rv = await relist();
        rv = await watchFrom(rv);
        backoff = 500;
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof GoneError || (err instanceof ApiError && err.code === 410)) {
          rv = "";
          continue;
        }
        if (err instanceof ApiError && err.code === 401) return; // back to the login page
        cb.onError(err instanceof Error ? err : new Error(String(err)));
        if (err instanceof ApiError && (err.code === 403 || err.code === 404)) return;
        cb.onSynced?.(false);
        rv = "";
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  void run();
  return () => {
    abort.abort();
    if (frame) cancelAnimationFrame(frame);
  };
}
