"""Writes the student notebook and the reference notebook from the cell texts below.

Run from the repository root: `.venv/bin/python tools/make_notebooks.py`. The files it writes
are the committed ones, byte for byte (tests/test_unit_fixtures.py regenerates and compares):
change a notebook here, never by hand.
"""
import sys
import tomllib
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook, new_markdown_cell as md, new_code_cell as code

IMPORTS = """import os, re, math
import numpy as np
import tensorflow as tf
from matplotlib import pyplot as plt
print("Tensorflow version " + tf.__version__)
AUTO = tf.data.AUTOTUNE"""

DETECT = """try: # detect TPUs
    tpu = tf.distribute.cluster_resolver.TPUClusterResolver.connect() # TPU detection
    strategy = tf.distribute.TPUStrategy(tpu)
except ValueError: # no TPU found: detect GPUs
    strategy = tf.distribute.MirroredStrategy() # for GPU or multi-GPU machines (also works on CPU)
print("Number of accelerators: ", strategy.num_replicas_in_sync)"""

PARAMS = """# parameters (the grader replaces these values with its own data location and epoch count)
GCS_PATTERN = 'gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec'
EPOCHS = 20"""

CONFIG = """IMAGE_SIZE = [192, 192]
BATCH_SIZE = 16 * strategy.num_replicas_in_sync
VALIDATION_SPLIT = 0.19
CLASSES = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'] # do not change, maps to the labels in the data (folder names)

# splitting data files between training and validation
filenames = sorted(tf.io.gfile.glob(GCS_PATTERN))
split = int(len(filenames) * VALIDATION_SPLIT)
training_filenames = filenames[split:]
validation_filenames = filenames[:split]
print("Pattern matches {} data files. Splitting dataset into {} training files and {} validation files".format(len(filenames), len(training_filenames), len(validation_filenames)))

def count_data_items(filenames):
    # the number of data items is written in the name of the .tfrec files, i.e. flowers00-230.tfrec = 230 data items
    n = [int(re.compile(r"-([0-9]*)\\.").search(filename).group(1)) for filename in filenames]
    return np.sum(n)

validation_steps = int(count_data_items(validation_filenames)) // BATCH_SIZE
steps_per_epoch = int(count_data_items(training_filenames)) // BATCH_SIZE
print("With a batch size of {}, there will be {} batches per training epoch and {} batch(es) per validation run.".format(BATCH_SIZE, steps_per_epoch, validation_steps))"""

HELPERS = """def dataset_to_numpy_util(dataset, N):
    dataset = dataset.unbatch().batch(N)
    for images, labels in dataset:
        return images.numpy(), labels.numpy()

def title_from_label_and_target(label, correct_label):
    correct = (label == correct_label)
    return "{} [{}{}{}]".format(CLASSES[label], str(correct), ', shoud be ' if not correct else '',
                                CLASSES[correct_label] if not correct else ''), correct

def display_9_images_with_predictions(images, predictions, labels):
    plt.figure(figsize=(13, 13))
    for i, image in enumerate(images[:9]):
        title, correct = title_from_label_and_target(predictions[i], labels[i])
        plt.subplot(3, 3, i + 1)
        plt.axis('off')
        plt.imshow(image)
        plt.title(title, fontsize=16, color='black' if correct else 'red')
    plt.tight_layout()
    plt.show()

def display_training_curves(training, validation, title, subplot):
    if subplot % 10 == 1: # set up the subplots on the first call
        plt.subplots(figsize=(10, 10), facecolor='#F0F0F0')
        plt.tight_layout()
    ax = plt.subplot(subplot)
    ax.set_facecolor('#F8F8F8')
    ax.plot(training)
    ax.plot(validation)
    ax.set_title('model ' + title)
    ax.set_ylabel(title)
    ax.set_xlabel('epoch')
    ax.legend(['train', 'valid.'])"""

READ = """def read_tfrecord(example):
    features = {
        "image": tf.io.FixedLenFeature([], tf.string), # tf.string = bytestring (not text string)
        "class": tf.io.FixedLenFeature([], tf.int64),   # shape [] means scalar
        "one_hot_class": tf.io.VarLenFeature(tf.float32),
    }
    example = tf.io.parse_single_example(example, features)
    image = tf.io.decode_jpeg(example['image'], channels=3)
    image = tf.cast(image, tf.float32) / 255.0  # convert image to floats in [0, 1] range
    image = tf.reshape(image, [*IMAGE_SIZE, 3])  # explicit size will be needed for TPU
    class_label = example['class']
    return image, class_label

def load_dataset(filenames):
    # read from TFRecords. For optimal performance, read from multiple TFRecord files at once
    option_no_order = tf.data.Options()
    option_no_order.experimental_deterministic = False
    dataset = tf.data.TFRecordDataset(filenames, num_parallel_reads=AUTO)
    dataset = dataset.with_options(option_no_order)
    dataset = dataset.map(read_tfrecord, num_parallel_calls=AUTO)
    return dataset

def get_batched_dataset(filenames, train=False):
    dataset = load_dataset(filenames)
    dataset = dataset.cache() # this small dataset can be entirely cached in RAM
    if train:
        dataset = dataset.repeat()
        dataset = dataset.shuffle(2048)
    dataset = dataset.batch(BATCH_SIZE, drop_remainder=True) # drop_remainder will be needed on TPU
    dataset = dataset.prefetch(AUTO)
    return dataset

training_dataset = get_batched_dataset(training_filenames, train=True)
validation_dataset = get_batched_dataset(validation_filenames, train=False)
some_flowers, some_labels = dataset_to_numpy_util(load_dataset(validation_filenames).batch(9), 9)"""

# The reference repeats validation too: fit() reads exactly validation_steps batches per epoch,
# and under tf.distribute in Keras 3 a finite validation set ends in StopIteration at epoch 2.
# The student notebook keeps the codelab's cell as it is.
READ_REFERENCE = READ.replace("""    if train:
        dataset = dataset.repeat()
        dataset = dataset.shuffle(2048)""", """    # repeat validation too: fit() reads exactly validation_steps batches per epoch, and under
    # tf.distribute in Keras 3 a finite validation set ends in StopIteration at epoch 2
    dataset = dataset.repeat()
    if train:
        dataset = dataset.shuffle(2048)""")
assert READ_REFERENCE != READ

STUDENT_MODEL = """# WORK REQUIRED: this one-layer model is only a starting point. Build a convolutional
# network from scratch that beats 75% validation accuracy (the transfer-learning score).
# Tips: stack Conv2D layers with MaxPooling2D in between, and end with
# GlobalAveragePooling2D and Dense(5, activation='softmax') instead of a big Flatten→Dense head.
with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(kernel_size=3, filters=16, padding='same', activation='relu', input_shape=[*IMAGE_SIZE, 3]),
        #
        # YOUR LAYERS HERE
        #
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(5, activation='softmax')
    ])

    model.compile(
        optimizer='adam',
        loss='sparse_categorical_crossentropy',
        metrics=['accuracy'])

model.summary()"""

REFERENCE_MODEL = """# The reference solution, in the shape of the codelab's: a from-scratch stack of 3x3
# convolutions that halves the resolution four times (192 -> 12) and ends with global average
# pooling instead of a Flatten->Dense head, so that its ~294k parameters sit in convolutions.
# Batch normalization on the lower-resolution layers steadies training (not on the two 192x192
# layers, where it would triple the cost of an epoch on a CPU); momentum 0.9 lets its statistics
# settle within the first epochs of a small dataset.
def conv_bn(filters, kernel_size=3):
    return [tf.keras.layers.Conv2D(filters, kernel_size, padding='same', use_bias=False),
            tf.keras.layers.BatchNormalization(momentum=0.9),
            tf.keras.layers.Activation('relu')]

with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.Input(shape=[*IMAGE_SIZE, 3]),
        tf.keras.layers.Conv2D(kernel_size=3, filters=16, padding='same', activation='relu'),
        tf.keras.layers.Conv2D(kernel_size=3, filters=30, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters=60, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        *conv_bn(90), tf.keras.layers.MaxPooling2D(pool_size=2),
        *conv_bn(110), tf.keras.layers.MaxPooling2D(pool_size=2),
        *conv_bn(130), *conv_bn(40, kernel_size=1),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(5, activation='softmax'),
    ], name='flowers_reference')

    model.compile(
        optimizer='adam',
        loss='sparse_categorical_crossentropy',
        metrics=['accuracy'])

model.summary()"""

TRAIN = """history = model.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS,
                    validation_data=validation_dataset, validation_steps=validation_steps)"""

CURVES = """print(history.history.keys())
display_training_curves(history.history['accuracy'], history.history['val_accuracy'], 'accuracy', 211)
display_training_curves(history.history['loss'], history.history['val_loss'], 'loss', 212)"""

PREDICT = """# randomize the input so that you can execute multiple times to change results
permutation = np.random.permutation(len(some_flowers))
some_flowers, some_labels = (some_flowers[permutation], some_labels[permutation])

predictions = model.predict(some_flowers, batch_size=16)
evaluations = model.evaluate(some_flowers, some_labels, batch_size=16)

print(np.array(CLASSES)[np.argmax(predictions, axis=-1)].tolist())
print('[val_loss, val_acc]', evaluations)

display_9_images_with_predictions(some_flowers, np.argmax(predictions, axis=-1), some_labels)"""


def params_cell():
    cell = code(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    return cell


def stable_ids(nb):
    """Cell ids from their positions, so that writing again changes nothing."""
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    return nb


def notebook(title, intro, model_cell, read=READ):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        md(f"# {title}\n\n{intro}"),
        md("## Imports"), code(IMPORTS),
        md("## TPU or GPU detection"), code(DETECT),
        md("## Parameters\nThe grader overrides this cell's values (it is tagged `parameters`)."), params_cell(),
        md("## Configuration"), code(CONFIG),
        md("## Visualization utilities [RUN ME]"), code(HELPERS),
        md("## Read images and labels from TFRecords"), code(read),
        md("## Model"), code(model_cell),
        md("## Training"), code(TRAIN),
        md("## Training curves"), code(CURVES),
        md("## Predictions"), code(PREDICT),
    ]
    return stable_ids(nb)


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from grader import __version__  # noqa: E402  (the checkout's grader, not an installed one)

EXERCISE = tomllib.loads((ROOT / "exercises" / "flowers-cnn" / "exercise.toml").read_text())

BEFORE_YOU_SUBMIT = """## Before you submit: check your notebook

The course grades this notebook automatically: it runs it top to bottom, checks your model against
the exercise's rules, and retrains it from scratch. `grade check` tells you in a minute whether
it will be graded at all, and what to fix. Install the grader your course publishes (its wheel,
or its git repository), then check the saved notebook:

```sh
pip install flowers_grader-{version}-py3-none-any.whl    # or: pip install "git+URL-OF-THE-COURSE-REPOSITORY"
grade check flowers-cnn.ipynb --data DIR                 # DIR: the flower shards (grade data fetch --out DIR)
```

In Colab, save the notebook to Drive (File → Save a copy in Drive), then in a new cell:

```python
from google.colab import drive; drive.mount('/content/drive')
!pip install -q "git+URL-OF-THE-COURSE-REPOSITORY"
!grade check "/content/drive/MyDrive/Colab Notebooks/flowers-cnn.ipynb"
```

Without `--data` the cells that read the photos cannot run, and the check says so; the model is
checked all the same. The check trains nothing: your accuracy comes from the grader's training.
This notebook was published for grader {version}, exercise version {exercise_version}: the check
warns when yours differs.""".format(version=__version__,
                                    exercise_version=EXERCISE["exercise"]["version"])

student = notebook(
    "Flower classifier from scratch (Keras, TPU-ready)",
    "Build a **convolutional neural network from scratch** that recognizes five kinds of flowers: "
    "daisy, dandelion, roses, sunflowers and tulips. Transfer learning reaches 75% on this dataset; "
    "your model must beat that without any pretrained weights. Work through the cells top to bottom; "
    "the cell marked **WORK REQUIRED** is yours to write.",
    STUDENT_MODEL)
student.cells.append(md(BEFORE_YOU_SUBMIT))
# what `grade check` compares with its own versions (grader/check.py)
student.metadata["flowers_grader"] = {"exercise": EXERCISE["exercise"]["id"],
                                      "exercise_version": EXERCISE["exercise"]["version"],
                                      "grader_version": __version__}
stable_ids(student)
reference = notebook(
    "Flower classifier from scratch — reference solution",
    "The course's solution to the exercise. `grade reference` grades it; if it does not pass, the "
    "exercise or the grader is broken.",
    REFERENCE_MODEL, read=READ_REFERENCE)


def notebooks():
    """Each notebook this file writes, by its path in the repository."""
    return {"exercises/flowers-cnn/flowers-cnn.ipynb": student,
            "reference/flowers-cnn.ipynb": reference}


if __name__ == "__main__":
    for path, nb in notebooks().items():
        nbformat.write(nb, str(ROOT / path))
