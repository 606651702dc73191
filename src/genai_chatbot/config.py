"""Settings: one object, read from a TOML file and `GENAI_CHATBOT_*` environment variables, passed down.

Precedence, highest first: values passed in code, environment variables, the TOML file, defaults.
The TOML file is `GENAI_CHATBOT_CONFIG` when set (then it must exist), else `./genai-chatbot.toml` when
present. Nested settings take `__` in environment names: `GENAI_CHATBOT_LOCAL__THREADS=2`.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from genai_chatbot.governance.settings import GroupPolicy, ModelPolicy, ModelPrice, RetrySettings

DEFAULT_CONFIG_FILE = Path("genai-chatbot.toml")
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
#: The stores `database_url` may name, by URL scheme (`postgres://` is libpq's alias of `postgresql://`).
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "dynamodb")

_config_file: ContextVar[Path | None] = ContextVar("genai_chatbot_config_file", default=None)


class ConfigError(Exception):
    """The settings cannot be loaded; the message names the file or variable and what to change."""


class LocalSampling(BaseModel):
    """The local model's default sampling, used when a request sets none; unset = the measured default.

    The measured defaults suit the embedded SmolLM2 (bench/quality.py chose them); a GGUF of your own may
    want its model card's values instead, e.g. `[local.sampling] temperature = 0.6`.
    """

    model_config = {"extra": "forbid"}

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, gt=0)


class LocalModelSettings(BaseModel):
    """The embedded llama.cpp provider."""

    model_config = {"extra": "forbid"}

    enabled: bool = True
    #: A GGUF file to serve instead of the embedded SmolLM2-135M-Instruct.
    model_path: Path | None = None
    #: The model's name in ids (`local/<name>`); defaults to the GGUF's file name without `.gguf`.
    model_name: str | None = None
    #: CPU threads for generation; llama.cpp's default (all cores) when unset.
    threads: int | None = Field(default=None, ge=1)
    #: Context window in tokens: the prompt and the reply together must fit.
    context_size: int = Field(default=2048, ge=256)
    #: Default sampling; each unset value is the one bench/quality.py measured best for SmolLM2.
    sampling: LocalSampling = Field(default_factory=LocalSampling)
    #: Answer `logprobs` / `top_logprobs`. llama.cpp then keeps the logits of every position of the context
    #: (context_size x vocabulary floats: about 400 MB for SmolLM2 at 2048 tokens), so it is off by default
    #: and such requests are refused with a 400 that names the field.
    logprobs: bool = False
    #: A GGUF embedding model served by `POST /v1/embeddings` as `local/<embedding_model_name>`; none when unset.
    embedding_model_path: Path | None = None
    #: Its name in ids; defaults to the GGUF's file name without `.gguf`.
    embedding_model_name: str | None = None


class OpenAICompatibleEndpoint(BaseModel):
    """A self-hosted server that speaks OpenAI's chat API: vLLM, TGI's messages API, llama.cpp server, Ollama."""

    model_config = {"extra": "forbid"}

    #: The provider part of this endpoint's model ids: `<name>/<model>`.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    #: Up to and including `/v1`, e.g. `http://gpu-box:8000/v1` or `http://localhost:11434/v1`.
    base_url: str
    #: The name of this endpoint's key in the keys secret, when it needs one.
    api_key_name: str | None = None
    #: Models to offer; empty asks the endpoint (`GET /models`).
    models: list[str] = Field(default_factory=list)
    display_name: str | None = None
    context_window: int = Field(default=4096, ge=256)
    #: Models of this endpoint that read images in content parts (vision models), e.g. `["llava"]`.
    image_models: list[str] = Field(default_factory=list)
    #: Embedding models of this endpoint, served by `POST /v1/embeddings` (and listed apart from chat models).
    embedding_models: list[str] = Field(default_factory=list)


SageMakerFormat = Literal["tgi", "jumpstart-llama", "mistral-instruct", "openai-messages"]


class SageMakerEndpoint(BaseModel):
    """A SageMaker real-time endpoint serving a chat model."""

    model_config = {"extra": "forbid"}

    #: The endpoint name in SageMaker; also the model name in `sagemaker/<name>`.
    name: str
    display_name: str | None = None
    #: Defaults to `sagemaker.region`, then the standard AWS region settings.
    region: str | None = None
    #: The payload the container expects: Hugging Face TGI, JumpStart Llama (accepts the EULA), Mistral
    #: instruct prompts over TGI, or an OpenAI-style messages API (LMI, vLLM, TGI's /v1 route).
    format: SageMakerFormat = "tgi"
    context_window: int = Field(default=4096, ge=256)
    streaming: bool = True


class SageMakerSettings(BaseModel):
    model_config = {"extra": "forbid"}

    region: str | None = None
    endpoints: list[SageMakerEndpoint] = Field(default_factory=list)
    #: The role SageMaker assumes to pull the container and run the model (`genai-chatbot sagemaker deploy`).
    execution_role_arn: str | None = None
    #: Stop endpoints deployed by `genai-chatbot sagemaker deploy` after this long without an invocation
    #: (`genai-chatbot sagemaker stop-idle`); off when unset.
    stop_idle_after_minutes: int | None = Field(default=None, ge=5)


class LangChainModel(BaseModel):
    """Any LangChain chat model, by import path: `langchain/<name>`."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    #: e.g. `langchain_openai.ChatOpenAI` or `langchain_mistralai.ChatMistralAI`.
    class_path: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    #: Constructor arguments, e.g. `{model = "mistral-large-latest"}`.
    kwargs: dict[str, Any] = Field(default_factory=dict)
    #: Constructor arguments filled from the keys secret, e.g. `{api_key = "MISTRAL_API_KEY"}`. The model is
    #: listed only while every named key is present.
    keys: dict[str, str] = Field(default_factory=dict)
    display_name: str | None = None
    context_window: int = Field(default=4096, ge=256)


AuthMode = Literal["none", "api-keys", "oidc"]


class OIDCSettings(BaseModel):
    """Sign-in through an OpenID Connect provider: Amazon Cognito user pools, Okta, Entra ID, Keycloak."""

    model_config = {"extra": "forbid"}

    #: The issuer URL exactly as tokens carry it in `iss`, e.g. `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    issuer: str | None = None
    #: The `aud` tokens must carry (Cognito access tokens carry it as `client_id`); usually the app client id.
    audience: str | None = None
    #: Where the signing keys are; default: `jwks_uri` of the issuer's discovery document.
    jwks_url: str | None = None
    #: The claim whose values give the role: a value `admin`, `manager` or `user` gives that role.
    role_claim: str = "cognito:groups"
    #: The claim listing the user's groups (used by model access rules); default: the role claim.
    groups_claim: str | None = None
    #: The public client the web page signs in with (authorization code + PKCE); default: `audience`.
    client_id: str | None = None
    #: Scopes the web page asks for.
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    #: Signature algorithms accepted; symmetric ones (HS*) and `none` are never accepted.
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"])


class LimitSettings(BaseModel):
    """Bounds on every input, so no request can exhaust memory or storage. Exceeding one is a 413 or 422."""

    model_config = {"extra": "forbid"}

    #: Largest request body accepted, in bytes (413 beyond it, before it is read whole).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: Longest message content, in characters.
    max_content_chars: int = Field(default=200_000, ge=1)
    #: Longest system prompt, in characters.
    max_system_prompt_chars: int = Field(default=50_000, ge=1)
    #: Most messages in one `/v1/chat/completions` request.
    max_messages: int = Field(default=1000, ge=1)
    #: Longest session title, in characters.
    max_title_chars: int = Field(default=200, ge=1)
    #: Highest `max_tokens` a request may ask for.
    max_tokens_ceiling: int = Field(default=32_768, ge=1)
    #: Largest image in a `/v1` content part, in bytes once decoded (or fetched).
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    #: Most images in one `/v1/chat/completions` request.
    max_images: int = Field(default=16, ge=0)
    #: Most texts in one `/v1/embeddings` request.
    max_embedding_inputs: int = Field(default=2048, ge=1)
    #: Most characters of all texts of one `/v1/embeddings` request together.
    max_embedding_chars: int = Field(default=1_000_000, ge=1)


class Settings(BaseSettings):
    """Everything genai-chatbot can be configured with. Field names are public interface: keep them."""

    model_config = SettingsConfigDict(
        env_prefix="GENAI_CHATBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    #: Where the SQLite history (and later the local keys file) lives.
    data_dir: Path = Path("data")
    #: Where sessions, messages, users and keys are stored: `sqlite:///path/chat.sqlite3` (default:
    #: `<data_dir>/chat.sqlite3`), `postgresql://user:password@host:port/database` or `dynamodb://TABLE_PREFIX`
    #: (region and credentials from the standard AWS settings). It may hold a password:
    #: never in a repr, a log line or an error (see `genai_chatbot.redaction.redact_url`).
    database_url: str | None = Field(default=None, repr=False)
    #: The model used when a request names none.
    default_model: str = f"local/{EMBEDDED_MODEL_NAME}"
    #: Applied when a conversation has no system prompt; an empty string disables it. Small models need it.
    default_system_prompt: str = "You are a helpful assistant."
    #: Reply budget when a request sets no `max_tokens`.
    default_max_tokens: int = Field(default=512, ge=1)
    #: A request field the model cannot honour (e.g. `logprobs` to Bedrock) is dropped and logged instead
    #: of answered with a 400: for clients that send every field they know, whatever the model.
    drop_unsupported_params: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    #: Who may use the server: `none` (one user `default`, loopback addresses only), `api-keys` (users and
    #: keys managed with `genai-chatbot users` / `keys`) or `oidc` (bearer JWTs of an OpenID Connect provider).
    auth: AuthMode = "none"
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    #: Host names the server answers to besides localhost, 127.0.0.1, [::1] and the bound address.
    allowed_hosts: list[str] = Field(default_factory=list)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    #: Fetch `http(s)` image URLs in `/v1` content parts (else only `data:` URLs are taken): bounded by
    #: `limits.max_image_bytes`, with a timeout, never following a redirect.
    fetch_image_urls: bool = False
    #: Let `fetch_image_urls` reach loopback, private and link-local addresses (refused by default: a
    #: caller must not make the server read its own network).
    fetch_image_urls_allow_private: bool = False
    #: Deprecated: bearer tokens mapped to user ids. Still accepted (as keys of role `user`) when `auth` is
    #: `api-keys`; move them to `genai-chatbot keys create`.
    users: dict[str, str] = Field(default_factory=dict, repr=False)  # its keys are tokens: never in a repr
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)

    # Provider keys ---------------------------------------------------------------------------------
    #: The JSON keys file; default `<data_dir>/keys.json`, created as `{}` (mode 0600) when missing.
    keys_file: Path | None = None
    #: An AWS Secrets Manager secret (name or ARN) holding the keys JSON object.
    keys_secret_id: str | None = None
    #: How long keys are cached before every source is read again.
    keys_ttl_seconds: float = Field(default=60.0, ge=0)
    #: A file holding the Hugging Face token (plain text), for gated models.
    hf_token_file: Path | None = None
    #: A Secrets Manager secret (name or ARN) holding the Hugging Face token as plain text.
    hf_token_secret_id: str | None = None

    # Providers -------------------------------------------------------------------------------------
    #: Seconds a provider call may take before it fails (per request; streams: between chunks).
    request_timeout_seconds: float = Field(default=60.0, gt=0)
    #: Turns Amazon Bedrock on, in this region (may differ from where the chatbot runs).
    bedrock_region: str | None = None
    #: A role to assume for Bedrock calls (cross-account access).
    bedrock_role_arn: str | None = None
    openai_compatible: list[OpenAICompatibleEndpoint] = Field(default_factory=list)
    sagemaker: SageMakerSettings = Field(default_factory=SageMakerSettings)
    langchain: list[LangChainModel] = Field(default_factory=list)
    # Governance (governance/settings.py): model access and limits per group, prices, per-model fallbacks.
    groups: dict[str, GroupPolicy] = Field(default_factory=dict)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    models: dict[str, ModelPolicy] = Field(default_factory=dict)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    #: Record every turn's usage and cost in the history database, and enforce budgets and rate limits
    #: (which count on it); false turns both off.
    record_usage: bool = True
    #: Rate-limit counters in Redis instead of the history store, e.g. `redis://127.0.0.1:6379/0`.
    redis_url: str | None = Field(default=None, repr=False)
    #: Prometheus metrics at `/metrics` (governance/metrics.py); `false` neither counts nor serves them.
    metrics: bool = True
    #: A bearer token that may read `/metrics` when authentication is on (besides admin keys).
    metrics_token: str | None = Field(default=None, repr=False)
    #: Export OpenTelemetry traces to this OTLP/HTTP endpoint (also read from OTEL_EXPORTER_OTLP_ENDPOINT).
    otlp_endpoint: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str | None) -> str | None:
        if url is not None:
            scheme = url.partition("://")[0].lower() if "://" in url else ""
            if scheme not in DATABASE_SCHEMES:
                # The URL itself is never repeated: it may hold a password.
                raise ValueError(
                    f"unsupported database URL scheme {scheme or '(none)'!r}; use sqlite:///path/chat.sqlite3, "
                    "postgresql://user:password@host:port/database or dynamodb://TABLE_PREFIX"
                )
        return url

    @property
    def database_path(self) -> Path:
        """The SQLite history file: the path of a `sqlite:///` `database_url`, else `<data_dir>/chat.sqlite3`."""
        if self.database_url and self.database_url.lower().startswith("sqlite://"):
            path = self.database_url.partition("://")[2].removeprefix("/")
            if path:
                return Path(path)
        return self.data_dir / "chat.sqlite3"

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def resolve_config_file(explicit: Path | None = None) -> Path | None:
    """The TOML file to read: `explicit`, else `GENAI_CHATBOT_CONFIG`, else `./genai-chatbot.toml` if present."""
    if explicit is not None:
        named, fix = explicit, "or pass the path of an existing file to --config"
    elif os.environ.get("GENAI_CHATBOT_CONFIG"):
        named, fix = Path(os.environ["GENAI_CHATBOT_CONFIG"]), "or unset GENAI_CHATBOT_CONFIG"
    else:
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    if not named.is_file():
        raise ConfigError(f"Config file {str(named)!r} does not exist; create it {fix}.")
    return named


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the environment and the TOML file; raise `ConfigError` with the fix when invalid."""
    toml_file = resolve_config_file(config_file)
    token = _config_file.set(toml_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f" (file {toml_file})" if toml_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"Invalid settings{where}: {problems}") from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"Cannot read config file {toml_file}: {exc}") from None
    finally:
        _config_file.reset(token)
