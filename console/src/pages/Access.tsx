import { useEffect, useState } from "preact/hooks";
import { canI, request } from "../api";
import { useLive } from "../detail";
import { ConfirmDelete, Modal } from "../dialog";
import { useServerForm } from "../form";
import { age } from "../format";
import { NamespaceSelect } from "../namespaces";
import type { KubeObject } from "../watch";

const GROUP = "iam.kubellm.io";
const API = "/apis/iam.kubellm.io/v1alpha1";
const MAX_RULES = 8;

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
  /** Asks before deleting the object; null when the user may not delete. */
  onDelete: ((obj: T) => void) | null;
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
            {props.onDelete && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
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
              {props.onDelete && (
                <td class="actions">
                  <button type="button" class="secondary" aria-label={`Delete ${obj.metadata.name}`} onClick={() => props.onDelete?.(obj)}>
                    Delete
                  </button>
                </td>
              )}
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

const list = (text: string | undefined): string[] =>
  (text || "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);

type Form = Record<string, string>;

/** The collection a kind is created in: cluster-wide, or the namespace's. */
function collection(resource: string, namespace: string): string {
  return namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}/${resource}` : `${API}/${resource}`;
}

async function create(path: string, body: unknown, dryRun: boolean, signal?: AbortSignal): Promise<void> {
  const query = `?fieldValidation=Strict${dryRun ? "&dryRun=All" : ""}&fieldManager=kubellm-console`;
  await request(`${path}${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** The API field paths the role form writes, rule by rule. */
const ROLE_FIELDS: Record<string, string> = { "metadata.name": "name" };
for (let i = 0; i < MAX_RULES; i++) {
  for (const key of ["apiGroups", "resources", "verbs"]) ROLE_FIELDS[`rules[${i}].${key}`] = `${key}${i}`;
}

/** Create a ClusterRole, or a Role in `namespace`: validated by a server dry-run as the user types. */
function CreateRole(props: { namespace: string; kinds: string[]; onClose: () => void }) {
  const [count, setCount] = useState(1);
  const { form, set, submit, busy, field, text, footer } = useServerForm<Form>(
    { kind: props.kinds[0], name: "", apiGroups0: "", resources0: "", verbs0: "" },
    ROLE_FIELDS,
    (f, dryRun, signal) => {
      const namespaced = f.kind === "Role";
      const rules = Array.from({ length: count }, (_, i) => ({
        apiGroups: list(f[`apiGroups${i}`]),
        resources: list(f[`resources${i}`]),
        verbs: list(f[`verbs${i}`]),
      }));
      const body = {
        apiVersion: "iam.kubellm.io/v1alpha1",
        kind: f.kind,
        metadata: { name: f.name, ...(namespaced ? { namespace: props.namespace } : {}) },
        rules,
      };
      return create(collection(namespaced ? "roles" : "clusterroles", namespaced ? props.namespace : ""), body, dryRun, signal);
    },
    [count],
  );
  const addRule = (): void => {
    for (const key of ["apiGroups", "resources", "verbs"]) set(`${key}${count}`, "");
    setCount(count + 1);
  };
  return (
    <Modal title="New role" onClose={props.onClose}>
      <form class="create" onSubmit={(e) => void submit(e, props.onClose)} noValidate>
        {field(
          "kind",
          "Kind",
          <select id="f-kind" value={form.kind} onChange={(e) => set("kind", (e.target as HTMLSelectElement).value)}>
            {props.kinds.map((k) => (
              <option key={k} value={k}>
                {k === "Role" ? `Role in ${props.namespace}` : k}
              </option>
            ))}
          </select>,
        )}
        {field("name", "Name", text("name", { autocomplete: "off" }))}
        {Array.from({ length: count }, (_, i) => (
          <fieldset key={i} data-rule={i}>
            <legend>Rule {i + 1}</legend>
            {field(`apiGroups${i}`, `API groups of rule ${i + 1}`, text(`apiGroups${i}`, { placeholder: "model.kubellm.io" }), "Comma-separated")}
            {field(`resources${i}`, `Resources of rule ${i + 1}`, text(`resources${i}`, { placeholder: "llmservices, llmservices/scale" }), "Comma-separated")}
            {field(`verbs${i}`, `Verbs of rule ${i + 1}`, text(`verbs${i}`, { placeholder: "get, list, watch" }), "Comma-separated")}
          </fieldset>
        ))}
        {count < MAX_RULES && (
          <button type="button" class="secondary" onClick={addRule}>
            Add rule
          </button>
        )}
        {footer()}
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Create role
          </button>
        </div>
      </form>
    </Modal>
  );
}

const BINDING_FIELDS: Record<string, string> = {
  "metadata.name": "name",
  "roleRef.kind": "roleKind",
  "roleRef.name": "roleName",
};

/** Create a ClusterRoleBinding, or a RoleBinding in `namespace`, to users and groups. */
function CreateBinding(props: { namespace: string; kinds: string[]; onClose: () => void }) {
  const { form, set, submit, busy, field, text, footer } = useServerForm<Form>(
    { kind: props.kinds[0], name: "", roleKind: "ClusterRole", roleName: "", users: "", groups: "" },
    BINDING_FIELDS,
    (f, dryRun, signal) => {
      const namespaced = f.kind === "RoleBinding";
      const body = {
        apiVersion: "iam.kubellm.io/v1alpha1",
        kind: f.kind,
        metadata: { name: f.name, ...(namespaced ? { namespace: props.namespace } : {}) },
        roleRef: { apiGroup: GROUP, kind: namespaced ? f.roleKind : "ClusterRole", name: f.roleName },
        subjects: [
          ...list(f.users).map((name) => ({ apiGroup: GROUP, kind: "User", name })),
          ...list(f.groups).map((name) => ({ apiGroup: GROUP, kind: "Group", name })),
        ],
      };
      const resource = namespaced ? "rolebindings" : "clusterrolebindings";
      return create(collection(resource, namespaced ? props.namespace : ""), body, dryRun, signal);
    },
    [],
  );
  const select = (key: string, label: string, options: [string, string][]) =>
    field(
      key,
      label,
      <select id={`f-${key}`} value={form[key]} onChange={(e) => set(key, (e.target as HTMLSelectElement).value)}>
        {options.map(([value, shown]) => (
          <option key={value} value={value}>
            {shown}
          </option>
        ))}
      </select>,
    );
  return (
    <Modal title="New binding" onClose={props.onClose}>
      <form class="create" onSubmit={(e) => void submit(e, props.onClose)} noValidate>
        {select("kind", "Kind", props.kinds.map((k) => [k, k === "RoleBinding" ? `RoleBinding in ${props.namespace}` : k]))}
        {field("name", "Name", text("name", { autocomplete: "off" }))}
        {form.kind === "RoleBinding" &&
          select("roleKind", "Role kind", [
            ["ClusterRole", "ClusterRole"],
            ["Role", `Role in ${props.namespace}`],
          ])}
        {field("roleName", "Role name", text("roleName", { autocomplete: "off" }))}
        {field("users", "Users", text("users", { autocomplete: "off" }), "Comma-separated")}
        {field("groups", "Groups", text("groups", { autocomplete: "off" }), "Comma-separated")}
        {footer()}
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Create binding
          </button>
        </div>
      </form>
    </Modal>
  );
}

const RESOURCES = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"] as const;
type Resource = (typeof RESOURCES)[number];
const KINDS: Record<Resource, string> = {
  clusterroles: "ClusterRole",
  clusterrolebindings: "ClusterRoleBinding",
  roles: "Role",
  rolebindings: "RoleBinding",
};
type May = Record<`${"create" | "delete"}:${Resource}`, boolean>;

/** What the user may create and delete here (SelfSubjectAccessReviews); namespaced ones in `namespace`. */
function usePermissions(namespace: string): { may: Partial<May>; checked: boolean } {
  const [state, setState] = useState<{ may: Partial<May>; checked: boolean }>({ may: {}, checked: false });
  useEffect(() => {
    let live = true;
    setState({ may: {}, checked: false });
    const asks: [keyof May, Promise<boolean>][] = [];
    for (const resource of RESOURCES) {
      const namespaced = resource === "roles" || resource === "rolebindings";
      if (namespaced && !namespace) continue; // created and deleted in a chosen namespace
      for (const verb of ["create", "delete"] as const) {
        asks.push([`${verb}:${resource}`, canI(verb, GROUP, resource, namespaced ? namespace : undefined)]);
      }
    }
    void Promise.all(asks.map(([, p]) => p)).then((answers) => {
      if (!live) return;
      const may: Partial<May> = {};
      asks.forEach(([key], i) => (may[key] = answers[i]));
      setState({ may, checked: true });
    });
    return () => {
      live = false;
    };
  }, [namespace]);
  return state;
}

type Dialog = { kind: "role" | "binding" } | { kind: "delete"; resource: Resource; obj: KubeObject } | null;

/** Roles and bindings of iam.kubellm.io, live: cluster-wide ones, and those of the chosen namespace; created
 * from small server-validated forms and deleted after a confirmation, as SelfSubjectAccessReviews allow. */
export function AccessPage(props: { namespace: string; onNamespace: (ns: string) => void }) {
  const { namespace } = props;
  const now = Date.now();
  const scoped = namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}` : API;
  const where = namespace || "all namespaces";
  const { may, checked } = usePermissions(namespace);
  const [dialog, setDialog] = useState<Dialog>(null);
  const roleKinds = [...(may["create:clusterroles"] ? ["ClusterRole"] : []), ...(may["create:roles"] ? ["Role"] : [])];
  const bindingKinds = [
    ...(may["create:clusterrolebindings"] ? ["ClusterRoleBinding"] : []),
    ...(may["create:rolebindings"] ? ["RoleBinding"] : []),
  ];
  const remover = (resource: Resource) => (may[`delete:${resource}`] ? (obj: KubeObject) => setDialog({ kind: "delete", resource, obj }) : null);
  const itemPath = (resource: Resource, obj: KubeObject): string =>
    `${collection(resource, obj.metadata.namespace || "")}/${encodeURIComponent(obj.metadata.name)}`;
  return (
    <section aria-labelledby="access-title" data-permissions={checked ? "checked" : "checking"}>
      <div class="toolbar">
        <h1 id="access-title">Roles and bindings</h1>
        <NamespaceSelect namespace={namespace} onNamespace={props.onNamespace} />
        {roleKinds.length > 0 && (
          <button type="button" onClick={() => setDialog({ kind: "role" })}>
            New role
          </button>
        )}
        {bindingKinds.length > 0 && (
          <button type="button" onClick={() => setDialog({ kind: "binding" })}>
            New binding
          </button>
        )}
      </div>
      <LiveTable<RoleObject>
        id="clusterroles"
        title="ClusterRoles"
        path={`${API}/clusterroles`}
        columns={["Rules"]}
        cells={roleCells}
        now={now}
        onDelete={remover("clusterroles")}
      />
      <LiveTable<Binding>
        id="clusterrolebindings"
        title="ClusterRoleBindings"
        path={`${API}/clusterrolebindings`}
        columns={["Role", "Subjects"]}
        cells={bindingCells}
        now={now}
        onDelete={remover("clusterrolebindings")}
      />
      <LiveTable<RoleObject>
        key={`roles-${scoped}`}
        id="roles"
        title={`Roles in ${where}`}
        path={`${scoped}/roles`}
        columns={["Rules"]}
        cells={roleCells}
        now={now}
        onDelete={remover("roles")}
      />
      <LiveTable<Binding>
        key={`rolebindings-${scoped}`}
        id="rolebindings"
        title={`RoleBindings in ${where}`}
        path={`${scoped}/rolebindings`}
        columns={["Role", "Subjects"]}
        cells={bindingCells}
        now={now}
        onDelete={remover("rolebindings")}
      />
      {dialog?.kind === "role" && <CreateRole key={namespace} namespace={namespace} kinds={roleKinds} onClose={() => setDialog(null)} />}
      {dialog?.kind === "binding" && (
        <CreateBinding key={namespace} namespace={namespace} kinds={bindingKinds} onClose={() => setDialog(null)} />
      )}
      {dialog?.kind === "delete" && (
        <ConfirmDelete
          kind={KINDS[dialog.resource]}
          name={dialog.obj.metadata.name}
          path={itemPath(dialog.resource, dialog.obj)}
          onClose={() => setDialog(null)}
        >
          <p>{dialog.obj.metadata.namespace ? `Namespace: ${dialog.obj.metadata.namespace}.` : "Cluster-wide."} Access it grants ends at once.</p>
        </ConfirmDelete>
      )}
    </section>
  );
}
