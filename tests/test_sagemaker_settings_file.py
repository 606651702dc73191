"""`hosting.settings_file`: adding and removing `[[sagemaker.endpoints]]` keeps everything else in the file."""

from __future__ import annotations

from pathlib import Path

from genai_chatbot.config import SageMakerEndpoint, load_settings
from genai_chatbot.hosting.settings_file import add_endpoint, remove_endpoint

ORIGINAL = """# Team settings: reviewed in PR 12
default_model = "local/smollm2"  # the fallback

[sagemaker]
# the role SageMaker assumes
execution_role_arn = "arn:aws:iam::123456789012:role/sm"

[[sagemaker.endpoints]]
# hand-made, keep
name = "hand-made"
format = "tgi"
"""


def endpoint(name: str, window: int = 8192) -> SageMakerEndpoint:
    return SageMakerEndpoint(name=name, region="eu-west-1", format="openai-messages", context_window=window)


def test_add_creates_a_missing_file_with_one_entry(tmp_path: Path) -> None:
    path = tmp_path / "new" / "genai-chatbot.toml"
    add_endpoint(path, endpoint("fresh"))
    [entry] = load_settings(path).sagemaker.endpoints
    assert entry == endpoint("fresh")


def test_add_then_remove_keeps_comments_and_other_entries(tmp_path: Path) -> None:
    path = tmp_path / "genai-chatbot.toml"
    path.write_text(ORIGINAL)
    add_endpoint(path, endpoint("deployed"))
    added = path.read_text()
    assert added.startswith(ORIGINAL)
    assert [e.name for e in load_settings(path).sagemaker.endpoints] == ["hand-made", "deployed"]
    assert remove_endpoint(path, "deployed")
    assert path.read_text().rstrip() == ORIGINAL.rstrip()


def test_adding_an_existing_name_replaces_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "genai-chatbot.toml"
    add_endpoint(path, endpoint("again", 4096))
    add_endpoint(path, endpoint("again", 8192))
    assert load_settings(path).sagemaker.endpoints == [endpoint("again", 8192)]


def test_inline_endpoint_lists_are_edited_in_place(tmp_path: Path) -> None:
    path = tmp_path / "genai-chatbot.toml"
    path.write_text('sagemaker = { endpoints = [{ name = "inline" }] }  # compact\n')
    add_endpoint(path, endpoint("deployed"))
    assert [e.name for e in load_settings(path).sagemaker.endpoints] == ["inline", "deployed"]
    assert "# compact" in path.read_text()


def test_removing_a_name_the_file_lacks_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "genai-chatbot.toml"
    assert not remove_endpoint(path, "absent")
    assert not path.exists()
    path.write_text(ORIGINAL)
    before = path.stat().st_mtime_ns
    assert not remove_endpoint(path, "absent")
    assert path.stat().st_mtime_ns == before
