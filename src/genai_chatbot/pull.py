"""Download a GGUF model from Hugging Face for the local provider, with the HF token for gated models.

Files come from `{HF_ENDPOINT}/{repo}/resolve/{revision}/{file}` (the Hub's own download URL; `HF_ENDPOINT`
defaults to https://huggingface.co) into `<data dir>/models/`, written to a `.part` file and renamed when
complete, so an interrupted download never looks like a model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from genai_chatbot.secrets import mask_url_credentials

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
CHUNK_BYTES = 1 << 20


class PullError(Exception):
    """The download cannot happen; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class PullRequest:
    repo: str
    filename: str
    revision: str = "main"

    def __post_init__(self) -> None:
        if not _REPO.match(self.repo):
            raise PullError(f"{self.repo!r} is not a Hugging Face repository id like 'HuggingFaceTB/SmolLM2-360M'.")
        parts = self.filename.split("/")
        if not self.filename.endswith(".gguf") or self.filename.startswith("/") or ".." in parts:
            raise PullError(f"{self.filename!r} is not a .gguf file name; the local provider runs GGUF models.")


def target_path(models_dir: Path, request: PullRequest) -> Path:
    return models_dir / request.repo.replace("/", "--") / Path(request.filename).name


def pull(
    request: PullRequest,
    models_dir: Path,
    token: str | None,
    progress: Callable[[int, int | None], None] = lambda done, total: None,
    timeout_seconds: float = 60.0,
) -> Path:
    """Download `request` into `models_dir` and return the file's path; `progress(bytes done, total)`."""
    endpoint = os.environ.get("HF_ENDPOINT", HF_DEFAULT_ENDPOINT).rstrip("/")
    url = f"{endpoint}/{request.repo}/resolve/{request.revision}/{request.filename}"
    target = target_path(models_dir, request)
    partial = target.with_name(target.name + ".part")
    created = _make_dirs(target.parent)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        total, done = _download(url, headers, partial, request, token is not None, progress, timeout_seconds)
        if total is not None and done != total:
            raise PullError(f"The download stopped at {done} of {total} bytes; try again.")
    except httpx.HTTPError as exc:
        _clean_up(partial, created)
        detail = mask_url_credentials(f"{endpoint} failed: {type(exc).__name__}: {exc}")
        raise PullError(f"Downloading from {detail}; try again.") from None
    except BaseException:
        _clean_up(partial, created)
        raise
    partial.replace(target)
    return target


def _download(
    url: str,
    headers: dict[str, str],
    partial: Path,
    request: PullRequest,
    has_token: bool,
    progress: Callable[[int, int | None], None],
    timeout_seconds: float,
) -> tuple[int | None, int]:
    """Stream `url` into `partial`; the expected size (when the server said) and the bytes written."""
    with (
        httpx.Client(follow_redirects=True, timeout=timeout_seconds) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        _check(response, request, has_token)
        total = int(response.headers["content-length"]) if "content-length" in response.headers else None
        done = 0
        with partial.open("wb") as file:
            for piece in response.iter_bytes(CHUNK_BYTES):
                file.write(piece)
                done += len(piece)
                progress(done, total)
    return total, done


def _make_dirs(path: Path) -> list[Path]:
    """Create `path` and its missing parents; the ones created, deepest first (to remove them on failure)."""
    created: list[Path] = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        created.append(directory)
    path.mkdir(parents=True, exist_ok=True)
    return created


def _clean_up(partial: Path, created: list[Path]) -> None:
    """Remove the partial file and the folders this pull created, so a failed pull leaves nothing behind."""
    partial.unlink(missing_ok=True)
    for directory in created:
        try:
            directory.rmdir()
        except OSError:  # not empty: something else was put there meanwhile
            break


def _check(response: httpx.Response, request: PullRequest, has_token: bool) -> None:
    if response.status_code < 400:
        return
    page = f"https://huggingface.co/{request.repo}"
    if response.status_code in (401, 403):
        if has_token:
            raise PullError(
                f"{request.repo} refused the Hugging Face token (HTTP {response.status_code}): accept the model's "
                f"terms on {page} with the token's account, and check the token can read gated repositories."
            )
        raise PullError(
            f"{request.repo} is gated (HTTP {response.status_code}): accept its terms on {page}, then give the "
            "chatbot a Hugging Face token (HF_TOKEN, hf_token_file or hf_token_secret_id)."
        )
    if response.status_code == 404:
        raise PullError(
            f"{request.repo} has no file {request.filename!r} at {request.revision!r}; see {page}/tree/main."
        )
    raise PullError(f"Hugging Face answered HTTP {response.status_code} for {request.repo}/{request.filename}.")
