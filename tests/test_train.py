"""Pieces of trusted training that the grading tests only see through a final accuracy."""

from __future__ import annotations

import numpy as np

from grader.training.batchnorm import batch_norm_forward, recalibrate_batch_norm


def test_precise_batch_norm_statistics_are_the_average_over_the_batches() -> None:
    from grader.lazy import keras as keras_module
    keras = keras_module()

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((6, 6, 3)),
        keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    normalization = model.layers[1]
    features = keras.Model(model.inputs[0], model.layers[0].output)
    rng = np.random.default_rng(0)
    # batches whose statistics differ, so a running update would not land on their average
    batches = [((rng.normal(size=(8, 6, 6, 3)) * (1 + k) + k).astype("float32"), None)
               for k in range(3)]
    outputs = [np.asarray(features(images)) for images, _ in batches]
    expected_mean = np.mean([out.mean(axis=(0, 1, 2)) for out in outputs], axis=0)
    expected_variance = np.mean([out.var(axis=(0, 1, 2)) for out in outputs], axis=0)

    for forward in (None, batch_norm_forward(model)):  # eager, then compiled
        normalization.moving_mean.assign(np.zeros(4))
        normalization.moving_variance.assign(np.ones(4))
        recalibrate_batch_norm(model, batches, forward)
        np.testing.assert_allclose(normalization.moving_mean.numpy(), expected_mean,
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(normalization.moving_variance.numpy(), expected_variance,
                                   rtol=1e-4, atol=1e-5)
        assert normalization.momentum == 0.9  # the student's momentum is put back

    recalibrate_batch_norm(model, [], batch_norm_forward(model))  # no batches: unchanged
    np.testing.assert_allclose(normalization.moving_mean.numpy(), expected_mean, rtol=1e-4,
                               atol=1e-5)
