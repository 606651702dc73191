"""How providers describe their models: the one `ModelInfo` factory, named catalogue entries, doctor rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from genai_chatbot.models.types import Diagnosis, GenerationDefaults, ModelInfo


def model_info(
    provider: str,
    name: str,
    display_name: str | None = None,
    *,
    context_window: int = 4096,
    unavailable_reason: str | None = None,
    streaming: bool = True,
    extra: Mapping[str, str] | None = None,
    defaults: GenerationDefaults | None = None,
    input_modalities: tuple[str, ...] = ("text",),
    features: frozenset[str] = frozenset(),
) -> ModelInfo:
    """A model as the model list shows it: id `provider/name`, unavailable exactly when a reason is given."""
    return ModelInfo(
        id=f"{provider}/{name}",
        provider=provider,
        name=name,
        display_name=display_name or name,
        streaming=streaming,
        context_window=context_window,
        available=unavailable_reason is None,
        unavailable_reason=unavailable_reason,
        extra=dict(extra or {}),
        defaults=defaults or GenerationDefaults(),
        input_modalities=input_modalities,
        features=features,
    )


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A chat model: its API name, the name people see, and its context window in tokens."""

    name: str
    display_name: str
    context_window: int

    def info(
        self, provider: str, unavailable_reason: str | None = None, features: frozenset[str] = frozenset()
    ) -> ModelInfo:
        """This model as the model list shows it, unavailable when a reason is given."""
        return model_info(
            provider,
            self.name,
            self.display_name,
            context_window=self.context_window,
            unavailable_reason=unavailable_reason,
            features=features,
        )


def key_diagnosis(provider: str, models: list[ModelInfo]) -> list[Diagnosis]:
    """`doctor`'s rows for a provider whose models share one key: one row, and the key's problem said once.

    A refused key or an unreachable API makes every model unavailable for the same reason; repeating it per
    model would bury it.
    """
    if not models:
        return []
    usable = sum(1 for m in models if m.available)
    rows = [Diagnosis(provider, "ok" if usable else "error", f"{usable} of {len(models)} models available")]
    reasons = dict.fromkeys(m.unavailable_reason or "unavailable" for m in models if not m.available)
    rows.extend(Diagnosis(provider, "error", reason) for reason in reasons)
    return rows
