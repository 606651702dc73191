"""What every new HTTP or AWS client rebuilds, built once per test process: the test run's biggest CPU cost.

The server makes its clients once (one per store, provider and key); the tests make thousands, one or more
per test, and two things each client rebuilds from files took a fifth of the fast suite's CPU time (py-spy):

- botocore's model files. Every `boto3.session.Session()` builds its own `Loader`, which parses
  `endpoints.json` (over 1 MB) and the service's model again. Here the sessions of the test process share
  one loader per data path, exactly as the clients of one session share theirs in production.
- The TLS context that verifies servers. httpx (and httpx2, under the openai SDK) build one per client,
  reading about 150 CA certificates: 25 ms each. Here the default one (`verify=True`, no client
  certificate) is built once per library, trust setting and `SSL_CERT_FILE`/`SSL_CERT_DIR`, and shared,
  as one client shares it among its connections. Any other `verify` still gets its own context.

Subprocesses (the CLI, `serve`) are untouched: they build their clients as in production.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import botocore.loaders
import botocore.session
import httpx._transports.default
import httpx2._transports.default


def share_client_setup() -> None:
    """Share botocore's loaders and the default TLS contexts among the clients of this process."""
    _share_botocore_loaders()
    for transports in (httpx._transports.default, httpx2._transports.default):
        _share_default_tls_context(transports)


class _EachPathOnce(list[str]):
    """A loader's search paths, to which boto3 appends its own folder once per session: kept once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _share_botocore_loaders() -> None:
    original = botocore.session.create_loader
    if getattr(original, "shared", False):
        return
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> Any:
        loader = loaders.get(search_path_string)
        if loader is None:
            loader = original(search_path_string)
            loader._search_paths = _EachPathOnce(loader.search_paths)
            loaders[search_path_string] = loader
        return loader

    create_loader.shared = True  # type: ignore[attr-defined]
    botocore.session.create_loader = create_loader


def _share_default_tls_context(transports: ModuleType) -> None:
    original: Callable[..., ssl.SSLContext] = transports.create_ssl_context
    if getattr(original, "shared", False):
        return
    contexts: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
    lock = threading.Lock()

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        with lock:
            if key not in contexts:
                contexts[key] = original(verify=True, cert=None, trust_env=trust_env)
            return contexts[key]

    create_ssl_context.shared = True  # type: ignore[attr-defined]
    transports.create_ssl_context = create_ssl_context
