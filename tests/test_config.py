"""Settings from a TOML file and GENAI_CHATBOT_* variables, with errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_chatbot.config import ConfigError, Settings, load_settings


def test_defaults_serve_the_embedded_model_from_data() -> None:
    settings = load_settings()
    assert settings.default_model == "local/smollm2-135m-instruct"
    assert settings.database_path == Path("data/chat.sqlite3")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_environment_overrides_the_toml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("genai-chatbot.toml").write_text('data_dir = "from-file"\nport = 9000\n[local]\nthreads = 3\n')
    monkeypatch.setenv("GENAI_CHATBOT_DATA_DIR", "from-env")
    monkeypatch.setenv("GENAI_CHATBOT_LOCAL__CONTEXT_SIZE", "4096")
    settings = load_settings()
    assert settings.data_dir == Path("from-env")
    assert settings.port == 9000
    assert (settings.local.threads, settings.local.context_size) == (3, 4096)


def test_an_unknown_setting_is_an_error_naming_it() -> None:
    Path("genai-chatbot.toml").write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings()


def test_a_bad_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_CHATBOT_PORT", "99999")
    with pytest.raises(ConfigError, match="port"):
        load_settings()


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(broken)


def test_the_deprecated_users_tokens_never_show_in_a_repr_of_the_settings() -> None:
    settings = Settings(users={"tok-secret-0123456789": "alice"})
    assert "tok-secret-0123456789" not in repr(settings)
    assert "tok-secret-0123456789" not in str(settings)
