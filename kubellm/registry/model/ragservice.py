"""RAGService: retrieval-augmented chat on top of an LLMService."""

from __future__ import annotations

from kubellm.registry.strategy import Strategy


class RAGServiceStrategy(Strategy):
    field_selectors = ("status.phase", "spec.llmServiceRef.name")
    printer_columns = (
        ("LLM", "string", ".spec.llmServiceRef.name"),
        ("Vector Store", "string", ".spec.vectorStore.type"),
        ("Phase", "string", ".status.phase"),
        ("Endpoint", "string", ".status.endpoint"),
    )
