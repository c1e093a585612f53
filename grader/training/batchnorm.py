"""Precise BatchNormalization statistics: re-estimated on training batches before every
evaluation, so a model is graded on what it learned, not on how far its moving averages got."""

from __future__ import annotations

import numpy as np

from grader.lazy import keras as keras_module, tensorflow

BN_BATCHES = 16  # training batches that re-estimate BatchNormalization statistics at the end
BN_EPOCH_BATCHES = 4  # ... and after the other epochs, for the validation curve only


def recalibrate_batch_norm(model, batches, forward=None) -> None:
    """Set every BatchNormalization layer's moving statistics to their exact average over
    ``batches`` of training images ("precise BN").

    Keras starts the moving variance at 1 and updates it with momentum 0.99, so after a few
    hundred steps (a short profile) it still remembers the 1 while a layer's real variance may be
    0.005: evaluated with those statistics, a well-trained model predicts one class. Training
    never reads the moving statistics, so replacing them changes nothing but evaluation, and
    grades every model's BatchNormalization alike whatever momentum the student chose.

    With momentum 0 each forward pass leaves one batch's statistics in the moving ones; they are
    read and averaged here. ``forward`` is that pass, compiled once per model by
    :func:`batch_norm_forward` (a Python call of the model runs layer by layer, about twice as
    long); without it the model is called directly.
    """
    from grader.model.rebuild import walk_layers

    keras = keras_module()

    layers = [layer for layer in walk_layers(model)
              if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return
    forward = forward or (lambda images: model(images, training=True))
    momenta = [layer.momentum for layer in layers]
    means = [np.zeros(layer.moving_mean.shape, np.float64) for layer in layers]
    variances = [np.zeros(layer.moving_variance.shape, np.float64) for layer in layers]
    count = 0
    try:
        for layer in layers:
            layer.momentum = 0.0
        for images, _ in batches:
            forward(images)
            count += 1
            for layer, mean, variance in zip(layers, means, variances):
                mean += layer.moving_mean.numpy()
                variance += layer.moving_variance.numpy()
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if count:
        for layer, mean, variance in zip(layers, means, variances):
            layer.moving_mean.assign(mean / count)
            layer.moving_variance.assign(variance / count)


def batch_norm_forward(model):
    """The training-mode forward pass :func:`recalibrate_batch_norm` runs, compiled. It is
    traced with the momentum the recalibration sets (0), so it is only for that."""
    return tensorflow().function(lambda images: model(images, training=True),
                                 reduce_retracing=True)
