"""Models known to serve well on SageMaker with the TGI container, and the GPUs of each instance type.

The catalogue backs `deploy`'s defaults (instance type, context, whether a Hugging Face token is needed);
any other Hugging Face model id can be deployed with explicit options. `context_window` is what we serve
on the recommended instance (MAX_TOTAL_TOKENS), which may be less than the model's maximum so that the KV
cache fits the GPU memory: a larger value makes TGI fail its warm-up with an out-of-memory error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    model_id: str
    instance_type: str
    context_window: int
    #: The Hub asks for an accepted licence and a token before it serves the weights.
    gated: bool


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("mistralai/Mistral-7B-Instruct-v0.3", "ml.g5.2xlarge", 8192, gated=True),
    CatalogueEntry("meta-llama/Llama-3.1-8B-Instruct", "ml.g5.2xlarge", 8192, gated=True),
    CatalogueEntry("meta-llama/Llama-3.2-3B-Instruct", "ml.g5.xlarge", 8192, gated=True),
    CatalogueEntry("Qwen/Qwen2.5-7B-Instruct", "ml.g5.2xlarge", 8192, gated=False),
    CatalogueEntry("HuggingFaceH4/zephyr-7b-beta", "ml.g5.2xlarge", 4096, gated=False),
    CatalogueEntry("microsoft/Phi-3-mini-4k-instruct", "ml.g5.xlarge", 4096, gated=False),
)

#: The context used for models outside the catalogue unless `--context-window` says otherwise.
DEFAULT_CONTEXT_WINDOW = 4096

#: GPUs per instance type (SM_NUM_GPUS: TGI shards the model over all of them).
GPUS: dict[str, int] = {
    **{
        f"ml.{family}.{size}": 1
        for family in ("g4dn", "g5", "g6", "g6e")
        for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")
    },
    **{f"ml.{family}.12xlarge": 4 for family in ("g4dn", "g5", "g6", "g6e")},
    **{f"ml.{family}.24xlarge": 4 for family in ("g5", "g6", "g6e")},
    **{f"ml.{family}.48xlarge": 8 for family in ("g5", "g6", "g6e")},
    "ml.p3.2xlarge": 1,
    "ml.p3.8xlarge": 4,
    "ml.p3.16xlarge": 8,
    "ml.p4d.24xlarge": 8,
    "ml.p4de.24xlarge": 8,
    "ml.p5.48xlarge": 8,
}


def lookup(model_id: str) -> CatalogueEntry | None:
    """The catalogue entry for `model_id` (case-insensitive, as the Hub treats ids), or None."""
    wanted = model_id.lower()
    return next((entry for entry in CATALOGUE if entry.model_id.lower() == wanted), None)


def gpus(instance_type: str) -> int | None:
    """How many GPUs `instance_type` has, or None when it is not a GPU type we know."""
    return GPUS.get(instance_type)
