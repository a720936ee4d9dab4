import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { expire, expiresAt, logout, onSessionExpired, token, username } from "./api";
import { AccessPage } from "./pages/Access";
import { ClustersPage } from "./pages/Clusters";
import { CreateLLMServicePage } from "./pages/CreateLLMService";
import { CreateRAGServicePage } from "./pages/CreateRAGService";
import { LLMServiceDetailPage } from "./pages/LLMServiceDetail";
import { LLMServicesPage } from "./pages/LLMServices";
import { LoginPage } from "./pages/Login";
import { OverviewPage } from "./pages/Overview";
import { RAGServiceDetailPage } from "./pages/RAGServiceDetail";
import { RAGServicesPage } from "./pages/RAGServices";
import { RegisterClusterPage } from "./pages/RegisterCluster";
import { UsersPage } from "./pages/Users";
import { Link, navigate, useRoute } from "./router";
import "./style.css";

const PAGES = [
  { route: "", title: "Overview" },
  { route: "llmservices", title: "LLMServices" },
  { route: "ragservices", title: "RAGServices" },
  { route: "clusters", title: "Clusters" },
  { route: "users", title: "Users" },
  { route: "access", title: "Access" },
];

/** A route the console has a page for (others show the Overview). */
function known(route: string): boolean {
  const parts = route.split("/");
  return PAGES.some((p) => p.route === route) || route === "llmservices/new" || route === "ragservices/new" || route === "clusters/new" || (parts.length === 3 && (parts[0] === "llmservices" || parts[0] === "ragservices"));
}

function App() {
  const route = useRoute();
  const [loggedIn, setLoggedIn] = useState(token() !== null);
  const [notice, setNotice] = useState("");
  const [namespace, setNamespace] = useState(new URLSearchParams(location.search).get("namespace") ?? "default");

  useEffect(() => {
    onSessionExpired((message) => {
      setNotice(message);
      setLoggedIn(false);
    });
  }, []);

  useEffect(() => {
    const at = loggedIn ? expiresAt() : null;
    if (at === null) return undefined;
    // setTimeout holds at most about 24.8 days; a token lives at most a day
    const timer = setTimeout(() => {
      expire();
      setNotice("Your session expired: log in again.");
      setLoggedIn(false);
    }, Math.max(0, at - Date.now()));
    return () => clearTimeout(timer);
  }, [loggedIn]);

  useEffect(() => {
    const page =
      route === "llmservices/new" ? { title: "New LLMService" } : route === "ragservices/new" ? { title: "New RAGService" } : PAGES.find((p) => p.route === route);
    document.title = loggedIn ? `${page?.title || "Console"} · KubeLLM` : "Log in · KubeLLM";
  }, [route, loggedIn]);

  if (!loggedIn) {
    return (
      <LoginPage
        notice={notice}
        onLoggedIn={() => {
          setNotice("");
          setLoggedIn(true);
          if (!known(route)) navigate("", true);
        }}
      />
    );
  }

  const creating = route === "llmservices/new";
  const creatingRag = route === "ragservices/new";
  const registering = route === "clusters/new";
  const parts = route.split("/");
  const detail = parts.length === 3 && parts[0] === "llmservices" ? parts.map(decodeURIComponent) : null;
  const ragDetail = parts.length === 3 && parts[0] === "ragservices" ? parts.map(decodeURIComponent) : null;
  const current = registering
    ? "clusters"
    : creating || detail
      ? "llmservices"
      : creatingRag || ragDetail
        ? "ragservices"
        : PAGES.some((p) => p.route === route)
          ? route
          : "";
  const onNamespace = (ns: string): void => {
    setNamespace(ns);
    history.replaceState(null, "", `${location.pathname}?namespace=${encodeURIComponent(ns)}`);
  };
  return (
    <div class="shell">
      <header>
        <a class="skip" href="#content">
          Skip to content
        </a>
        <span class="brand">KubeLLM</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.route}>
                <Link route={p.route} current={p.route === current}>
                  {p.title}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">{username()}</span>
        <button
          type="button"
          onClick={async () => {
            await logout();
            setNotice("You have logged out.");
            setLoggedIn(false);
          }}
        >
          Log out
        </button>
      </header>
      <main id="content">
        {detail ? (
          <LLMServiceDetailPage key={route} namespace={detail[1]} name={detail[2]} />
        ) : ragDetail ? (
          <RAGServiceDetailPage key={route} namespace={ragDetail[1]} name={ragDetail[2]} />
        ) : creatingRag ? (
          <CreateRAGServicePage namespace={namespace || "default"} />
        ) : creating ? (
          <CreateLLMServicePage namespace={namespace || "default"} />
        ) : registering ? (
          <RegisterClusterPage />
        ) : current === "ragservices" ? (
          <RAGServicesPage namespace={namespace} onNamespace={onNamespace} />
        ) : current === "access" ? (
          <AccessPage namespace={namespace} onNamespace={onNamespace} />
        ) : current === "users" ? (
          <UsersPage />
        ) : current === "clusters" ? (
          <ClustersPage />
        ) : current === "" ? (
          <OverviewPage />
        ) : (
          <LLMServicesPage namespace={namespace} onNamespace={onNamespace} />
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
