import { useState } from "preact/hooks";
import { ApiError, request } from "../api";
import { errorText } from "../format";
import { navigate } from "../router";

interface Form {
  name: string;
  apiEndpoint: string;
  caBundle: string;
  insecureSkipTLSVerify: boolean;
  token: string;
  region: string;
  zone: string;
}

const FIELDS: Record<string, keyof Form> = {
  "metadata.name": "name",
  "spec.apiEndpoint": "apiEndpoint",
  "spec.caBundle": "caBundle",
  "spec.credentials.token": "token",
  "spec.credentials": "token",
  "spec.region": "region",
  "spec.zone": "zone",
};

/** The PEM text as the API wants it (base64 of the bytes); empty stays empty. */
function base64(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return "";
  const bytes = new TextEncoder().encode(trimmed + "\n");
  let binary = "";
  bytes.forEach((b) => (binary += String.fromCharCode(b)));
  return btoa(binary);
}

/** Register a member cluster. Its credentials are write-only: sent once, never shown again (the server
 * never returns them), and the form forgets them once the cluster is registered. */
export function RegisterClusterPage() {
  const [form, setForm] = useState<Form>({
    name: "",
    apiEndpoint: "",
    caBundle: "",
    insecureSkipTLSVerify: false,
    token: "",
    region: "",
    zone: "",
  });
  const [fields, setFields] = useState<Partial<Record<keyof Form, string>>>({});
  const [general, setGeneral] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  const set = (key: keyof Form, value: string | boolean): void => setForm((f) => ({ ...f, [key]: value }));

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setFields({});
    setGeneral([]);
    try {
      await request("/apis/cluster.kubellm.io/v1alpha1/clusters?fieldValidation=Strict&fieldManager=kubellm-console", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          apiVersion: "cluster.kubellm.io/v1alpha1",
          kind: "Cluster",
          metadata: { name: form.name },
          spec: {
            apiEndpoint: form.apiEndpoint,
            caBundle: base64(form.caBundle),
            insecureSkipTLSVerify: form.insecureSkipTLSVerify,
            credentials: { token: form.token },
            region: form.region,
            zone: form.zone,
          },
        }),
      });
      setForm((f) => ({ ...f, token: "" }));
      navigate("clusters");
    } catch (err) {
      const found: Partial<Record<keyof Form, string>> = {};
      const rest: string[] = [];
      const causes = err instanceof ApiError ? err.status.details?.causes || [] : [];
      for (const cause of causes) {
        const key = FIELDS[cause.field || ""];
        if (key && !found[key]) found[key] = cause.message || cause.reason || "invalid";
        else rest.push(cause.field ? `${cause.field}: ${cause.message}` : cause.message || "");
      }
      if (!causes.length) rest.push(errorText(err));
      setFields(found);
      setGeneral(rest);
      setBusy(false);
    }
  };

  const input = (key: Exclude<keyof Form, "insecureSkipTLSVerify">, label: string, extra: Record<string, string> = {}) => (
    <div class={`field${fields[key] ? " invalid" : ""}`}>
      <label for={`c-${key}`}>{label}</label>
      {key === "caBundle" ? (
        <textarea id={`c-${key}`} rows={4} value={form[key]} spellcheck={false}
          aria-invalid={fields[key] ? "true" : undefined} aria-describedby={fields[key] ? `ce-${key}` : undefined}
          onInput={(e) => set(key, (e.target as HTMLTextAreaElement).value)} />
      ) : (
        <input id={`c-${key}`} value={form[key]} aria-invalid={fields[key] ? "true" : undefined}
          aria-describedby={fields[key] ? `ce-${key}` : undefined}
          onInput={(e) => set(key, (e.target as HTMLInputElement).value)} {...extra} />
      )}
      {fields[key] && (
        <p class="field-error" id={`ce-${key}`} data-field={key}>
          {fields[key]}
        </p>
      )}
    </div>
  );

  return (
    <section aria-labelledby="register-title">
      <h1 id="register-title">Register a member cluster</h1>
      <form class="create" onSubmit={submit} noValidate autocomplete="off">
        {input("name", "Name")}
        {input("apiEndpoint", "API server URL", { placeholder: "https://gpu-a.example.com:6443" })}
        {input("caBundle", "CA certificate (PEM)")}
        <label class="inline">
          <input type="checkbox" checked={form.insecureSkipTLSVerify}
            onChange={(e) => set("insecureSkipTLSVerify", (e.target as HTMLInputElement).checked)} /> Skip TLS
          verification (not for production)
        </label>
        {input("token", "Bearer token (write-only: never shown again)", { type: "password", autocomplete: "new-password" })}
        {input("region", "Region")}
        {input("zone", "Zone")}
        {general.length > 0 && (
          <ul class="error" role="alert">
            {general.map((g) => (
              <li key={g}>{g}</li>
            ))}
          </ul>
        )}
        <div class="actions">
          <button type="button" class="secondary" onClick={() => navigate("clusters")}>
            Cancel
          </button>
          <button type="submit" disabled={busy}>
            Register
          </button>
        </div>
      </form>
    </section>
  );
}
