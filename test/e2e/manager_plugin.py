"""A controller for the controller manager's end-to-end tests, loaded by the real kubellm-controller-manager
with `--extra-controllers manager_plugin:CONTROLLERS` (this directory on PYTHONPATH). It is test code: the
product ships no such controller.

`e2e-stamp` reconciles LLMServices labelled `e2e.kubellm.io/stamp` and makes the work observable from outside:

- `ok`: annotates the object with the identity of the manager that reconciled it (and a Normal Event), so a
  test sees which replica acts;
- `flaky`: fails twice with an ordinary error (retried with backoff), then annotates;
- `terminal`: raises a TerminalError (a Warning Event, and the terminal error hook annotates the object).

The controller watches spec changes only (generation), so its own annotations do not enqueue the object again.
"""

from __future__ import annotations

from collections import Counter

from kubellm.controller.manager import ControllerContext, ControllerSpec
from kubellm.controller.runtime import Controller, Result, TerminalError, generation_changed, split_key

LABEL = "e2e.kubellm.io/stamp"
STAMP = "e2e.kubellm.io/reconciled-by"
TERMINAL = "e2e.kubellm.io/terminal-error"


class Stamper:
    def __init__(self, ctx: ControllerContext) -> None:
        self.llms = ctx.informers.model_v1alpha1.llmservices()
        self.clients = ctx.clientset.model_v1alpha1
        self.recorder = ctx.recorder
        self.identity = ctx.identity
        self.failures: Counter[str] = Counter()

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        obj = self.llms.lister().llmservices(ns).get(name)
        if obj is None:
            return None
        mode = (obj.metadata.labels or {}).get(LABEL)
        if mode == "terminal":
            raise TerminalError(f"model {obj.spec.model} is not served here", reason="ModelNotServed")
        if mode == "flaky" and self.failures[key] < 2:
            self.failures[key] += 1
            raise RuntimeError(f"flaky failure {self.failures[key]}")
        if (obj.metadata.annotations or {}).get(STAMP) != self.identity:
            await self.clients.llmservices(ns).patch(name, {"metadata": {"annotations": {STAMP: self.identity}}},
                                                     timeout=10)
            self.recorder.normal(obj, "Stamped", f"reconciled by {self.identity}")
        return None

    async def on_terminal_error(self, key: str, error: TerminalError) -> None:
        ns, name = split_key(key)
        await self.clients.llmservices(ns).patch(name, {"metadata": {"annotations": {TERMINAL: error.reason}}},
                                                 timeout=10)


def has_label(obj: object) -> bool:
    labels = getattr(getattr(obj, "metadata", None), "labels", None) or {}
    return LABEL in labels


def new_stamp_controller(ctx: ControllerContext) -> Controller:
    informer = ctx.informers.model_v1alpha1.llmservices().informer()
    return ctx.new_controller(Stamper(ctx)).watch_primary(informer, predicate=has_label,
                                                         update_predicate=generation_changed)


CONTROLLERS = [ControllerSpec("e2e-stamp", new_stamp_controller, workers=2,
                              description="test-only: stamps LLMServices with the reconciling manager's identity")]
