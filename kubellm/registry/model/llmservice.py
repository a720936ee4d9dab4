"""LLMService: server-configured defaults for image and Hugging Face endpoint, status/scale, columns."""

from __future__ import annotations

from typing import Any

from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.options import RegistryOptions
from kubellm.registry.strategy import Strategy


class LLMServiceStrategy(Strategy):
    field_selectors = ("status.phase", "spec.model", "spec.quantization")
    printer_columns = (
        ("Model", "string", ".spec.model"),
        ("Quant", "string", ".spec.quantization"),
        ("Replicas", "integer", ".spec.replicas"),
        ("Ready", "integer", ".status.readyReplicas"),
        ("Phase", "string", ".status.phase"),
        ("Endpoint", "string", ".status.endpoint"),
    )

    def __init__(self, info: ResourceInfo, options: RegistryOptions) -> None:
        super().__init__(info)
        self.options = options

    def _fill_defaults(self, obj: Any) -> None:
        spec = obj.spec
        spec.image = spec.image or self.options.default_image
        spec.hf_endpoint = spec.hf_endpoint or self.options.default_hf_endpoint

    def prepare_for_create(self, obj: Any) -> None:
        super().prepare_for_create(obj)
        self._fill_defaults(obj)

    def prepare_for_update(self, new: Any, old: Any) -> None:
        self._fill_defaults(new)
        super().prepare_for_update(new, old)
