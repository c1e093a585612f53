"""Feedback that teaches: hints computed from the rebuilt model and the trusted run.

Each hint names the layers or numbers it was computed from, following the codelab's advice.
"""

from __future__ import annotations

import math
from grader.exercise import Exercise
from grader.model.rebuild import CONVOLUTIONS, LayerInfo, ModelInfo
from grader.result import Hint, TrainingSummary

POOLING = frozenset({"MaxPooling2D", "AveragePooling2D"})


def _hint(hint_id: str, message: str) -> Hint:
    return Hint(hint_id, message)


def _flatten_head(info: ModelInfo, share: float) -> Hint | None:
    """Most parameters in Dense layers after a Flatten: suggest GlobalAveragePooling2D."""
    layers = info.layers
    index = next((i for i, l in enumerate(layers) if l.class_name == "Flatten"), None)
    if index is None or not info.params:
        return None
    head = [l for l in layers[index + 1:] if l.class_name == "Dense"]
    head_params = sum(l.params for l in head)
    if not head or head_params / info.params <= share:
        return None
    flatten, first = layers[index], head[0]
    channels = int(flatten.input_shape[-1]) if flatten.input_shape else 0
    flat = math.prod(int(d) for d in flatten.input_shape[1:]) if flatten.input_shape else 0
    saving = (flat - channels) * (first.units or 0)
    return _hint("flatten_dense_head", (
        f"{head_params / info.params:.0%} of your {info.params:,} parameters "
        f"({head_params:,}) sit in the Dense layers after Flatten '{flatten.name}'; the first, "
        f"'{first.name}', alone has {first.params:,}. Replace Flatten with "
        f"GlobalAveragePooling2D: '{first.name}' would see {channels} values instead of "
        f"{flat:,}, saving about {saving:,} parameters, and the model would overfit less."))


def _size_hints(info: ModelInfo, exercise: Exercise,
                training: TrainingSummary) -> list[Hint]:
    hints, limits = [], exercise.hints
    if info.params < limits.underfit_below:
        hints.append(_hint("too_few_params", (
            f"Your model has {info.params:,} parameters; the codelab's solution has about "
            f"{limits.solution_params:,}. A model this small underfits: add Conv2D layers, and "
            f"let the number of filters grow as the resolution shrinks (16 → 32 → 64 → 128).")))
    if info.params > limits.overfit_above:
        photos = training.train_images
        seen = f"with {photos:,} training photos it" if photos else "it"
        hints.append(_hint("too_many_params", (
            f"Your model has {info.params:,} parameters, more than "
            f"{limits.overfit_above:,}: {seen} will memorize the training photos "
            f"(overfit) and train slowly. Use fewer filters or GlobalAveragePooling2D.")))
    return hints


def _downsampling(info: ModelInfo) -> Hint | None:
    """No pooling and no strided convolution: the activations stay huge."""
    if any(l.class_name in POOLING for l in info.layers):
        return None
    spatial = [l for l in info.layers if l.class_name in CONVOLUTIONS and len(l.output_shape) == 4]
    if not spatial or any(_strided(l, info) for l in spatial):
        return None
    largest = max(spatial, key=lambda l: math.prod(int(d) for d in l.output_shape[1:]))
    shape = "x".join(str(d) for d in largest.output_shape[1:])
    return _hint("no_downsampling", (
        f"No layer reduces the resolution: '{largest.name}' outputs {shape} values per image, "
        f"and all convolutions together {info.activation_size:,}. Add MaxPooling2D(2) after each "
        f"convolution or two (or use strides=2) so the resolution halves as filters grow."))


def _strided(layer: LayerInfo, info: ModelInfo) -> bool:
    return bool(layer.input_shape) and len(layer.input_shape) == 4 and \
        layer.output_shape[1] is not None and layer.input_shape[1] is not None and \
        layer.output_shape[1] < layer.input_shape[1]


def _softmax(info: ModelInfo, classes: int) -> Hint | None:
    if info.output_activation == "softmax":
        return None
    last = info.layers[-1] if info.layers else None
    name = f"'{last.name}' ({last.class_name})" if last else "the last layer"
    return _hint("not_softmax", (
        f"The last layer {name} has activation {info.output_activation or 'linear'}: its "
        f"outputs are not probabilities, and sparse_categorical_crossentropy expects them. Use "
        f"Dense({classes}, activation='softmax')."))


def _overfitting(training: TrainingSummary, gap: float) -> Hint | None:
    history = training.history
    train, val = history.get("accuracy"), history.get("val_accuracy")
    if not train or not val or train[-1] - val[-1] <= gap:
        return None
    return _hint("overfitting", (
        f"In the grader's run your model reached {train[-1]:.0%} on the training photos but "
        f"{val[-1]:.0%} on the validation photos: it memorizes instead of generalizing. Add "
        f"Dropout before the last layer, data augmentation (RandomFlip, RandomZoom), or use "
        f"fewer parameters."))


def hints(info: ModelInfo | None, training: TrainingSummary | None,
          exercise: Exercise) -> list[Hint]:
    """All hints for one submission, most important first."""
    if info is None:
        return []
    training = training or TrainingSummary()
    found = [_flatten_head(info, exercise.hints.head_share),
             *_size_hints(info, exercise, training), _downsampling(info),
             _softmax(info, len(exercise.classes)),
             _overfitting(training, exercise.hints.overfit_gap)]
    return [hint for hint in found if hint]
