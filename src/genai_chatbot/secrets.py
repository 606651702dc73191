"""Where provider keys come from: a JSON keys file, AWS Secrets Manager, and the process environment.

The keys secret is a JSON object of strings, as the model-requirements page documents:
`{"OPENAI_API_KEY": "sk-…", "COHERE_API_KEY": "…", "AZURE_OPENAI_MODELS": "Model1,Model2", …}`.
A Hugging Face token is a plain-text secret (a file, `HF_TOKEN`, or a Secrets Manager secret holding only
the token) and joins the same snapshot under the name `HF_TOKEN`.

`ProviderKeys` re-reads every source when its snapshot is older than the TTL, so a key added to the secret
makes that provider's models appear, and a removed one makes them disappear, without a restart. When a
name is in several sources, Secrets Manager wins over the keys file, which wins over the environment.
A broken source contributes no keys and an error that says what to fix; the other sources still count.

No value ever leaves this module in a message: errors name sources and key names only, and
`redact()` masks every value of the keys secret (and any credentials written into a URL) in text headed
for a person: the model registry passes every provider error through it, and a log filter every log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from genai_chatbot.config import Settings
from genai_chatbot.files import private_dir
from genai_chatbot.per_loop import LoopLock

# Masking lives in `redaction`; these names stay importable from here, where callers have always found them.
from genai_chatbot.redaction import MASK as MASK
from genai_chatbot.redaction import MIN_SECRET_CHARS as MIN_SECRET_CHARS
from genai_chatbot.redaction import RedactingFilter as RedactingFilter
from genai_chatbot.redaction import install_log_redaction as install_log_redaction
from genai_chatbot.redaction import mask_url_credentials as mask_url_credentials
from genai_chatbot.redaction import secret_fragments
from genai_chatbot.wording import clause

logger = logging.getLogger(__name__)

HF_TOKEN = "HF_TOKEN"
EMPTY_SECRET_HINT = "store {} when no keys are needed"
# Environment variables taken as keys: API keys, Azure OpenAI deployment settings, the Hugging Face token,
# and base URLs: those the official OpenAI, Cohere and AI21 SDKs read, and each OpenAI-style vendor's
# `<NAME>_BASE_URL` (the keys secret wins over them). A URL is masked only where it holds credentials.
_ENV_KEY_PATTERN = re.compile(
    r"^(?:[A-Z0-9_]+_API_KEY(?:__.+)?|AZURE_OPENAI_[A-Z0-9_]+(?:__.+)?|HF_TOKEN|[A-Z][A-Z0-9]*_BASE_URL)$"
)


class SecretError(Exception):
    """A keys source cannot be read or is malformed; the message names the source and the fix, never a value."""


def parse_keys(text: str, origin: str) -> dict[str, str]:
    """The keys in `text`, a JSON object of strings read from `origin` (which names it in errors)."""
    # Secrets Manager refuses a truly empty string, so people store '' or "" instead: the same mistake.
    if text.strip() in ("", "''", '""'):
        raise SecretError(f"{origin} is an empty string; {EMPTY_SECRET_HINT}, not ''.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecretError(
            f"{origin} is not valid JSON: {clause(exc.msg)} at line {exc.lineno}, column {exc.colno} "
            '(a trailing comma is a common cause); it must be an object like {"OPENAI_API_KEY": "sk-..."}.'
        ) from None
    if not isinstance(value, dict):
        raise SecretError(
            f'{origin} must be a JSON object like {{"OPENAI_API_KEY": "sk-..."}}, not a JSON {_json_type(value)}; '
            f"{EMPTY_SECRET_HINT}."
        )
    for name, item in value.items():
        if not isinstance(item, str):
            raise SecretError(
                f"{origin}: the value of {name!r} must be a string, not a JSON {_json_type(item)}; quote it."
            )
    return value


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null"
    )


class KeySource(Protocol):
    """One place keys are read from."""

    #: How the source is named to people, e.g. "keys file data/keys.json".
    description: str

    async def read(self) -> dict[str, str]:
        """The keys this source holds now; `SecretError` when it cannot be read or is malformed."""
        ...


class EnvironmentKeySource:
    """Keys from process environment variables named like keys (`*_API_KEY`, `AZURE_OPENAI_*`, `HF_TOKEN`).

    `<NAME>_BASE_URL` counts too (`OPENAI_BASE_URL`, `COHERE_BASE_URL`, `MISTRAL_BASE_URL`…): people set them
    for the SDKs, and providers read them from the keys, so every provider and `doctor` honour them like a
    secret's values.
    """

    description = "environment variables"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    async def read(self) -> dict[str, str]:
        environ = os.environ if self._environ is None else self._environ
        return {name: value for name, value in environ.items() if _ENV_KEY_PATTERN.match(name) and value}


class FileKeySource:
    """Keys from a JSON file, created as `{}` (mode 0600) when missing so there is an obvious place to add them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"keys file {path}"

    async def read(self) -> dict[str, str]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            try:
                private_dir(self.path.parent)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as file:
                    file.write("{}\n")
            except FileExistsError:
                pass
            except OSError as exc:
                raise SecretError(f"Cannot create {self.description}: {exc.strerror}.") from None
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"Cannot read {self.description}: {exc.strerror}.") from None
        return parse_keys(text, self.description.capitalize())


class PlainTextFileSource:
    """A secret that is one value in a text file (the Hugging Face token), offered under `name`."""

    def __init__(self, path: Path, name: str = HF_TOKEN) -> None:
        self.path = path
        self.name = name
        self.description = f"{name} file {path}"

    async def read(self) -> dict[str, str]:
        try:
            value = (await asyncio.to_thread(self.path.read_text, encoding="utf-8")).strip()
        except OSError as exc:
            raise SecretError(f"Cannot read {self.description}: {exc.strerror}.") from None
        if not value:
            raise SecretError(f"The {self.description} is empty; put the token itself in it.")
        return {self.name: value}


class SecretsManagerSource:
    """A secret in AWS Secrets Manager: a JSON keys object, or (with `plain_text_name`) one plain-text value.

    boto3 finds credentials, region and `AWS_ENDPOINT_URL_SECRETS_MANAGER` the standard way; the region can
    also come from an ARN.
    """

    def __init__(
        self,
        secret_id: str,
        region: str | None = None,
        plain_text_name: str | None = None,
        setting: str = "GENAI_CHATBOT_KEYS_SECRET_ID",
    ) -> None:
        """`setting` names where the secret id was set, for the fix of a secret that is not found."""
        self.secret_id = secret_id
        self.setting = setting
        self.plain_text_name = plain_text_name
        self.region = region or _region_from_arn(secret_id)
        kind = f"{plain_text_name} secret" if plain_text_name else "keys secret"
        self.description = f"Secrets Manager {kind} {secret_id}"
        self._client: Any = None

    def _get(self) -> dict[str, Any]:
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager", region_name=self.region)
        response: dict[str, Any] = self._client.get_secret_value(SecretId=self.secret_id)
        return response

    async def read(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = await asyncio.to_thread(self._get)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Error")
            raise SecretError(
                f"Cannot read the {self.description}: {code}. {_secrets_manager_fix(code, self.setting)}".strip()
            ) from None
        except BotoCoreError as exc:
            raise SecretError(
                f"Cannot reach Secrets Manager for the {self.description}: {type(exc).__name__}: {exc}"
            ) from None
        text = response.get("SecretString")
        if text is None:
            raise SecretError(f"The {self.description} is binary; store it as a secret string (JSON text).")
        if self.plain_text_name:
            if not text.strip():
                raise SecretError(f"The {self.description} is empty; store the token itself as plain text.")
            return {self.plain_text_name: text.strip()}
        return parse_keys(text, f"The {self.description}")


def _secrets_manager_fix(code: str, setting: str) -> str:
    """What to do about a Secrets Manager error `code` for the secret named by the setting `setting`."""
    if code == "ResourceNotFoundException":
        return f"Check the name or ARN and the region ({setting}, AWS_REGION)."
    return _SECRETS_MANAGER_FIXES.get(code, "")


_SECRETS_MANAGER_FIXES = {
    "AccessDeniedException": "Allow secretsmanager:GetSecretValue on it for this identity.",
    "UnrecognizedClientException": "The AWS credentials are not valid for this region.",
    "DecryptionFailure": "Allow kms:Decrypt on the secret's KMS key for this identity.",
}


def _region_from_arn(secret_id: str) -> str | None:
    parts = secret_id.split(":")
    return parts[3] if secret_id.startswith("arn:") and len(parts) > 3 and parts[3] else None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How one source read went: the key names it gave, or the error that says what to fix."""

    description: str
    names: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KeysSnapshot:
    """The keys as read at one moment, and how each source fared. Its repr names keys, never values."""

    values: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[SourceStatus, ...] = ()
    #: What `redact` masks, longest first (so a value containing another is masked whole).
    fragments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found = {f for name, value in self.values.items() for f in secret_fragments(name, value)}
        ordered = sorted((f for f in found if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)
        object.__setattr__(self, "fragments", tuple(ordered))

    def __repr__(self) -> str:
        return f"KeysSnapshot(names={self.names()!r}, sources={self.sources!r})"

    def redact(self, text: str) -> str:
        """`text` with every secret value of this snapshot, and every URL's credentials, replaced by `***`."""
        text = mask_url_credentials(text)
        for fragment in self.fragments:
            if fragment in text:
                text = text.replace(fragment, MASK)
        return text

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(s.error for s in self.sources if s.error)

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None

    def names(self) -> list[str]:
        return sorted(self.values)


class ProviderKeys:
    """The merged keys of all sources, re-read when older than `ttl_seconds` (single-flight)."""

    def __init__(
        self,
        sources: list[KeySource],
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log_errors: bool = True,
    ) -> None:
        """`log_errors=False` is for commands that print the errors themselves (once, not also as a log line)."""
        # Lowest precedence first: later sources override earlier ones.
        self._sources = sources
        self._log_errors = log_errors
        self._ttl = ttl_seconds
        self._clock = clock
        self._snapshot: KeysSnapshot | None = None
        self._read_at = 0.0
        self._lock = LoopLock()  # the CLI and tests may use this object from several event loops

    @property
    def descriptions(self) -> list[str]:
        return [source.description for source in self._sources]

    async def current(self) -> KeysSnapshot:
        """The snapshot, re-read first when it is older than the TTL."""
        if self._snapshot is not None and self._clock() - self._read_at < self._ttl:
            return self._snapshot
        return await self.refresh(only_if_stale=True)

    async def refresh(self, only_if_stale: bool = False) -> KeysSnapshot:
        """Re-read every source now."""
        async with self._lock:
            if only_if_stale and self._snapshot is not None and self._clock() - self._read_at < self._ttl:
                return self._snapshot
            results = await asyncio.gather(*(s.read() for s in self._sources), return_exceptions=True)
            values: dict[str, str] = {}
            statuses: list[SourceStatus] = []
            for source, result in zip(self._sources, results, strict=True):
                if isinstance(result, SecretError):
                    statuses.append(SourceStatus(source.description, error=str(result)))
                elif isinstance(result, BaseException):
                    logger.error("Reading %s failed unexpectedly: %s", source.description, type(result).__name__)
                    error = f"Cannot read {source.description}: {type(result).__name__}."
                    statuses.append(SourceStatus(source.description, error=error))
                else:
                    values.update(result)
                    statuses.append(SourceStatus(source.description, names=tuple(sorted(result))))
            previous = self._snapshot
            self._snapshot = KeysSnapshot(values, tuple(statuses))
            self._read_at = self._clock()
            if self._log_errors and (previous is None or previous.errors != self._snapshot.errors):
                for error in self._snapshot.errors:
                    logger.warning("%s", error)
            return self._snapshot

    def redact(self, text: str) -> str:
        """`text` with every value of the last snapshot's keys secret (and URL credentials) replaced by `***`.

        Every value counts, not only those named like keys: an `AZURE_OPENAI_API_BASE__X` can carry a password.
        Values of fewer than `MIN_SECRET_CHARS` characters and public settings (model lists, API versions)
        are left as they are.
        """
        if self._snapshot is None:
            return mask_url_credentials(text)
        return self._snapshot.redact(text)


def build_provider_keys(settings: Settings, log_errors: bool = True) -> ProviderKeys:
    """The keys sources these settings name, lowest precedence first: environment, files, Secrets Manager.

    A server logs a broken source (once per change); a command that prints it itself passes `log_errors=False`.
    """
    sources: list[KeySource] = [EnvironmentKeySource(), FileKeySource(settings.keys_path)]
    if settings.hf_token_file is not None:
        sources.append(PlainTextFileSource(settings.hf_token_file))
    if settings.keys_secret_id:
        sources.append(SecretsManagerSource(settings.keys_secret_id))
    if settings.hf_token_secret_id:
        sources.append(
            SecretsManagerSource(
                settings.hf_token_secret_id, plain_text_name=HF_TOKEN, setting="GENAI_CHATBOT_HF_TOKEN_SECRET_ID"
            )
        )
    return ProviderKeys(sources, ttl_seconds=settings.keys_ttl_seconds, log_errors=log_errors)
