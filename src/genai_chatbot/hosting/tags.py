"""The tags that mark SageMaker resources as created by `genai-chatbot sagemaker deploy`."""

from __future__ import annotations

#: Present (value "true") on every model, endpoint config and endpoint this tool creates.
MANAGED_TAG = "genai-chatbot:managed"
#: The Hugging Face model id the endpoint serves.
MODEL_ID_TAG = "genai-chatbot:hf-model-id"
