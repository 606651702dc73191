"""Adding and removing `[[sagemaker.endpoints]]` entries in the TOML settings file, keeping its comments.

`deploy` records the endpoint so it appears in the model list; `delete` (and anything else that retires an
endpoint) removes it. The file is edited with tomlkit, which keeps comments, order and layout, and is
replaced atomically so a crash never leaves half a settings file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, Table

from genai_chatbot.config import SageMakerEndpoint


def _read(config_path: Path) -> tomlkit.TOMLDocument:
    return tomlkit.parse(config_path.read_text(encoding="utf-8")) if config_path.exists() else tomlkit.document()


def _write(config_path: Path, document: tomlkit.TOMLDocument) -> None:
    config_path.parent.mkdir(parents=True, exist_ok=True)
    mode = config_path.stat().st_mode & 0o777 if config_path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(dir=config_path.parent, prefix=f".{config_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(tomlkit.dumps(document))
        os.chmod(temporary, mode)
        os.replace(temporary, config_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _entry(endpoint: SageMakerEndpoint) -> dict[str, Any]:
    """The fields worth writing: the name, and everything that differs from the defaults (plus the format)."""
    fields = endpoint.model_dump(exclude_defaults=True, exclude_none=True)
    return {"name": endpoint.name, **fields, "format": endpoint.format, "context_window": endpoint.context_window}


def add_endpoint(config_path: Path, endpoint: SageMakerEndpoint) -> None:
    """Add `endpoint` as a `[[sagemaker.endpoints]]` entry, replacing an entry of the same name."""
    document = _read(config_path)
    sagemaker = document.get("sagemaker")
    if sagemaker is None:
        sagemaker = tomlkit.table(is_super_table=True)
        document["sagemaker"] = sagemaker
    endpoints = sagemaker.get("endpoints")
    entry = _entry(endpoint)
    if endpoints is None:
        sagemaker["endpoints"] = tomlkit.aot()
        endpoints = sagemaker["endpoints"]
    for index, existing in enumerate(list(endpoints)):
        if existing.get("name") == endpoint.name:
            del endpoints[index]
            break
    if isinstance(endpoints, AoT):
        table = tomlkit.table()
        table.update(entry)
        if len(endpoints):
            table.trivia.indent = "\n"  # a blank line between entries, as people write them
        endpoints.append(table)
    elif isinstance(endpoints, Array):
        inline = tomlkit.inline_table()
        inline.update(entry)
        endpoints.append(inline)
    else:
        raise ValueError(f"{config_path}: sagemaker.endpoints is not a list of tables; fix it by hand.")
    _write(config_path, document)


def remove_endpoint(config_path: Path, name: str) -> bool:
    """Remove the `[[sagemaker.endpoints]]` entry called `name`; False when the file has none (nothing written)."""
    if not config_path.exists():
        return False
    document = _read(config_path)
    sagemaker = document.get("sagemaker")
    endpoints = sagemaker.get("endpoints") if isinstance(sagemaker, Table | dict) else None
    if endpoints is None:
        return False
    for index, existing in enumerate(list(endpoints)):
        if existing.get("name") == name:
            del endpoints[index]
            _write(config_path, document)
            return True
    return False
