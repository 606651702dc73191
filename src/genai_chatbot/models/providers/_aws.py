"""What the AWS providers (Bedrock, SageMaker) share: client settings, and how botocore's failures read.

boto3 blocks, so every AWS call runs on the provider's own thread pool, and streams are read through the
shared thread pump (`_pump.py`). botocore fails with a `ClientError` carrying an error code; each provider
maps codes to our errors with a table (`AwsOutcome` per code) and `error_from_table`, and the failures
every AWS call can have (no credentials, a timeout) are worded once, in `boto_failure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_chatbot.models.errors import ModelError, ProviderError, ProviderUnavailableError, RateLimitedError
from genai_chatbot.models.providers._retry_after import retry_after_from
from genai_chatbot.wording import clause

if TYPE_CHECKING:
    from botocore.config import Config

CREDENTIALS_HINT = (
    "configure AWS credentials the standard way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an "
    "instance/task role)"
)


@dataclass(frozen=True, slots=True)
class AwsOutcome:
    """What an AWS error code means: our error class and its message, a `str.format` template.

    The template may use `{code}`, `{message}` (AWS's own, without its full stop) and whatever fields the
    provider passes (`{what}`, `{where}`, `{hint}`...).
    """

    error: type[ModelError]
    template: str


def error_from_table(table: Mapping[str, AwsOutcome], exc: Any, **fields: str) -> ModelError | None:
    """Our error for a `ClientError` whose code is in `table`; None for any other code."""
    code = error_code(exc)
    outcome = table.get(code)
    if outcome is None:
        return None
    text = outcome.template.format(code=code, message=error_message(exc), **fields)
    if issubclass(outcome.error, RateLimitedError):
        return outcome.error(text, retry_after(exc))
    return outcome.error(text)


def boto_failure(exc: BaseException, what: str, timeout_seconds: float) -> ModelError | None:
    """Our error for the failures any AWS call can have: no credentials, or no answer in time."""
    if is_missing_credentials(exc):
        return ProviderUnavailableError(f"No AWS credentials for {what}; {CREDENTIALS_HINT}.")
    if is_timeout(exc):
        return ProviderError(
            f"{what} did not answer within {timeout_seconds:g} s; retry, or raise request_timeout_seconds."
        )
    return None


def client_config(timeout_seconds: float) -> Config:
    """Timeouts from our settings; a few standard retries so a brief network blip does not fail a chat.

    The read timeout bounds the wait between two chunks of a stream, as `request_timeout_seconds` promises.
    """
    from botocore.config import Config

    return Config(
        connect_timeout=min(timeout_seconds, 10.0),
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "max_attempts": 3},
        user_agent_extra="genai-chatbot",
    )


def error_code(exc: Any) -> str:
    """The AWS error code of a `ClientError`, with event-stream spellings (`throttlingException`) capitalised."""
    code = str(exc.response.get("Error", {}).get("Code", "") or "")
    return code[:1].upper() + code[1:]


def error_message(exc: Any) -> str:
    """The AWS error message of a `ClientError` (never contains credentials, only ARNs and reasons)."""
    error = exc.response.get("Error", {})
    # Without its full stop: every caller embeds it in a sentence of its own ("...: {message}. Retry ...").
    return clause(str(error.get("Message") or error.get("message") or "no message"))


def retry_after(exc: Any) -> float | None:
    """Seconds to wait, when the service sent a `Retry-After` header with the error."""
    return retry_after_from(exc.response.get("ResponseMetadata", {}).get("HTTPHeaders"))


def is_timeout(exc: BaseException) -> bool:
    """Whether botocore gave up waiting for the service (connect or read timeout)."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    return isinstance(exc, ConnectTimeoutError | ReadTimeoutError)


def is_missing_credentials(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, NoCredentialsError | PartialCredentialsError)
