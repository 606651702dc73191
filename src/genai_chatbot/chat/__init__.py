"""Sessions, their persistent history, and the chat service over the model interface."""
