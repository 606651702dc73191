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
    target.parent.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout_seconds) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            _check(response, request, token is not None)
            total = int(response.headers["content-length"]) if "content-length" in response.headers else None
            done = 0
            with partial.open("wb") as file:
                for piece in response.iter_bytes(CHUNK_BYTES):
                    file.write(piece)
                    done += len(piece)
                    progress(done, total)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        detail = mask_url_credentials(f"{endpoint} failed: {type(exc).__name__}: {exc}")
        raise PullError(f"Downloading from {detail}; try again.") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if total is not None and done != total:
        partial.unlink(missing_ok=True)
        raise PullError(f"The download stopped at {done} of {total} bytes; try again.")
    partial.replace(target)
    return target


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
