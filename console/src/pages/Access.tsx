import { useLive } from "../detail";
import { age } from "../format";
import { NamespaceSelect } from "../namespaces";
import type { KubeObject } from "../watch";

const API = "/apis/iam.kubellm.io/v1alpha1";

interface Rule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  nonResourceURLs?: string[];
}

interface RoleObject extends KubeObject {
  rules?: Rule[];
  aggregationRule?: unknown;
}

interface Binding extends KubeObject {
  roleRef?: { kind?: string; name?: string };
  subjects?: { kind?: string; name?: string; namespace?: string }[];
}

const byName = (a: KubeObject, b: KubeObject): number => a.metadata.name.localeCompare(b.metadata.name);

function rulesText(rules: Rule[] | undefined): string {
  return (rules || [])
    .map((r) => `${(r.verbs || []).join(",")} ${(r.resources || r.nonResourceURLs || []).join(",")}`)
    .join("; ");
}

/** One live list (list+watch) of roles or bindings as a table; the server's message if it refuses. */
function LiveTable<T extends KubeObject>(props: {
  id: string;
  title: string;
  path: string;
  columns: string[];
  cells: (obj: T) => preact.ComponentChildren[];
  now: number;
}) {
  const { items, error } = useLive<T>(props.path, byName);
  return (
    <div data-list={props.id} data-synced={items ? "true" : "false"}>
      <h2 id={`${props.id}-title`}>{props.title}</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table class="grid" aria-labelledby={`${props.id}-title`}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            {props.columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
            <th scope="col">Age</th>
          </tr>
        </thead>
        <tbody>
          {(items || []).map((obj) => (
            <tr key={obj.metadata.uid || obj.metadata.name} data-name={obj.metadata.name}>
              <th scope="row">{obj.metadata.name}</th>
              {props.cells(obj).map((c, i) => (
                <td key={i}>{c}</td>
              ))}
              <td>{age(obj.metadata.creationTimestamp, props.now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const roleCells = (r: RoleObject) => [rulesText(r.rules) || (r.aggregationRule ? "aggregated" : "")];
const bindingCells = (b: Binding) => [
  `${b.roleRef?.kind || ""} ${b.roleRef?.name || ""}`,
  (b.subjects || []).map((s) => `${s.kind} ${s.namespace ? `${s.namespace}/` : ""}${s.name}`).join(", "),
];

/** Roles and bindings of iam.kubellm.io, live: cluster-wide ones, and those of the chosen namespace. */
export function AccessPage(props: { namespace: string; onNamespace: (ns: string) => void }) {
  const { namespace } = props;
  const now = Date.now();
  const scoped = namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}` : API;
  const where = namespace || "all namespaces";
  return (
    <section aria-labelledby="access-title">
      <div class="toolbar">
        <h1 id="access-title">Roles and bindings</h1>
        <NamespaceSelect namespace={namespace} onNamespace={props.onNamespace} />
      </div>
      <LiveTable<RoleObject> id="clusterroles" title="ClusterRoles" path={`${API}/clusterroles`} columns={["Rules"]} cells={roleCells} now={now} />
      <LiveTable<Binding>
        id="clusterrolebindings"
        title="ClusterRoleBindings"
        path={`${API}/clusterrolebindings`}
        columns={["Role", "Subjects"]}
        cells={bindingCells}
        now={now}
      />
      <LiveTable<RoleObject> key={`roles-${scoped}`} id="roles" title={`Roles in ${where}`} path={`${scoped}/roles`} columns={["Rules"]} cells={roleCells} now={now} />
      <LiveTable<Binding>
        key={`rolebindings-${scoped}`}
        id="rolebindings"
        title={`RoleBindings in ${where}`}
        path={`${scoped}/rolebindings`}
        columns={["Role", "Subjects"]}
        cells={bindingCells}
        now={now}
      />
    </section>
  );
}
