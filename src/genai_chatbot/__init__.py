"""genai-chatbot: one chatbot over an embedded model, self-hosted endpoints, Amazon Bedrock and third-party APIs."""

__version__ = "0.1.0"
