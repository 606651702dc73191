"""`serve` refuses a non-loopback address without authentication, unless told `--unsafe-no-auth`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aws_local import free_port
from leak_scan import scan_text

# Real server processes, several stores or CLI subprocesses: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

# TEST-NET-1 (RFC 5737): no interface here has it, so a server that goes ahead fails to bind and exits,
# after its start-up log, without ever listening anywhere.
UNASSIGNED = "192.0.2.1"


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "genai-chatbot.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[local]\nenabled = false\n')
    result = subprocess.run(
        [sys.executable, "-m", "genai_chatbot", "serve", "--config", str(config), "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", **(env or {})},
    )
    scan_text(result.stdout + result.stderr, f"serve {' '.join(args)}")
    return result


def test_serve_on_every_interface_without_auth_refuses_to_start_and_names_the_fix(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", UNASSIGNED):
        result = serve(tmp_path, "--host", host)
        assert result.returncode == 2, result.stderr
        assert f"refusing to listen on {host}" in result.stderr
        assert '"api-keys"' in result.stderr and '"oidc"' in result.stderr and "--unsafe-no-auth" in result.stderr
        assert "Uvicorn running" not in result.stderr


def test_unsafe_no_auth_starts_anyway_with_a_warning(tmp_path: Path) -> None:
    result = serve(tmp_path, "--host", UNASSIGNED, "--unsafe-no-auth")
    # It went ahead: logged the warning first, then tried to bind (which this address cannot).
    assert result.returncode != 2
    warning = next(line for line in result.stderr.splitlines() if "--unsafe-no-auth" in line)
    assert warning.startswith("WARNING") and UNASSIGNED in warning and "without authentication" in warning
    assert "error while attempting to bind" in result.stderr


def test_the_setting_host_is_checked_like_the_option(tmp_path: Path) -> None:
    result = serve(tmp_path, env={"GENAI_CHATBOT_HOST": "0.0.0.0"})
    assert result.returncode == 2 and "refusing to listen on 0.0.0.0" in result.stderr
