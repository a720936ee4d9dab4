#!/usr/bin/env bash
# Installs everything KubeLLM needs to run and test on a fresh Debian machine:
# etcd (Debian's etcd-server, a production release), Chromium (Debian's, for the console's browser tests),
# a virtualenv with the project and its dev tools, and the web console built into console/dist.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  echo ">> installing etcd (Debian etcd-server)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo ">> installing Chromium (Debian chromium) for the console's browser tests"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The web console (console/, TypeScript): dependencies from the lockfile (npm ci) when they are missing or
# older than it, and a build into console/dist when there is none or a source is newer than it. The browser
# tests skip without it (and fail under CI=true).
if command -v npm >/dev/null 2>&1; then
  if [ ! -f console/node_modules/.package-lock.json ] || [ console/package-lock.json -nt console/node_modules/.package-lock.json ]; then
    echo ">> installing the console's dependencies (npm ci)"
    (cd console && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -f console/dist/index.html ] || [ -n "$(find console/src console/index.html console/package.json \
      console/package-lock.json console/tsconfig.json console/vite.config.ts -newer console/dist/index.html -print -quit)" ]; then
    echo ">> building the web console into console/dist"
    (cd console && npm run --silent build >/dev/null)
  fi
else
  echo ">> npm not found (Node.js 20.19 or later is needed): the web console is not built, its tests will skip"
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo ">> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.kubellm-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo ">> installing the project and its dev dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# Kubernetes server binaries for the host-cluster tests (envtest layout: $KUBEBUILDER_ASSETS holds
# kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kubectl). They are decompressed from the
# shared folder ($KUBELLM_K8S_BINARIES, else ../shared/k8s next to the checkout; a relative path is taken
# from the checkout) into a cache of our own, each checked against its SHA256SUMS. Without the folder
# nothing happens: the tests that need the binaries skip (and fail under CI=true).
K8S_SRC="${KUBELLM_K8S_BINARIES:-../shared/k8s}"
ASSETS=.cache/kubebuilder-assets
if [ -f "$K8S_SRC/SHA256SUMS" ]; then
  current=1
  cmp -s "$K8S_SRC/SHA256SUMS" "$ASSETS/.SHA256SUMS" || current=0
  for bin in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$ASSETS/$bin" ] || current=0
  done
  if [ "$current" = 0 ]; then
    echo ">> decompressing the Kubernetes server binaries from $K8S_SRC into $ASSETS"
    mkdir -p "$ASSETS"
    rm -f "$ASSETS/.SHA256SUMS"
    tmp="$(mktemp -d "$ASSETS/.partial.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    while read -r sum name; do
      [ -n "$name" ] || continue
      xz -dc "$K8S_SRC/$name.xz" > "$tmp/$name"
      if ! echo "$sum  $tmp/$name" | sha256sum --check --quiet --strict - >/dev/null; then
        echo "error: $name decompressed from $K8S_SRC/$name.xz does not match SHA256SUMS" >&2
        exit 1
      fi
      chmod 0755 "$tmp/$name"
      mv -f "$tmp/$name" "$ASSETS/$name"
    done < "$K8S_SRC/SHA256SUMS"
    cp "$K8S_SRC/SHA256SUMS" "$ASSETS/.SHA256SUMS"
  fi
  for tool in etcd kubectl; do
    path="$(command -v "$tool" || true)"
    if [ -z "$path" ] && [ -x "/usr/bin/$tool" ]; then path="/usr/bin/$tool"; fi
    if [ -n "$path" ] && [ "$(readlink "$ASSETS/$tool" || true)" != "$path" ]; then ln -sfn "$path" "$ASSETS/$tool"; fi
  done
else
  echo ">> no Kubernetes binaries at $K8S_SRC (set KUBELLM_K8S_BINARIES): the host-cluster tests will skip"
fi
