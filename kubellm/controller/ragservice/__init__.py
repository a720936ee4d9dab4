"""The RAGService controller: the retrieval chat application on top of an LLMService, on member clusters."""
