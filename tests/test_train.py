"""Pieces of trusted training that the grading tests only see through a final accuracy."""

from __future__ import annotations

import numpy as np
import pytest

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


@pytest.mark.training
def test_the_final_validation_is_made_once_and_closes_the_curve() -> None:
    """train() validates the final model itself (the result's accuracy) and appends it to the
    curve; a profile without ``validate_every_epoch`` draws no curve before it."""
    import dataclasses

    from grader.exercise import load_exercise
    from grader.lazy import keras as keras_module
    from grader.training.data import Split
    from grader.training.train import evaluate, train

    keras = keras_module()
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.BatchNormalization(),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    config = keras.saving.serialize_keras_object(model)
    rng = np.random.default_rng(1)

    def split(n: int) -> Split:
        return Split(rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                     np.arange(n) % 3, tuple(f"{i}.jpg" for i in range(n)))

    training_images, validation_images = split(32), split(12)
    smoke = load_exercise().profile("smoke")
    for every_epoch in (True, False):
        profile = dataclasses.replace(smoke, epochs=3, batch_size=8, label_smoothing=0.1,
                                      validate_every_epoch=every_epoch)
        trained = train(config, training_images, validation_images, None, 3, profile,
                        precision="float32")
        history = trained.history
        assert len(history["accuracy"]) == 3
        assert len(history["val_accuracy"]) == len(history["val_loss"]) == (3 if every_epoch
                                                                            else 1)
        assert history["val_accuracy"][-1] == trained.validation.accuracy
        assert trained.validation_seconds > 0
    # the loss computed from the predictions is the one Keras' evaluate() reports
    compiled = keras.saving.deserialize_keras_object(config)
    compiled.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    from grader.training.train import make_dataset
    keras_loss = compiled.evaluate(make_dataset(validation_images, 3, profile, False), verbose=0)
    ours = evaluate(compiled, validation_images, 3, profile)[1]
    assert abs(ours - keras_loss) < 1e-4


@pytest.mark.training
def test_a_profile_with_two_seeds_trains_twice_and_decides_on_the_mean(tmp_path) -> None:
    import dataclasses

    from grader.exercise import load_exercise
    from grader.lazy import keras as keras_module
    from grader.training.data import synthesize
    from grader.training.job import TrainingJob, trusted_training

    keras = keras_module()
    exercise = load_exercise()
    synthesize(tmp_path, exercise.classes, 64, 48, 0, shards=16)
    model = keras.Sequential([keras.Input((192, 192, 3)),
                              keras.layers.Conv2D(4, 3, strides=8, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.5),
                              keras.layers.Dense(5, activation="softmax")])
    profile = dataclasses.replace(exercise.profile("smoke"), seeds=2, epochs=2, batch_size=4)
    heard = []
    trained = trusted_training(keras.saving.serialize_keras_object(model),
                               TrainingJob(tmp_path, None, exercise, profile, "float32"),
                               heard.append)
    runs = trained.training.runs
    assert [run["seed"] for run in runs] == [42, 43]
    assert trained.accuracy == pytest.approx(sum(run["accuracy"] for run in runs) / 2)
    assert runs[0]["accuracy"] == trained.training.val_accuracy   # the summary is the first's
    assert runs[0]["seconds"] > 0 and runs[1]["seconds"] > 0
    # one announcement, for both trainings
    assert len(heard) == 1 and heard[0].runs == 2
    one = trained.training.projection["projected_seconds"]
    assert heard[0].projected_seconds == pytest.approx(2 * one, rel=0.01)
    assert "2 trainings (seeds) of 2 epochs" in heard[0].line()
