"""The extract stage: what the kernel's extraction cell reported, read as untrusted data.

The payload (grader/kernel/inkernel/extract.py writes it) names the model the notebook built,
carries its Keras JSON config as text, and lists what the kernel saw built or loaded. Only the
config's text goes on, to grader.model.rebuild's limits and allow-lists; the rest only informs
the result.
"""

from __future__ import annotations

from typing import Any

from grader.errors import GradingError


def _candidates(payload: dict[str, Any]) -> list[str]:
    return [str(c) for c in payload.get("candidates") or []][:20]


def choice(payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """How the model was chosen (the result's model fields ``variable``, ``candidates``,
    ``reason`` and ``ambiguous``), and the warnings the payload carries: a choice that was not
    obvious, a TPU that was emulated."""
    candidates = _candidates(payload)
    chosen = {"variable": payload.get("variable"), "candidates": candidates,
              "reason": payload.get("reason"), "ambiguous": bool(payload.get("ambiguous"))}
    warnings = [f"The notebook holds several Keras models ({', '.join(candidates)}); the "
                f"grader took {payload.get('variable')}, {payload.get('reason')}. Name the "
                f"model to grade `model` to choose it yourself."] if chosen["ambiguous"] else []
    if payload.get("emulated_tpu"):
        warnings.append(f"The notebook connected to a TPU ({payload['emulated_tpu'][0]}); the "
                        f"grading machine has none, so the TPU was emulated and the notebook's "
                        f"cells ran on its default device.")
    return chosen, warnings


def config_text(payload: dict[str, Any]) -> str:
    """The model config from the extraction payload, or an error saying what was found."""
    candidates = _candidates(payload)
    config = payload.get("config")
    if isinstance(config, str):
        return config
    if payload.get("error"):
        raise GradingError("extract", f"The grader could not take the model out of the "
                           f"notebook: {payload['error']}. Build your model with keras and "
                           f"assign it to a variable named `model`.")
    if candidates:
        raise GradingError("extract", f"The notebook built several Keras models "
                           f"({', '.join(candidates)}) and none is named `model`. Assign the "
                           f"one to grade to a variable named `model`.")
    raise GradingError("extract", "The notebook never built a Keras model: no variable holds "
                       "one after the last cell. Build your model and assign it to a variable "
                       "named `model`.")


def records(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What the kernel saw built or loaded (it can only make the rules stricter)."""
    return {key: [r for r in payload.get(key) or [] if isinstance(r, dict)][:10]
            for key in ("applications", "loaded_weights")}
