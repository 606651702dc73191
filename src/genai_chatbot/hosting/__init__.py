"""Self-hosting models on Amazon SageMaker: quota checks, deploy, stop and start, idle stop, delete.

What `genai-chatbot sagemaker ...` does, apart from the CLI. Endpoints this tool creates carry the tag
`MANAGED_TAG` (see `tags.py`), so that `list`, `stop-idle` and `delete` touch nothing else.
"""
