"""The chat page: static files served by the API."""
