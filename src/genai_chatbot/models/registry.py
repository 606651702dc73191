"""Which models exist now, and which provider serves each id.

The registry is built once from settings and the provider keys, and handed to the chat service. It knows
providers only through the `Provider` contract, and builds them from the table of `ProviderSpec` rows
(`providers/table.py`) and the rows installed packages declare under the entry-point group
`genai_chatbot.providers`. Provider modules import their SDKs lazily, so that a server which never talks
to, say, Cohere does not pay for importing its SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points

from genai_chatbot.config import ConfigError, Settings
from genai_chatbot.models.errors import ModelNotFoundError
from genai_chatbot.models.provider import Provider
from genai_chatbot.models.provider_spec import ENTRY_POINT_GROUP, BuildContext, ProviderSpec
from genai_chatbot.models.redacting import RedactingProvider
from genai_chatbot.models.types import ModelInfo, split_model_id
from genai_chatbot.secrets import ProviderKeys, build_provider_keys


class ModelRegistry:
    """Resolves `provider/model` ids to a provider and lists every model across providers.

    What it hands out (the providers `resolve` returns, the model list) is wrapped in `RedactingProvider`:
    no error message or unavailable reason above the registry holds a value of the keys secret.
    """

    def __init__(
        self, providers: Iterable[Provider], keys: ProviderKeys | None = None, load_problems: Sequence[str] = ()
    ) -> None:
        """`load_problems` are providers that could not be built (broken plugins), shown with `problems()`."""
        self._providers: dict[str, Provider] = {}
        self._load_problems = list(load_problems)
        self._redacting: dict[str, RedactingProvider] = {}
        self.keys = keys or ProviderKeys([])
        for provider in providers:
            if provider.name in self._providers:
                raise ConfigError(f"Two providers are named {provider.name!r}; give each endpoint its own name.")
            self._providers[provider.name] = provider
            self._redacting[provider.name] = RedactingProvider(provider, self.keys)

    @property
    def providers(self) -> dict[str, Provider]:
        """The providers themselves, by name, for code that configures or inspects them (not for callers)."""
        return dict(self._providers)

    @property
    def redacting_providers(self) -> dict[str, Provider]:
        """The providers as callers use them: every message they give masked of secrets."""
        return dict(self._redacting)

    async def list_models(self) -> list[ModelInfo]:
        """Every model of every provider, available or not, in provider order."""
        lists = await asyncio.gather(*(p.list_models() for p in self._redacting.values()))
        return [model for models in lists for model in models]

    async def problems(self) -> list[str]:
        """What keeps models from being listed: unreadable or malformed key sources, plugins that failed."""
        errors = [*(await self.keys.current()).errors, *self._load_problems]
        return [self.keys.redact(error) for error in errors]

    async def problems_with(self, models: list[ModelInfo], default_model: str) -> list[str]:
        """`problems()`, and a default model missing from `models`: what a model list shows beside the models."""
        problems = list(dict.fromkeys(await self.problems()))
        if not any(m.id == default_model for m in models):
            problems.append(self._missing_default(default_model, keys_broken=bool(problems)))
        return problems

    def _missing_default(self, model_id: str, keys_broken: bool) -> str:
        """Why a chat that names no model will fail: the default model is not among the models, and the likely cause."""
        provider_name = model_id.partition("/")[0]
        provider = self._providers.get(provider_name)
        if provider is None:
            cause = f"no provider named {provider_name!r} is enabled"
        elif keys_broken and provider.enabling_keys:
            cause = f"{provider_name}'s key may be in the keys source above that cannot be read"
        else:
            cause = f"{provider_name} lists no such model"
        return (
            f"The default model {model_id!r} is not among the models ({cause}); a chat that names no model fails "
            "until it is. Set default_model to a listed model, or fix its provider (see genai-chatbot doctor)."
        )

    async def refresh(self) -> None:
        """Re-read the keys now and make every provider list its models afresh."""
        await self.keys.refresh()
        await asyncio.gather(*(p.refresh() for p in self._providers.values()))

    async def resolve(self, model_id: str) -> tuple[Provider, ModelInfo]:
        """The provider and model info for `model_id`; `ModelNotFoundError` lists the known ids."""
        provider_name, name = split_model_id(model_id)
        provider = self._redacting.get(provider_name)
        if provider is not None:
            for info in await provider.list_models():
                if info.name == name:
                    return provider, info
        raise ModelNotFoundError(model_id, [m.id for m in await self.list_models() if m.available])

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self._providers.values()))


def build_registry(settings: Settings, keys: ProviderKeys | None = None) -> ModelRegistry:
    """The registry for these settings: every provider of the table and of installed plugins, reading `keys`.

    A plugin that cannot be loaded or built, or that reuses a taken provider name, is left out and named
    in `problems()`; the built-in providers still serve.
    """
    keys = keys or build_provider_keys(settings)
    from genai_chatbot.models.providers.table import BUILTIN_PROVIDERS

    ctx = BuildContext(settings, keys)
    providers = [provider for spec in BUILTIN_PROVIDERS for provider in spec.build(ctx)]
    plugins, problems = plugin_specs()
    taken = {spec.name for spec in BUILTIN_PROVIDERS} | {p.name for p in providers}
    for origin, spec in plugins:
        try:
            built = list(spec.build(ctx))
        except Exception as exc:
            problems.append(f"{origin} failed to build its provider: {type(exc).__name__}: {exc}. {_PLUGIN_FIX}")
            continue
        clash = sorted(({spec.name} | {p.name for p in built}) & taken)
        if clash:
            problems.append(f"{origin} names provider {clash[0]!r}, which is taken; it is left out. {_PLUGIN_FIX}")
            continue
        taken |= {spec.name} | {p.name for p in built}
        providers.extend(built)
    return ModelRegistry(providers, keys, problems)


_PLUGIN_FIX = "Upgrade or uninstall the package that provides it."


def plugin_specs() -> tuple[list[tuple[str, ProviderSpec]], list[str]]:
    """The `ProviderSpec`s installed under the entry-point group, each with who declared it; and the
    entry points that could not be loaded, as problems a person can act on."""
    specs: list[tuple[str, ProviderSpec]] = []
    problems: list[str] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        package = f" of package {point.dist.name!r}" if point.dist is not None else ""
        origin = f"Provider plugin {point.name!r} ({point.value}{package})"
        try:
            spec = point.load()
        except Exception as exc:
            problems.append(f"{origin} cannot be loaded: {type(exc).__name__}: {exc}. {_PLUGIN_FIX}")
            continue
        if not isinstance(spec, ProviderSpec):
            kind = type(spec).__name__
            problems.append(f"{origin} is not a ProviderSpec but of type {kind}; it is left out. {_PLUGIN_FIX}")
            continue
        specs.append((origin, spec))
    return specs, problems
