#!/usr/bin/env bash
# Runs the kubectl commands a platform engineer uses against KubeLLM and writes their real output to
# docs/kubectl.md. Starts its own server (embedded etcd) in a temporary state directory.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/install-deps.sh >/dev/null
state=$(mktemp -d)
.venv/bin/python cmd/kubellm-apiserver --state-dir "$state" --secure-port 0 >"$state/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do [ -f "$state/apiserver.url" ] && break; sleep 0.1; done
export KUBECONFIG="$state/admin.kubeconfig"
until kubectl get --raw /readyz >/dev/null 2>&1; do sleep 0.1; done
out=docs/kubectl.md
editor="$state/editor.sh"
printf '#!/bin/sh\nsed -i "s/replicas: 2/replicas: 3/" "$1"\n' >"$editor"; chmod +x "$editor"
manifest() {  # name replicas [extra spec line]
  cat <<YAML
apiVersion: model.kubellm.io/v1alpha1
kind: LLMService
metadata:
  name: $1
  namespace: demo
  labels: {app: chat}
spec:
  model: Qwen/Qwen2.5-3B-Instruct
  replicas: $2
${3:-}
YAML
}
{
  echo "# kubectl against KubeLLM"
  echo
  echo "Real output of \`hack/kubectl-tour.sh\` (kubectl $(kubectl version --client -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), a fresh standalone KubeLLM)."
  echo "The same commands are asserted by \`test/e2e/test_kubectl.py\`."
  echo
} >"$out"
run() {  # description, command...
  local desc=$1; shift
  local rc=0 text
  text=$("$@" 2>&1) || rc=$?
  {
    echo "### $desc"
    echo
    echo '```console'
    echo "\$ ${*}" | sed "s|$state|\$STATE|g"
    echo "$text" | sed "s|$state|\$STATE|g" | head -40
    echo '```'
    echo "exit code: $rc"
    echo
  } >>"$out"
}
run_in() {  # description, stdin text, command...
  local desc=$1 input=$2; shift 2
  local rc=0 text
  text=$(printf '%s\n' "$input" | "$@" 2>&1) || rc=$?
  {
    echo "### $desc"
    echo
    echo '```console'
    echo "\$ ${*} <<EOF"
    printf '%s\n' "$input"
    echo "EOF"
    echo "$text" | sed "s|$state|\$STATE|g" | head -40
    echo '```'
    echo "exit code: $rc"
    echo
  } >>"$out"
}
run "api-resources" kubectl api-resources --categories=kubellm
run "api-versions" kubectl api-versions
run "explain --recursive" kubectl explain llmservice.spec --recursive
run_in "create -f" "$(manifest qwen 1)" kubectl create -f -
for i in 1 2 3 4; do manifest "chunk-$i" 1 | kubectl create -f - >/dev/null; done
run "get (table)" kubectl get llmservices -n demo
run "get -o yaml" kubectl get llms qwen -n demo -o yaml
run "get -o json | jsonpath" kubectl get llms -n demo -o 'jsonpath={.items[*].metadata.name}'
run "get -o custom-columns" kubectl get llms -n demo -o custom-columns=NAME:.metadata.name,MODEL:.spec.model,REPLICAS:.spec.replicas
run "get -o name -l" kubectl get llms -n demo -l app=chat -o name
run "get --field-selector" kubectl get llms -n demo --field-selector metadata.name=qwen
run "get -A" kubectl get llms -A
run "get --chunk-size=3 (pages: see the limit=3 requests)" sh -c "kubectl get llms -n demo --chunk-size=3 -v=6 2>&1 | grep -E 'GET|^NAME|^chunk|^qwen' | sed -E 's/^I[0-9]+ [0-9:.]+ +[0-9]+ //'"
run_in "apply -f (first)" "$(manifest applied 1)" kubectl apply -f -
run_in "apply -f (changed)" "$(manifest applied 2)" kubectl apply -f -
run_in "apply --server-side (manager alice)" "$(manifest ssa 1)" kubectl apply --server-side --field-manager=alice -f -
run_in "apply --server-side (manager bob, conflict)" "$(manifest ssa 4)" kubectl apply --server-side --field-manager=bob -f -
run_in "apply --server-side --force-conflicts" "$(manifest ssa 4)" kubectl apply --server-side --field-manager=bob --force-conflicts -f -
run "patch --type=merge" kubectl patch llms qwen -n demo --type=merge -p '{"spec":{"quantization":"awq"}}'
run "patch --type=json" kubectl patch llms qwen -n demo --type=json -p '[{"op":"replace","path":"/spec/maxModelLen","value":4096}]'
run "patch (strategic merge, as for any custom resource)" kubectl patch llms qwen -n demo -p '{"spec":{"replicas":2}}'
run "label" kubectl label llms qwen -n demo tier=gpu
run "annotate" kubectl annotate llms qwen -n demo owner=alice
run "scale" kubectl scale llms qwen -n demo --replicas=2
run "edit (scripted editor)" env KUBE_EDITOR="$editor" kubectl edit llms qwen -n demo
run "describe" kubectl describe llms qwen -n demo
run_in "diff" "$(manifest qwen 5)" kubectl diff -f -
run "wait --for=jsonpath" kubectl wait llms/qwen -n demo --for=jsonpath='{.spec.replicas}'=3 --timeout=10s
run "get -w (2 s)" sh -c "(sleep 1; kubectl scale llms chunk-1 -n demo --replicas=2 >/dev/null) & kubectl get llms -n demo -w --request-timeout=2s; true"
run_in "invalid object" "$(manifest Bad_Name 1 '  quantization: int3
  maxModelLen: 256')" kubectl create -f -
run "get a missing object" kubectl get llms nope -n demo
run_in "delete (waits for finalizers)" "$(manifest fin 1 | sed 's/  labels: {app: chat}/  finalizers: [kubellm.io\/demo]/')" kubectl create -f -
run "delete with a pending finalizer (times out while the finalizer stays)" kubectl delete llms fin -n demo --timeout=2s
run "remove the finalizer: the object goes" sh -c "kubectl patch llms fin -n demo --type=merge -p '{\"metadata\":{\"finalizers\":null}}' && kubectl get llms fin -n demo"
run "delete" kubectl delete llms qwen -n demo
echo "wrote $out"
