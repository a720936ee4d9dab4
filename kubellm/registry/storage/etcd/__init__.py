"""The etcd backend: the only code in KubeLLM that talks to etcd."""

from kubellm.registry.storage.etcd.config import EtcdConfig
from kubellm.registry.storage.etcd.store import EtcdStorage

__all__ = ["EtcdConfig", "EtcdStorage"]
