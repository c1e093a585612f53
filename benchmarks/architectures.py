"""The class the accelerator benchmark trains: the reference architecture (its config as the
grader extracted it from reference/flowers-cnn.ipynb, saved in configs/reference.json) and seven
others of the kinds students build, defined here with the Keras API (any backend). Every one
takes 192x192x3 images and ends in a 5-way softmax, within the exercise's parameter budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.lazy import keras as keras_module

CONFIGS = Path(__file__).resolve().parent / "configs"
SIZE, CLASSES = 192, 5


def reference() -> dict[str, Any]:
    return json.loads((CONFIGS / "reference.json").read_text(encoding="utf-8"))


def others() -> dict[str, dict[str, Any]]:
    """name → serialized config, built once here (no weights travel, only the configs)."""
    keras = keras_module()
    layers = keras.layers

    def sequential(name: str, *body) -> dict[str, Any]:
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), *body,
                                  layers.Dense(CLASSES, activation="softmax")], name=name)
        return keras.saving.serialize_keras_object(model)

    def conv(filters: int, strides: int = 1):
        return [layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False),
                layers.BatchNormalization(), layers.ReLU()]

    def functional(name: str, build) -> dict[str, Any]:
        inputs = keras.Input((SIZE, SIZE, 3))
        outputs = layers.Dense(CLASSES, activation="softmax")(build(inputs))
        return keras.saving.serialize_keras_object(keras.Model(inputs, outputs, name=name))

    def fire(x, squeeze: int, expand: int):
        x = layers.Conv2D(squeeze, 1, activation="relu")(x)
        return layers.Concatenate()([layers.Conv2D(expand, 1, activation="relu")(x),
                                     layers.Conv2D(expand, 3, padding="same",
                                                   activation="relu")(x)])

    def squeezenet(x):
        x = layers.Conv2D(32, 3, strides=2, activation="relu")(x)
        for squeeze, expand in ((16, 32), (16, 32), (32, 64), (32, 64), (48, 96)):
            x = layers.MaxPooling2D(2)(fire(x, squeeze, expand))
        return layers.GlobalAveragePooling2D()(x)

    def residual(x):
        x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
        for filters in (32, 64, 128, 128):
            shortcut = layers.Conv2D(filters, 1, strides=2)(x)
            y = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
            y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
            x = layers.ReLU()(layers.Add()([shortcut, y]))
        return layers.GlobalAveragePooling2D()(x)

    return {
        "starter": sequential("starter", layers.Conv2D(16, 3, strides=4, activation="relu"),
                              layers.GlobalAveragePooling2D()),
        "narrow": sequential("narrow", *conv(16, 2), layers.MaxPooling2D(2), *conv(32),
                             layers.MaxPooling2D(2), *conv(64), layers.MaxPooling2D(2),
                             layers.GlobalAveragePooling2D()),
        "wide": sequential("wide", *conv(64, 2), layers.MaxPooling2D(2), *conv(128),
                           layers.MaxPooling2D(2), *conv(256), layers.MaxPooling2D(2), *conv(256),
                           layers.GlobalAveragePooling2D(), layers.Dropout(0.3)),
        "vgg_flatten": sequential("vgg_flatten", *conv(32, 2), *conv(32), layers.MaxPooling2D(2),
                                  *conv(64), layers.MaxPooling2D(2), *conv(64),
                                  layers.MaxPooling2D(2), *conv(64), layers.MaxPooling2D(2),
                                  layers.Flatten(), layers.Dense(64, activation="relu"),
                                  layers.Dropout(0.5)),
        "separable": sequential("separable", *conv(32, 2),
                                *[layer for filters in (64, 128, 128, 256) for layer in (
                                    layers.SeparableConv2D(filters, 3, padding="same",
                                                           use_bias=False),
                                    layers.BatchNormalization(), layers.ReLU(),
                                    layers.MaxPooling2D(2))],
                                layers.GlobalAveragePooling2D()),
        "squeezenet": functional("squeezenet", squeezenet),
        "residual": functional("residual", residual),
    }
