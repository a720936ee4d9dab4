import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, canI, getJSON, request } from "../api";
import { age, errorText } from "../format";
import { listWatch, type KubeObject, type Snapshot } from "../watch";

const GROUP = "iam.kubellm.io";
const API = "/apis/iam.kubellm.io/v1alpha1";

interface User extends KubeObject {
  spec?: { email?: string; displayName?: string; groups?: string[]; state?: string };
  status?: { state?: string; failedLoginCount?: number; lastLoginTime?: string; lockedUntil?: string };
}

interface LoginRecord extends KubeObject {
  spec?: { username?: string; success?: boolean; reason?: string; sourceIP?: string; userAgent?: string; time?: string };
}

function useWatched<T extends KubeObject>(path: string | null): { items: T[] | null; error: string } {
  const [snapshot, setSnapshot] = useState<Snapshot<T> | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setSnapshot(null);
    setError("");
    if (!path) return undefined;
    return listWatch<T>(path, {
      onChange: (s) => {
        setError("");
        setSnapshot({ ...s });
      },
      onError: (err) => setError(errorText(err)),
    });
  }, [path]);
  const items = useMemo(() => (snapshot ? [...snapshot.items.values()] : null), [snapshot?.revision]);
  return { items, error };
}

function causesText(err: unknown): string {
  if (err instanceof ApiError && err.status.details?.causes?.length) {
    return err.status.details.causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join("; ");
  }
  return errorText(err);
}

async function mergePatch(path: string, patch: unknown): Promise<void> {
  await request(path, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify(patch),
  });
}

/** A modal dialog around `children`, open from its first render; Escape or Cancel closes it. */
function Modal(props: { title: string; onClose: () => void; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-label={props.title} onClose={props.onClose}>
      <h2>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

function ResetPassword(props: { user: User; onClose: () => void }) {
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const name = props.user.metadata.name;
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await mergePatch(`${API}/users/${encodeURIComponent(name)}`, { spec: { password } });
      props.onClose();
    } catch (err) {
      setError(causesText(err));
    }
  };
  return (
    <Modal title={`Reset the password of ${name}`} onClose={props.onClose}>
      <form onSubmit={submit}>
        <label for="new-password">New password</label>{" "}
        <input id="new-password" type="password" autocomplete="new-password" value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit">Set password</button>
        </div>
      </form>
    </Modal>
  );
}

function BindRole(props: { user: User; onClose: () => void }) {
  const [roles, setRoles] = useState<string[]>([]);
  const [role, setRole] = useState("view");
  const [namespace, setNamespace] = useState("default");
  const [error, setError] = useState("");
  const name = props.user.metadata.name;
  useEffect(() => {
    getJSON<{ items: KubeObject[] }>(`${API}/clusterroles`)
      .then((list) => setRoles(list.items.map((r) => r.metadata.name).sort()))
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const binding = {
      apiVersion: "iam.kubellm.io/v1alpha1",
      kind: namespace ? "RoleBinding" : "ClusterRoleBinding",
      metadata: { generateName: `${name}-${role}-`.replace(/[^a-z0-9-]/g, "-"), ...(namespace ? { namespace } : {}) },
      roleRef: { apiGroup: GROUP, kind: "ClusterRole", name: role },
      subjects: [{ apiGroup: GROUP, kind: "User", name }],
    };
    const path = namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}/rolebindings` : `${API}/clusterrolebindings`;
    try {
      await request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(binding) });
      props.onClose();
    } catch (err) {
      setError(causesText(err));
    }
  };
  return (
    <Modal title={`Bind a role to ${name}`} onClose={props.onClose}>
      <form onSubmit={submit} class="create">
        <label for="bind-role">Cluster role</label>
        <select id="bind-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
          {(roles.length ? roles : [role]).map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <label for="bind-namespace">Namespace (empty: every namespace)</label>
        <input id="bind-namespace" value={namespace} onInput={(e) => setNamespace((e.target as HTMLInputElement).value.trim())} />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit">Bind</button>
        </div>
      </form>
    </Modal>
  );
}

function LoginRecords(props: { user: string }) {
  const records = useWatched<LoginRecord>(
    `${API}/loginrecords?fieldSelector=${encodeURIComponent(`spec.username=${props.user}`)}`,
  );
  const now = Date.now();
  const sorted = useMemo(
    () => [...(records.items || [])].sort((a, b) => (Date.parse(b.spec?.time || "") || 0) - (Date.parse(a.spec?.time || "") || 0)),
    [records.items],
  );
  return (
    <section aria-labelledby="records-title">
      <h2 id="records-title">Logins of {props.user}</h2>
      {records.error && (
        <p class="error" role="alert">
          {records.error}
        </p>
      )}
      <table class="grid" aria-labelledby="records-title">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Result</th>
            <th scope="col">Reason</th>
            <th scope="col">Source</th>
            <th scope="col">User agent</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.metadata.uid || r.metadata.name} data-reason={r.spec?.reason}>
              <td>{age(r.spec?.time, now)} ago</td>
              <td>{r.spec?.success ? "succeeded" : "failed"}</td>
              <td>{r.spec?.reason}</td>
              <td>{r.spec?.sourceIP}</td>
              <td class="agent">{r.spec?.userAgent}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function CreateUser(props: { onDone: () => void }) {
  const [form, setForm] = useState({ name: "", email: "", groups: "", password: "" });
  const [error, setError] = useState("");
  const set = (key: keyof typeof form, value: string): void => setForm((f) => ({ ...f, [key]: value }));
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await request(`${API}/users?fieldManager=kubellm-console`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          apiVersion: "iam.kubellm.io/v1alpha1",
          kind: "User",
          metadata: { name: form.name },
          spec: {
            email: form.email,
            groups: form.groups.split(",").map((g) => g.trim()).filter(Boolean),
            password: form.password,
          },
        }),
      });
      props.onDone();
    } catch (err) {
      setError(causesText(err));
    }
  };
  const field = (key: keyof typeof form, label: string, type: "text" | "password" = "text") => (
    <div class="field">
      <label for={`u-${key}`}>{label}</label>
      {type === "password" ? (
        <input id={`u-${key}`} type="password" autocomplete="new-password" value={form[key]}
          onInput={(e) => set(key, (e.target as HTMLInputElement).value)} />
      ) : (
        <input id={`u-${key}`} autocomplete="off" value={form[key]}
          onInput={(e) => set(key, (e.target as HTMLInputElement).value)} />
      )}
    </div>
  );
  return (
    <Modal title="New user" onClose={props.onDone}>
      <form onSubmit={submit} class="create">
        {field("name", "Username")}
        {field("email", "Email")}
        {field("groups", "Groups (comma-separated)")}
        {field("password", "Password", "password")}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onDone}>
            Cancel
          </button>
          <button type="submit">Create user</button>
        </div>
      </form>
    </Modal>
  );
}

type Dialog = { kind: "password" | "bind"; user: User } | { kind: "create" } | null;

/** Users: state, groups and logins, live; create, disable or enable, reset a password, bind a role. */
export function UsersPage() {
  const users = useWatched<User>(`${API}/users`);
  const [may, setMay] = useState({ create: false, patch: false, bind: false });
  const [dialog, setDialog] = useState<Dialog>(null);
  const [records, setRecords] = useState<string | null>(null);
  const [error, setError] = useState("");
  const now = Date.now();

  useEffect(() => {
    let live = true;
    void Promise.all([canI("create", GROUP, "users"), canI("patch", GROUP, "users"), canI("create", GROUP, "rolebindings")]).then(
      ([create, patch, bind]) => live && setMay({ create, patch, bind }),
    );
    return () => {
      live = false;
    };
  }, []);

  const rows = useMemo(() => [...(users.items || [])].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)), [users.items]);

  const setState = async (user: User, state: string): Promise<void> => {
    setError("");
    try {
      await mergePatch(`${API}/users/${encodeURIComponent(user.metadata.name)}`, { spec: { state } });
    } catch (err) {
      setError(causesText(err));
    }
  };

  return (
    <section aria-labelledby="users-title">
      <div class="toolbar">
        <h1 id="users-title">Users</h1>
        {may.create && (
          <button type="button" onClick={() => setDialog({ kind: "create" })}>
            New user
          </button>
        )}
      </div>
      {(users.error || error) && (
        <p class="error" role="alert">
          {users.error || error}
        </p>
      )}
      <table class="grid" aria-label="Users">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Groups</th>
            <th scope="col">State</th>
            <th scope="col">Last login</th>
            <th scope="col">Failed logins</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((u) => {
            const state = u.status?.state === "LockedOut" ? "LockedOut" : u.spec?.state || "Active";
            const name = u.metadata.name;
            return (
              <tr key={u.metadata.uid || name} data-name={name}>
                <th scope="row">{name}</th>
                <td>{u.spec?.email}</td>
                <td>{(u.spec?.groups || []).join(", ")}</td>
                <td data-testid="state">{state}</td>
                <td>{u.status?.lastLoginTime ? `${age(u.status.lastLoginTime, now)} ago` : "never"}</td>
                <td class="num">{u.status?.failedLoginCount ?? 0}</td>
                <td class="actions">
                  <button type="button" class="secondary" onClick={() => setRecords(name)} aria-label={`Logins of ${name}`}>
                    Logins
                  </button>
                  {may.patch && (
                    <>
                      <button type="button" class="secondary" aria-label={`${u.spec?.state === "Disabled" ? "Enable" : "Disable"} ${name}`}
                        onClick={() => void setState(u, u.spec?.state === "Disabled" ? "Active" : "Disabled")}>
                        {u.spec?.state === "Disabled" ? "Enable" : "Disable"}
                      </button>
                      <button type="button" class="secondary" aria-label={`Reset password of ${name}`}
                        onClick={() => setDialog({ kind: "password", user: u })}>
                        Reset password
                      </button>
                    </>
                  )}
                  {may.bind && (
                    <button type="button" class="secondary" aria-label={`Bind role to ${name}`}
                      onClick={() => setDialog({ kind: "bind", user: u })}>
                      Bind role
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {records && <LoginRecords key={records} user={records} />}
      {dialog?.kind === "create" && <CreateUser onDone={() => setDialog(null)} />}
      {dialog?.kind === "password" && <ResetPassword user={dialog.user} onClose={() => setDialog(null)} />}
      {dialog?.kind === "bind" && <BindRole user={dialog.user} onClose={() => setDialog(null)} />}
    </section>
  );
}
