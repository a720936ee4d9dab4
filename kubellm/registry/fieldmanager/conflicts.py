"""The 409 of a server-side apply that would change fields other managers own."""

from __future__ import annotations

from kubellm.apis.errors import StatusError
from kubellm.registry.fieldmanager.entries import Entry
from kubellm.registry.fieldmanager.paths import Path, iteration_key, path_string

CAUSE_FIELD_MANAGER_CONFLICT = "FieldManagerConflict"


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> StatusError:
    """kube's NewConflictError: managers sorted by identifier, each manager's paths in set order."""
    ordered = sorted(conflicts, key=lambda c: (c[0].identifier(), iteration_key(c[1])))
    causes = [{"reason": CAUSE_FIELD_MANAGER_CONFLICT, "message": f"conflict with {e.describe()}",
               "field": path_string(p)} for e, p in ordered]
    if len(ordered) == 1:
        entry, path = ordered[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_string(path)}"
    else:
        lines: list[str] = []
        current = ""
        for entry, path in ordered:
            if entry.identifier() != current:
                current = entry.identifier()
                lines.append(f"conflicts with {entry.describe()}:")
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})
