"""Server-wide settings the registry's strategies need (defaults filled into new objects)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_VLLM_IMAGE = "docker.m.daocloud.io/vllm/vllm-openai:v0.6.5"
DEFAULT_HF_ENDPOINT = "https://hf-mirror.com"


@dataclass(frozen=True)
class RegistryOptions:
    default_image: str = DEFAULT_VLLM_IMAGE
    default_hf_endpoint: str = DEFAULT_HF_ENDPOINT
    password_hasher: Callable[[str], str] | None = None
    """Turns a plaintext password into a stored hash; without one, users cannot be given passwords."""
    password_verifier: Callable[[str, str], bool] | None = None
    """(password, hash) → whether they match; lets an unchanged password keep its hash."""
    password_policy: Callable[[str, str], list[str]] | None = None
    """(password, username) → problems, each a field-error detail that never repeats the password."""
