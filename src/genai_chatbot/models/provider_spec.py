"""How a provider is declared: one row of the registry's table.

A row says which provider it is, which keys of the keys secret turn it on, and how to build it from the
settings and the keys. `build_registry` reads the built-in rows (`providers/table.py`) and then every
object installed under the entry-point group `genai_chatbot.providers`, so a separate package adds a
provider by declaring, in its own `pyproject.toml`::

    [project.entry-points."genai_chatbot.providers"]
    acme = "acme_chatbot:SPEC"        # a ProviderSpec

This module imports no provider: provider modules import it, and nothing here imports them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genai_chatbot.config import Settings
from genai_chatbot.models.provider import Provider
from genai_chatbot.secrets import ProviderKeys

#: The entry-point group a separate package registers its `ProviderSpec`s under.
ENTRY_POINT_GROUP = "genai_chatbot.providers"


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a row's `build` gets: the settings, and the keys it must read at every call (never capture)."""

    settings: Settings
    keys: ProviderKeys

    @property
    def timeout_seconds(self) -> float:
        """How long one provider call may take (`request_timeout_seconds`)."""
        return self.settings.request_timeout_seconds


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One row of the registry's table.

    `build` returns the providers this row gives for these settings: none when its settings leave it off,
    usually one, several for a row that reads a list of endpoints. A provider enabled by a key is built
    whether the key is there or not: it lists no models until the key arrives, and keys change without a
    restart.
    """

    #: The provider name, the `provider` part of model ids (a row that builds several: the row's name).
    name: str
    #: Keys of the keys secret that turn it on; empty when its settings do (shown by `doctor` and the docs).
    enabling_keys: tuple[str, ...]
    build: Callable[[BuildContext], Sequence[Provider]]
    #: One line for people: what it serves and how to turn it on.
    summary: str = ""
