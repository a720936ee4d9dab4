// The namespace selector of the namespaced list pages.

import { useEffect, useState } from "preact/hooks";
import { getJSON } from "./api";
import type { KubeObject } from "./watch";

/** The namespaces the user may list; null when they cannot be listed (then a name is typed); undefined
 * while they are being listed. */
function useNamespaces(): string[] | null | undefined {
  const [names, setNames] = useState<string[] | null | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    getJSON<{ items: KubeObject[] }>("/api/v1/namespaces", abort.signal)
      .then((list) => setNames(list.items.map((n) => n.metadata.name).sort()))
      .catch(() => setNames(null));
    return () => abort.abort();
  }, []);
  return names;
}

/** A select of the namespaces the user may list (with "All namespaces"); a text field when it may not. */
export function NamespaceSelect(props: { namespace: string; onNamespace: (ns: string) => void }) {
  const { namespace } = props;
  const namespaces = useNamespaces();
  const listed = namespaces === undefined ? [] : namespaces;
  const choices = listed && namespace && !listed.includes(namespace) ? [...listed, namespace] : listed;
  return (
    <>
        <label for="namespace">Namespace</label>
        {choices ? (
          <select id="namespace" value={namespace} disabled={namespaces === undefined} onChange={(e) => props.onNamespace((e.target as HTMLSelectElement).value)}>
            <option value="">All namespaces</option>
            {choices.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        ) : (
          <input
            id="namespace"
            value={namespace}
            onChange={(e) => props.onNamespace((e.target as HTMLInputElement).value.trim())}
          />
        )}
    </>
  );
}
