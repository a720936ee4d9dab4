"""The LLMService controller: places replicas on member clusters and runs vLLM there."""
