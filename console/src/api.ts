// The console's only way to the API: same origin, the bearer token from /login, never cookies.
// Errors are the server's `Status` objects, kept whole so pages show the server's own message.

export interface Status {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: { field?: string; message?: string; reason?: string }[]; retryAfterSeconds?: number };
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly status: Status;

  constructor(code: number, status: Status) {
    super(status.message || `request failed with HTTP ${code}`);
    this.code = code;
    this.reason = status.reason || "";
    this.status = status;
  }
}

const TOKEN_KEY = "kubellm.token";
const USER_KEY = "kubellm.user";
const EXPIRES_KEY = "kubellm.expires";

type SessionListener = (message: string) => void;
let onExpired: SessionListener = () => {};

/** Called when a request is refused with 401: the token has expired or was revoked. */
export function onSessionExpired(listener: SessionListener): void {
  onExpired = listener;
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** When the token expires (ms since the epoch), as /login said; null if unknown. */
export function expiresAt(): number | null {
  const parsed = Date.parse(sessionStorage.getItem(EXPIRES_KEY) || "");
  return Number.isNaN(parsed) ? null : parsed;
}

/** Forget the token (it expired): no request to the server. */
export function expire(): void {
  dropToken();
}

export function username(): string | null {
  return sessionStorage.getItem(USER_KEY);
}

function dropToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
}

async function statusOf(resp: Response): Promise<Status> {
  const text = await resp.text();
  try {
    const parsed = JSON.parse(text) as Status;
    if (parsed && typeof parsed === "object") return parsed;
  } catch {
    // not JSON: fall through
  }
  return { message: text.trim() || `HTTP ${resp.status} ${resp.statusText}`, code: resp.status };
}

/** Any API request with the bearer token; a 401 drops the token and sends the user back to the login page. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Accept", headers.get("Accept") || "application/json");
  const t = token();
  if (t) headers.set("Authorization", `Bearer ${t}`);
  const resp = await fetch(path, { ...init, headers, credentials: "omit", cache: "no-store" });
  if (resp.status === 401 && t) {
    const status = await statusOf(resp);
    dropToken();
    onExpired("Your session has ended (the token expired or was revoked): log in again.");
    throw new ApiError(401, status);
  }
  if (!resp.ok) throw new ApiError(resp.status, await statusOf(resp));
  return resp;
}

export async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  const resp = await request(path, { signal });
  return (await resp.json()) as T;
}

export async function postJSON<T>(path: string, body: unknown): Promise<T> {
  const resp = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await resp.json()) as T;
}

interface LoginResponse {
  status: { token: string; expirationTimestamp: string };
}

/** POST /login; the server's message (wrong password, lockout) is thrown as an ApiError. */
export async function login(user: string, password: string): Promise<void> {
  const resp = await fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username: user, password }),
    credentials: "omit",
    cache: "no-store",
  });
  if (!resp.ok) throw new ApiError(resp.status, await statusOf(resp));
  const out = (await resp.json()) as LoginResponse;
  sessionStorage.setItem(TOKEN_KEY, out.status.token);
  sessionStorage.setItem(USER_KEY, user);
  sessionStorage.setItem(EXPIRES_KEY, out.status.expirationTimestamp);
}

/** POST /logout revokes the token on the server; it is dropped here whatever the answer. */
export async function logout(): Promise<void> {
  const t = token();
  dropToken();
  if (!t) return;
  try {
    await fetch("/logout", { method: "POST", headers: { Authorization: `Bearer ${t}` }, credentials: "omit" });
  } catch {
    // the token is gone from the browser either way
  }
}

/** SelfSubjectAccessReview: may the current user do `verb` on `resource` (in `namespace`)? */
export async function canI(verb: string, group: string, resource: string, namespace?: string,
  subresource?: string): Promise<boolean> {
  try {
    const out = await postJSON<{ status?: { allowed?: boolean } }>(
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { verb, group, resource, subresource: subresource || "", namespace: namespace || "" } },
      },
    );
    return out.status?.allowed === true;
  } catch {
    return false;
  }
}
