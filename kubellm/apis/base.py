"""Base model shared by every API type: camelCase aliases, strict types, unknown fields forbidden.

Unknown fields are forbidden at the pydantic level so that decoding can report them; the decoder
(`kubellm.apis.codec`) then rejects, warns about or drops them according to `fieldValidation`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class APIModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        validate_default=False,
        ser_json_timedelta="float",
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class FreeForm(BaseModel):
    """An object whose keys are not checked (for example `fieldsV1` of managed fields)."""

    model_config = ConfigDict(extra="allow")
