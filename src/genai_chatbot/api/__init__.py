"""The HTTP API: the chat page, the session API and the OpenAI-compatible API."""
