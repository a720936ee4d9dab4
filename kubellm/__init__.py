"""KubeLLM: a Kubernetes-style control plane for serving LLMs."""

__version__ = "0.1.0"
