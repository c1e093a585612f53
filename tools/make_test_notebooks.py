"""Writes the codelab-style test notebooks of tests/notebooks/.

Run from the repository root: `.venv/bin/python tools/make_test_notebooks.py`. The files it
writes are the committed ones, byte for byte (tests/test_unit_fixtures.py regenerates and
compares): change a notebook here, never by hand.
"""
import nbformat
from nbformat.v4 import new_notebook, new_markdown_cell as md, new_code_cell as code, new_output

from make_notebooks import CONFIG, CURVES, HELPERS, PREDICT, READ, ROOT, stable_ids

NOTEBOOKS = {}  # path in the repository -> notebook


def write(name, title, cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["accelerator"] = "TPU"
    nb.cells = [md(f"# {title}")] + cells
    NOTEBOOKS[f"tests/notebooks/{name}"] = stable_ids(nb)

COLAB_SETUP = """%tensorflow_version 2.x
!pip install -q --upgrade tensorflow
from google.colab import auth
auth.authenticate_user()"""

OLD_TPU = """import os, re, math, json
import numpy as np
import tensorflow as tf
from matplotlib import pyplot as plt
AUTO = tf.data.experimental.AUTOTUNE
# TPU detection, the old way (TF 2.0-2.3 codelab)
try:
    tpu = tf.distribute.cluster_resolver.TPUClusterResolver() # TPU detection
    print('Running on TPU ', tpu.cluster_spec().as_dict()['worker'])
except ValueError:
    print('no TPU found')  # note: `tpu` is assigned only in the try block
if tpu:
    tf.config.experimental_connect_to_cluster(tpu)
    tf.tpu.experimental.initialize_tpu_system(tpu)
    strategy = tf.distribute.experimental.TPUStrategy(tpu)
else:
    strategy = tf.distribute.get_strategy() # default strategy that works on CPU and single GPU
print("REPLICAS: ", strategy.num_replicas_in_sync)"""

NEW_TPU = """import re, math
import numpy as np
import tensorflow as tf
from matplotlib import pyplot as plt
AUTO = tf.data.AUTOTUNE
try: # detect TPUs, the new way
    tpu = tf.distribute.cluster_resolver.TPUClusterResolver.connect()
    strategy = tf.distribute.TPUStrategy(tpu)
except ValueError: # detect GPUs
    strategy = tf.distribute.MirroredStrategy()
print("Number of accelerators: ", strategy.num_replicas_in_sync)
if tpu:
    print("TPU", tpu.master())"""

GS_CONFIG = CONFIG.replace("IMAGE_SIZE = [192, 192]", "GCS_PATTERN = 'gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec'\nEPOCHS = 60\nIMAGE_SIZE = [192, 192]")

LR = """# learning rate schedule, as in the codelab
LEARNING_RATE = 0.01
LEARNING_RATE_EXP_DECAY = 0.7
lr_decay = tf.keras.callbacks.LearningRateScheduler(
    lambda epoch: LEARNING_RATE * math.pow(LEARNING_RATE_EXP_DECAY, epoch), verbose=True)

class CountTraining(tf.keras.callbacks.Callback):
    # counts what really ran in this kernel, so the test can check the budget was not spent
    epochs = 0
    batches = 0
    def on_epoch_end(self, epoch, logs=None):
        CountTraining.epochs += 1
    def on_train_batch_end(self, batch, logs=None):
        CountTraining.batches += 1"""

CODELAB_MODEL = """with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(kernel_size=3, filters=16, padding='same', activation='relu', input_shape=[*IMAGE_SIZE, 3]),
        tf.keras.layers.Conv2D(kernel_size=3, filters=30, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters=60, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters=90, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters=110, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters=130, padding='same', activation='relu'),
        tf.keras.layers.Conv2D(kernel_size=1, filters=40, padding='same', activation='relu'),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

FIT60 = """history = model.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS,
                    validation_data=validation_dataset, validation_steps=validation_steps,
                    callbacks=[lr_decay, CountTraining()])"""

COUNT = """print("EPOCHS RUN IN KERNEL:", CountTraining.epochs, "BATCHES:", CountTraining.batches)
print(sorted(history.history.keys()))"""

def claimed(cell, text):
    cell.outputs = [new_output("stream", name="stdout", text=text)]
    cell.execution_count = 1
    return cell

predict = claimed(code(PREDICT), "['roses', 'daisy']\n[val_loss, val_acc] [0.2134, 0.9375]\n")
write("colab_tpu_old_style_60_epochs.ipynb", "Codelab notebook as written for Colab and a TPU (old TPU idiom, gs:// data, 60 epochs)", [
    code(COLAB_SETUP), code(OLD_TPU), code(GS_CONFIG), code(HELPERS), code(READ), code(LR),
    code(CODELAB_MODEL), code(FIT60), code(COUNT), code(CURVES), predict])

write("colab_tpu_new_style_1_epoch.ipynb", "Codelab notebook, new TPU idiom (connect), a later `if tpu:`, 1 epoch", [
    code("%%bash\necho 'this would run in Colab'\nnvidia-smi"), code(NEW_TPU), code(GS_CONFIG.replace("EPOCHS = 60", "EPOCHS = 1")), code(HELPERS), code(READ), code(LR),
    code(CODELAB_MODEL), code(FIT60), code(COUNT), code(CURVES), code(PREDICT)])

FIRE = """def fire(x, squeeze, expand):
    y = tf.keras.layers.Conv2D(filters=squeeze, kernel_size=1, activation='relu', padding='same')(x)
    y = tf.keras.layers.BatchNormalization()(y)
    y1 = tf.keras.layers.Conv2D(filters=expand//2, kernel_size=1, activation='relu', padding='same')(y)
    y1 = tf.keras.layers.BatchNormalization()(y1)
    y3 = tf.keras.layers.Conv2D(filters=expand//2, kernel_size=3, activation='relu', padding='same')(y)
    y3 = tf.keras.layers.BatchNormalization()(y3)
    return tf.keras.layers.concatenate([y1, y3])

def fire_module(squeeze, expand):
    return lambda x: fire(x, squeeze, expand)

def create_model():
    x = tf.keras.layers.Input(shape=[*IMAGE_SIZE, 3]) # input is 192x192 pixels RGB
    y = tf.keras.layers.Conv2D(kernel_size=3, filters=32, padding='same', use_bias=True, activation='relu')(x)
    y = tf.keras.layers.BatchNormalization()(y)
    y = fire_module(24, 48)(y)
    y = tf.keras.layers.MaxPooling2D(pool_size=2)(y)
    y = fire_module(48, 96)(y)
    y = tf.keras.layers.MaxPooling2D(pool_size=2)(y)
    y = fire_module(64, 128)(y)
    y = tf.keras.layers.MaxPooling2D(pool_size=2)(y)
    y = fire_module(48, 96)(y)
    y = tf.keras.layers.MaxPooling2D(pool_size=2)(y)
    y = fire_module(24, 48)(y)
    y = tf.keras.layers.GlobalAveragePooling2D()(y)
    y = tf.keras.layers.Dense(5, activation='softmax')(y)
    return tf.keras.Model(x, y)

with strategy.scope():
    squeezenet = create_model()
    squeezenet.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
squeezenet.summary()"""

write("functional_fire_modules.ipynb", "Functional SqueezeNet-style model with fire modules, built in create_model(), not named `model`", [
    code(NEW_TPU.replace("if tpu:\n    print(\"TPU\", tpu.master())", "")), code(GS_CONFIG.replace("EPOCHS = 60", "EPOCHS = 3")), code(HELPERS), code(READ), code(LR), code(FIRE),
    code("history = squeezenet.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS, validation_data=validation_dataset, validation_steps=validation_steps, callbacks=[lr_decay])")])

TRANSFER = """with strategy.scope():
    pretrained_model = tf.keras.applications.MobileNetV2(weights='imagenet', include_top=False, input_shape=[*IMAGE_SIZE, 3])
    pretrained_model.trainable = False
    model = tf.keras.Sequential([
        pretrained_model,
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

write("transfer_learning_mobilenet_imagenet.ipynb", "Transfer learning: MobileNetV2 with ImageNet weights (not allowed in this exercise)", [
    code(NEW_TPU.replace("if tpu:\n    print(\"TPU\", tpu.master())", "")), code(GS_CONFIG.replace("EPOCHS = 60", "EPOCHS = 10")), code(HELPERS), code(READ), code(TRANSFER),
    code("history = model.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS, validation_data=validation_dataset, validation_steps=validation_steps)")])

write("model_331x331.ipynb", "A model for the 331x331 version of the dataset", [
    code(NEW_TPU.replace("if tpu:\n    print(\"TPU\", tpu.master())", "")),
    code(GS_CONFIG.replace("EPOCHS = 60", "EPOCHS = 5").replace("tfrecords-jpeg-192x192-2", "tfrecords-jpeg-331x331").replace("IMAGE_SIZE = [192, 192]", "IMAGE_SIZE = [331, 331]")),
    code(HELPERS), code(READ), code(CODELAB_MODEL),
    code("history = model.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS, validation_data=validation_dataset, validation_steps=validation_steps)")])


def notebooks():
    """Each notebook this file writes, by its path in the repository."""
    return dict(NOTEBOOKS)


if __name__ == "__main__":
    for path, nb in notebooks().items():
        nbformat.write(nb, str(ROOT / path))
