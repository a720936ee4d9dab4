// A small history router for the pages under /console/ (the server answers index.html for each of them).

import { useEffect, useState } from "preact/hooks";

export const BASE = "/console/";

export function currentRoute(): string {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  return path.replace(/\/+$/, "");
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(route: string, replace = false): void {
  const url = BASE + route;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((l) => l());
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const l = (): void => setRoute(currentRoute());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** A link that navigates in place (and still works as a plain link). */
export function Link(props: { route: string; children: preact.ComponentChildren; current?: boolean; class?: string }) {
  return (
    <a
      href={BASE + props.route}
      class={props.class}
      aria-current={props.current ? "page" : undefined}
      onClick={(e: MouseEvent) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(props.route);
      }}
    >
      {props.children}
    </a>
  );
}
