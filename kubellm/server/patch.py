"""PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), server-side apply; strategic merge
patch is refused as kube-apiserver refuses it for custom resources."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from kubellm.apis import errors
from kubellm.server import negotiation as n

ACCEPTED = f"{n.JSON_PATCH}, {n.MERGE_PATCH}, {n.APPLY_PATCH}"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def unsupported(content_type: str) -> errors.StatusError:
    return errors.StatusError(415, "UnsupportedMediaType",
                              f"the body of the request was in an unknown format - accepted media types include: "
                              f"{ACCEPTED}")


def mutator(content_type: str, body: Any, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function from the current object to the patched one, for Store.patch."""
    if content_type == n.MERGE_PATCH:
        if not isinstance(body, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        return lambda current: merge_patch(current, body)
    if content_type == n.JSON_PATCH:
        if not isinstance(body, list):
            raise errors.bad_request("a JSON patch must be a JSON array of operations")
        try:
            ops = jsonpatch.JsonPatch(body)
        except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError) as exc:
            raise errors.bad_request(f"invalid JSON patch: {exc}") from None

        def apply_ops(current: dict[str, Any]) -> dict[str, Any]:
            try:
                out = ops.apply(current)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
                raise errors.StatusError(422, "Invalid", f"the server rejected our request due to an error in our "
                                         f"request: {exc}") from None
            if not isinstance(out, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            return out

        return apply_ops
    raise unsupported(content_type)
