"""The provider keys secret: its sources, its TTL, and errors that say what to do without echoing values."""

from __future__ import annotations

import io
import json
import logging
import stat
import uuid
from pathlib import Path

import boto3
import pytest

from aws_local import aws_env, moto_url  # noqa: F401  (fixtures)
from genai_chatbot.config import Settings
from genai_chatbot.secrets import (
    EnvironmentKeySource,
    FileKeySource,
    PlainTextFileSource,
    ProviderKeys,
    SecretError,
    SecretsManagerSource,
    build_provider_keys,
    install_log_redaction,
    parse_keys,
)

DOCUMENTED_AZURE_SECRET = {
    "AZURE_OPENAI_MODELS": "Model1,Model2",
    "AZURE_OPENAI_API_TYPE__Model1": "azure",
    "AZURE_OPENAI_API_VERSION__Model1": "2023-05-15",
    "AZURE_OPENAI_API_BASE__Model1": "https://model1.openai.azure.com/",
    "AZURE_OPENAI_API_KEY__Model1": "key-one-xxxxxxxxxxxxxxxxxxxxxx",
    "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model1": "Model1DeploymentName",
    "AZURE_OPENAI_API_TYPE__Model2": "azure",
    "AZURE_OPENAI_API_VERSION__Model2": "2023-07-01-preview",
    "AZURE_OPENAI_API_BASE__Model2": "https://model2.openai.azure.com/",
    "AZURE_OPENAI_API_KEY__Model2": "key-two-xxxxxxxxxxxxxxxxxxxxxx",
    "AZURE_OPENAI_API_DEPLOYMENT_NAME__Model2": "Model2DeploymentName",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("value", ["", "  \n", "''", '""'])
def test_empty_secret_string_is_rejected_with_fix(value: str) -> None:
    with pytest.raises(SecretError, match=r"is an empty string; store \{\} when no keys are needed"):
        parse_keys(value, "The keys secret")


def test_invalid_json_says_where_without_quoting_the_secret() -> None:
    with pytest.raises(SecretError, match=r"line 1, column 41.*trailing comma") as caught:
        parse_keys('{"OPENAI_API_KEY": "sk-live-0123456789",}', "The keys secret")
    assert "sk-live-0123456789" not in str(caught.value)


def test_a_json_array_is_not_an_object() -> None:
    with pytest.raises(SecretError, match=r"must be a JSON object.*not a JSON array"):
        parse_keys("[]", "The keys secret")


def test_a_non_string_value_names_the_key_but_not_the_value() -> None:
    with pytest.raises(SecretError, match="'COHERE_API_KEY' must be a string, not a JSON number") as caught:
        parse_keys('{"COHERE_API_KEY": 123456789}', "The keys secret")
    assert "123456789" not in str(caught.value)


async def test_the_keys_file_is_created_empty_and_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys.json"
    assert await FileKeySource(path).read() == {}
    assert json.loads(path.read_text()) == {}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_environment_variables_named_like_keys_are_taken() -> None:
    environ = {"OPENAI_API_KEY": "sk-a", "AZURE_OPENAI_API_KEY__Model1": "k", "HF_TOKEN": "hf", "HOME": "/root"}
    assert await EnvironmentKeySource(environ).read() == {
        "OPENAI_API_KEY": "sk-a",
        "AZURE_OPENAI_API_KEY__Model1": "k",
        "HF_TOKEN": "hf",
    }


async def test_a_key_added_to_the_file_appears_after_the_ttl(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{}")
    clock = FakeClock()
    keys = ProviderKeys([FileKeySource(path)], ttl_seconds=60, clock=clock)
    assert (await keys.current()).get("COHERE_API_KEY") is None
    path.write_text('{"COHERE_API_KEY": "co-123456"}')
    clock.now += 59
    assert (await keys.current()).get("COHERE_API_KEY") is None  # still cached
    clock.now += 2
    assert (await keys.current()).get("COHERE_API_KEY") == "co-123456"
    path.write_text("{}")
    assert (await keys.refresh()).get("COHERE_API_KEY") is None  # `models --refresh` forces it


async def test_a_broken_source_disables_only_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("")
    keys = ProviderKeys([EnvironmentKeySource({"OPENAI_API_KEY": "sk-env"}), FileKeySource(path)])
    snapshot = await keys.current()
    assert snapshot.get("OPENAI_API_KEY") == "sk-env"
    assert snapshot.errors == (f"Keys file {path} is an empty string; store {{}} when no keys are needed, not ''.",)


async def test_later_sources_win(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"OPENAI_API_KEY": "sk-file"}')
    keys = ProviderKeys([EnvironmentKeySource({"OPENAI_API_KEY": "sk-env"}), FileKeySource(path)])
    assert (await keys.current()).get("OPENAI_API_KEY") == "sk-file"


async def test_an_empty_hf_token_file_is_an_error(tmp_path: Path) -> None:
    token = tmp_path / "hf"
    token.write_text("\n")
    with pytest.raises(SecretError, match="is empty; put the token itself in it"):
        await PlainTextFileSource(token).read()
    token.write_text("hf_abcdef\n")
    assert await PlainTextFileSource(token).read() == {"HF_TOKEN": "hf_abcdef"}


# Secrets Manager, through boto3 against a real moto server ------------------------------------------


def create_secret(value: str) -> str:
    name = f"genai-chatbot-keys-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


@pytest.mark.usefixtures("aws_env")
async def test_the_documented_azure_secret_is_read_from_secrets_manager() -> None:
    name = create_secret(json.dumps(DOCUMENTED_AZURE_SECRET))
    snapshot = await ProviderKeys([SecretsManagerSource(name)]).current()
    assert snapshot.errors == ()
    assert snapshot.get("AZURE_OPENAI_MODELS") == "Model1,Model2"
    assert snapshot.get("AZURE_OPENAI_API_DEPLOYMENT_NAME__Model2") == "Model2DeploymentName"


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("''", r"is an empty string; store \{\} when no keys are needed"),
        (" ", r"is an empty string; store \{\} when no keys are needed"),
        ('{"a": 1,}', r"not valid JSON: .* line 1, column 9"),
        ("[]", r"must be a JSON object"),
    ],
)
async def test_bad_secrets_manager_values_give_clear_errors(value: str, message: str) -> None:
    name = create_secret(value)
    snapshot = await ProviderKeys([SecretsManagerSource(name)]).current()
    [error] = snapshot.errors
    assert name in error
    with pytest.raises(SecretError, match=message):
        await SecretsManagerSource(name).read()


@pytest.mark.usefixtures("aws_env")
async def test_a_key_added_to_secrets_manager_appears_after_the_ttl() -> None:
    name = create_secret("{}")
    clock = FakeClock()
    keys = ProviderKeys([SecretsManagerSource(name)], ttl_seconds=60, clock=clock)
    assert (await keys.current()).names() == []
    boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString='{"AI21_API_KEY": "ai21-secret"}')
    clock.now += 61
    assert (await keys.current()).get("AI21_API_KEY") == "ai21-secret"


@pytest.mark.usefixtures("aws_env")
async def test_a_missing_secret_says_how_to_fix_it() -> None:
    with pytest.raises(SecretError, match=r"ResourceNotFoundException\. Check the name or ARN and the region"):
        await SecretsManagerSource("does-not-exist").read()


@pytest.mark.usefixtures("aws_env")
async def test_the_hf_token_is_a_plain_text_secret(tmp_path: Path) -> None:
    name = create_secret("hf_plain_text_token\n")
    settings = Settings(data_dir=tmp_path, hf_token_secret_id=name)
    snapshot = await build_provider_keys(settings).current()
    assert snapshot.get("HF_TOKEN") == "hf_plain_text_token"


async def test_key_values_are_masked_in_what_the_log_handlers_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the server installs it: a filter on the handlers, which sees the records of every child logger."""
    path = tmp_path / "keys.json"
    path.write_text('{"OPENAI_API_KEY": "sk-very-secret-value"}')
    keys = ProviderKeys([FileKeySource(path)])
    await keys.current()
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    parent = logging.getLogger("genai_chatbot_redaction_test")
    monkeypatch.setattr(parent, "handlers", [handler])
    monkeypatch.setattr(parent, "level", logging.INFO)
    install_log_redaction(keys, loggers=(parent.name,))
    child = logging.getLogger(f"{parent.name}.provider")  # a module's logger: no filter of its own
    child.info("calling with %s", "sk-very-secret-value")
    try:
        raise RuntimeError("upstream said: bad key sk-very-secret-value")
    except RuntimeError:
        child.exception("failed")
    assert "sk-very-secret-value" not in written.getvalue()
    assert "calling with ***" in written.getvalue() and "bad key ***" in written.getvalue()
    assert child.filters == [] and len(handler.filters) == 1
