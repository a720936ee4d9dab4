"""ObjectMeta validation on create and update, as apimachinery's ValidateObjectMeta(Update), and the rules of
the shared meta/v1 shapes (LabelSelector, Condition) that their declared constraints cannot say.

What LabelSelectorRequirement and Condition declare on their fields (required keys, operators, statuses,
reasons, lengths, timestamps: `kubellm.apis.meta.v1.types`) is checked by the declared validator
(`validation.declared`) when it walks the object; the functions here add the rest, so together they are
metav1validation.ValidateLabelSelector and ValidateConditions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kubellm.apis.meta.v1.types import Condition, LabelSelector, LabelSelectorRequirement
from kubellm.apis.validation import field, names
from kubellm.apis.validation.field import ErrorList, Path

NameValidator = Callable[[str], list[str]]
META = Path("metadata")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate_object_meta(
    meta: dict[str, Any], *, namespaced: bool, name_fn: NameValidator = names.dns1123_subdomain
) -> ErrorList:
    errs: ErrorList = []
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if generate_name:
        # generateName only needs to be a valid prefix: validate it with a placeholder suffix.
        errs.extend(
            field.invalid(META.child("generateName"), generate_name, m)
            for m in name_fn(generate_name.rstrip("-") + "x" if generate_name.endswith("-") else generate_name)
        )
    if not name:
        errs.append(field.required(META.child("name"), "name or generateName is required"))
    else:
        errs.extend(field.invalid(META.child("name"), name, m) for m in name_fn(name))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(field.required(META.child("namespace")))
        else:
            errs.extend(field.invalid(META.child("namespace"), namespace, m) for m in names.dns1123_label(namespace))
    elif namespace:
        errs.append(field.forbidden(META.child("namespace"), "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(field.invalid(META.child("generation"), generation, "must be greater than or equal to 0"))
    errs.extend(names.validate_labels(meta.get("labels") or {}, META.child("labels")))
    errs.extend(names.validate_annotations(meta.get("annotations") or {}, META.child("annotations")))
    errs.extend(_validate_finalizers(_as_list(meta.get("finalizers")), META.child("finalizers")))
    errs.extend(_validate_owner_refs(_as_list(meta.get("ownerReferences")), META.child("ownerReferences")))
    return errs


def _validate_finalizers(finalizers: list[Any], path: Path) -> ErrorList:
    errs: ErrorList = []
    seen: set[str] = set()
    for i, f in enumerate(finalizers):
        errs.extend(field.invalid(path.index(i), f, m) for m in names.qualified_name(str(f)))
        if f in seen:
            errs.append(field.duplicate(path.index(i), f))
        seen.add(f)
    return errs


def _validate_owner_refs(refs: list[Any], path: Path) -> ErrorList:
    errs: ErrorList = []
    controllers = 0
    for i, ref in enumerate(refs):
        p = path.index(i)
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errs.append(field.invalid(p.child(key), ref.get(key, ""), f"{key} must not be empty"))
        if ref.get("controller"):
            controllers += 1
    if controllers > 1:
        errs.append(field.invalid(path, refs, "Only one reference can have Controller set to true"))
    return errs


_IMMUTABLE = ("name", "namespace", "uid", "creationTimestamp")


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any]) -> ErrorList:
    errs: ErrorList = []
    for key in _IMMUTABLE:
        if (new.get(key) or None) != (old.get(key) or None):
            errs.append(field.invalid(META.child(key), new.get(key), "field is immutable"))
    if old.get("deletionTimestamp") is None and new.get("deletionTimestamp") is not None:
        errs.append(field.invalid(META.child("deletionTimestamp"), new.get("deletionTimestamp"),
                                  "field is immutable; may only be changed via deletion"))
    elif old.get("deletionTimestamp") is not None and new.get("deletionTimestamp") != old.get("deletionTimestamp"):
        errs.append(field.invalid(META.child("deletionTimestamp"), new.get("deletionTimestamp"), "field is immutable"))
    if new.get("deletionGracePeriodSeconds") != old.get("deletionGracePeriodSeconds"):
        errs.append(field.invalid(META.child("deletionGracePeriodSeconds"),
                                  new.get("deletionGracePeriodSeconds"), "field is immutable"))
    if old.get("deletionTimestamp") is not None:
        added = set(_as_list(new.get("finalizers"))) - set(_as_list(old.get("finalizers")))
        if added:
            errs.append(field.forbidden(META.child("finalizers"),
                                        f"no new finalizers can be added if the object is being deleted, "
                                        f"found new finalizers {sorted(added)!r}"))
    return errs


# --- LabelSelector, Condition: the rules their declarations cannot say ------------------------------------


def _validate_selector_requirement(req: LabelSelectorRequirement, path: Path) -> ErrorList:
    errs: ErrorList = []
    if req.operator in ("In", "NotIn") and not req.values:
        errs.append(field.required(path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif req.operator in ("Exists", "DoesNotExist") and req.values:
        errs.append(field.forbidden(path.child("values"),
                                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    if req.key:
        errs.extend(names.validate_label_name(req.key, path.child("key")))
    for i, v in enumerate(req.values):
        errs.extend(names.validate_label_value(v, path.child("values").index(i)))
    return errs


def validate_label_selector(selector: LabelSelector | None, path: Path) -> ErrorList:
    """The label names and values of a selector, and its values against its operators."""
    if selector is None:
        return []
    errs = names.validate_labels(selector.match_labels, path.child("matchLabels"))
    for i, req in enumerate(selector.match_expressions):
        errs.extend(_validate_selector_requirement(req, path.child("matchExpressions").index(i)))
    return errs


def validate_conditions(conditions: Sequence[Condition], path: Path) -> ErrorList:
    """Condition types are qualified names, unique in the list."""
    errs: ErrorList = []
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        if cond.type:
            errs.extend(names.validate_label_name(cond.type, path.index(i).child("type")))
            if cond.type in seen:
                errs.append(field.duplicate(path.index(i).child("type"), cond.type))
        seen.add(cond.type)
    return errs
