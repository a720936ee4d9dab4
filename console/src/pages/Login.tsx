import { useState } from "preact/hooks";
import { ApiError, login } from "../api";
import { errorText } from "../format";

export function LoginPage(props: { notice: string; onLoggedIn: () => void }) {
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await login(user, password);
      setPassword("");
      props.onLoggedIn();
    } catch (err) {
      // The server's own words: "invalid username or password", "too many failed logins; try again later".
      const retry = err instanceof ApiError ? err.status.details?.retryAfterSeconds : undefined;
      setError(errorText(err) + (retry ? ` (retry after ${retry} s)` : ""));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>KubeLLM console</h1>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <form onSubmit={submit} aria-label="Log in">
        <label for="username">Username</label>
        <input
          id="username"
          name="username"
          autocomplete="username"
          required
          value={user}
          onInput={(e) => setUser((e.target as HTMLInputElement).value)}
        />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
