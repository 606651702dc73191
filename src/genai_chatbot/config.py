"""Settings: one object, read from a TOML file and `GENAI_CHATBOT_*` environment variables, passed down.

Precedence, highest first: values passed in code, environment variables, the TOML file, defaults.
The TOML file is `GENAI_CHATBOT_CONFIG` when set (then it must exist), else `./genai-chatbot.toml` when
present. Nested settings take `__` in environment names: `GENAI_CHATBOT_LOCAL__THREADS=2`.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("genai-chatbot.toml")
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"

_config_file: ContextVar[Path | None] = ContextVar("genai_chatbot_config_file", default=None)


class ConfigError(Exception):
    """The settings cannot be loaded; the message names the file or variable and what to change."""


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


class Settings(BaseSettings):
    """Everything genai-chatbot can be configured with. Field names are public interface: keep them."""

    model_config = SettingsConfigDict(
        env_prefix="GENAI_CHATBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    #: Where the SQLite history (and later the local keys file) lives.
    data_dir: Path = Path("data")
    #: The model used when a request names none.
    default_model: str = f"local/{EMBEDDED_MODEL_NAME}"
    #: Applied when a conversation has no system prompt; an empty string disables it. Small models need it.
    default_system_prompt: str = "You are a helpful assistant."
    #: Reply budget when a request sets no `max_tokens`.
    default_max_tokens: int = Field(default=512, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    #: Bearer tokens of the web API mapped to user ids. Empty: no authentication, one user named "default".
    users: dict[str, str] = Field(default_factory=dict)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "chat.sqlite3"

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
    named = explicit or (Path(os.environ["GENAI_CHATBOT_CONFIG"]) if os.environ.get("GENAI_CHATBOT_CONFIG") else None)
    if named is not None:
        if not named.is_file():
            raise ConfigError(f"Config file {str(named)!r} does not exist; create it or unset GENAI_CHATBOT_CONFIG.")
        return named
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


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
