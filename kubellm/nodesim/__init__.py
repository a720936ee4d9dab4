"""The node simulator: the kubelet and the GPUs of a member cluster whose control plane is real.

Run as `cmd/kubellm-nodesim` (or `python -m kubellm.nodesim`); the dev clusters (`kubellm.devcluster`)
start one per member cluster. Modules: `options` (flags), `nodes` (GPU nodes, Leases, NodeStatus),
`podstatus` (what a kubelet reports for a pod, pure), `pods` (the pod agent), `metrics` and `frontproxy`
(the external metrics API behind the aggregator), `rbac` (the permissions it needs), `app` (wiring).
"""
