"""Writes the real-world corpus of tests/notebooks/real-world/: notebooks in the shapes real
learners hand in for this exercise (Colab's data-science imports, the TensorFlow tutorial's
image_dataset_from_directory, Colab's TPU sample, Google Drive, Kaggle, PyTorch, TF Hub, TFDS,
old notebook formats...), each with the outcome decided before the grader ever ran it
(tests/notebooks/real-world/README.md).

Run from the repository root: `.venv/bin/python tools/make_real_world.py`. Change a notebook
here, never by hand: writing twice gives the same bytes.

How each file is written (`notebooks()` maps each path to the object written):
- most are nbformat 4.5 `NotebookNode`s with stable cell ids (`stable_ids`), written with
  `nbformat.write`, as the other generators write theirs;
- `jupyter_nbformat_4_4_no_cell_ids.ipynb` (nbformat 4.4) and
  `colab_nbformat_4_0_no_cell_ids.ipynb` (nbformat 4.0) have no cell ids, and
  `saved_outputs_stream_metadata_key.ipynb` (4.5, with ids) has a stream output with a
  `"metadata": {}` key the schema does not allow: nbformat.write would add ids or upgrade the
  first two and complain about the third, so these three are plain JSON documents (`dict`s,
  keys sorted and multi-line strings split into lines as Jupyter saves them), written as
  `json.dumps(doc, indent=1, ensure_ascii=False) + "\\n"` (`text()` gives those bytes).
"""
import json

import nbformat
from nbformat.v4 import new_notebook, new_markdown_cell as md, new_code_cell as code, new_output

from make_notebooks import CONFIG, CURVES, DETECT, HELPERS, IMPORTS, READ, ROOT, TRAIN, params_cell, stable_ids
from make_test_notebooks import CODELAB_MODEL

FOLDER = "tests/notebooks/real-world"
NOTEBOOKS = {}  # path in the repository -> NotebookNode (nbformat.write) or dict (json.dumps)

COLAB_KERNEL = {"name": "python3", "display_name": "Python 3"}
PARAMS = """GCS_PATTERN = 'gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec'
EPOCHS = {epochs}"""


def colab_notebook(title, cells, accelerator="TPU"):
    """A notebook as Colab saves it today (nbformat 4.5 here, stable ids)."""
    nb = new_notebook()
    nb.metadata["colab"] = {"provenance": []}
    nb.metadata["kernelspec"] = dict(COLAB_KERNEL)
    nb.metadata["language_info"] = {"name": "python"}
    if accelerator:
        nb.metadata["accelerator"] = accelerator
    nb.cells = [md(title)] + cells
    return stable_ids(nb)


def write(name, title, cells, accelerator="TPU"):
    NOTEBOOKS[f"{FOLDER}/{name}"] = colab_notebook(title, cells, accelerator)


def _sorted(value):
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _lines(text):
    return text.splitlines(keepends=True) if isinstance(text, str) else text


def plain(nb, minor, ids):
    """``nb`` as the JSON document Jupyter saves: plain dicts, sorted keys, sources and text
    outputs split into lines; without cell ids unless ``ids``, at nbformat 4.``minor``."""
    doc = json.loads(json.dumps(nb))
    doc["nbformat_minor"] = minor
    for cell in doc["cells"]:
        if not ids:
            cell.pop("id", None)
        cell["source"] = _lines(cell["source"])
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _lines(output["text"])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/"):
                    output["data"][mime] = _lines(value)
    return _sorted(doc)


def ran(cell, count, *outputs):
    """A code cell as saved after running: its execution count and outputs."""
    cell.execution_count = count
    cell.outputs = list(outputs)
    return cell


def stdout(text):
    return new_output("stream", name="stdout", text=text)


# --- 1. Colab's data-science imports, a confusion matrix and a history DataFrame -------------

DS_IMPORTS = """import os, re, math
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns
import plotly.express as px
import cv2
from PIL import Image
from tqdm import tqdm
from sklearn.model_selection import train_test_split
from sklearn.metrics import confusion_matrix, classification_report

import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

print("TF", tf.__version__, "| numpy", np.__version__, "| pandas", pd.__version__)
AUTO = tf.data.AUTOTUNE
sns.set_theme(style="whitegrid")"""

DS_EXPLORE = """# how balanced are the classes? (first 500 training images)
labels_seen = [int(label) for _, label in load_dataset(training_filenames).take(500)]
counts = pd.Series(labels_seen).map(dict(enumerate(CLASSES))).value_counts()
counts = counts.rename_axis('flower').reset_index(name='count')
fig = px.bar(counts, x='flower', y='count', color='flower', title='Flowers in the first 500 training images')
fig.show()"""

DS_OPENCV = """# one flower through OpenCV, just to see what the network sees
img = (some_flowers[0] * 255).astype(np.uint8)
edges = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 100, 200)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(Image.fromarray(img)); axes[0].set_title(CLASSES[some_labels[0]]); axes[0].axis('off')
axes[1].imshow(edges, cmap='gray'); axes[1].set_title('Canny edges'); axes[1].axis('off')
plt.show()"""

DS_MODEL = """with strategy.scope():
    model = keras.Sequential([
        layers.Input(shape=(*IMAGE_SIZE, 3)),
        layers.Conv2D(16, 3, padding='same', activation='relu'),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding='same', activation='relu'),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding='same', activation='relu'),
        layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding='same', activation='relu'),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.3),
        layers.Dense(len(CLASSES), activation='softmax'),
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

DS_FIT = """early_stop = keras.callbacks.EarlyStopping(monitor='val_accuracy', patience=3, restore_best_weights=True)
history = model.fit(training_dataset, steps_per_epoch=steps_per_epoch, epochs=EPOCHS,
                    validation_data=validation_dataset, validation_steps=validation_steps,
                    callbacks=[early_stop])"""

DS_HISTORY = """hist = pd.DataFrame(history.history)
hist['epoch'] = np.arange(1, len(hist) + 1)
display(hist.tail())
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
hist.plot(x='epoch', y=['accuracy', 'val_accuracy'], ax=axes[0], title='accuracy', marker='o')
hist.plot(x='epoch', y=['loss', 'val_loss'], ax=axes[1], title='loss', marker='o')
plt.show()"""

DS_CONFUSION = """# confusion matrix on a few validation batches
y_true, y_pred = [], []
for images, labels in tqdm(validation_dataset.take(5), desc='predicting'):
    probs = model.predict(images, verbose=0)
    y_true.extend(labels.numpy())
    y_pred.extend(np.argmax(probs, axis=-1))

cm = confusion_matrix(y_true, y_pred, labels=list(range(len(CLASSES))))
plt.figure(figsize=(7, 6))
sns.heatmap(cm, annot=True, fmt='d', cmap='Blues', xticklabels=CLASSES, yticklabels=CLASSES)
plt.xlabel('predicted'); plt.ylabel('true'); plt.title('Confusion matrix (5 validation batches)')
plt.show()
print(classification_report(y_true, y_pred, labels=list(range(len(CLASSES))), target_names=CLASSES, zero_division=0))"""

write("colab_datascience_stack_confusion_matrix.ipynb", "# 🌼 Flowers CNN from scratch\nCodelab pipeline, my own CNN, and some evaluation with sklearn / seaborn.", [
    code(DS_IMPORTS), code(DETECT), md("## Parameters"), code(PARAMS.format(epochs=15)),
    code(CONFIG), code(HELPERS), code(READ), md("## A look at the data"), code(DS_EXPLORE), code(DS_OPENCV),
    md("## Model"), code(DS_MODEL), code(DS_FIT), md("## Results"), code(DS_HISTORY), code(DS_CONFUSION)])

# --- 2. The TensorFlow tutorial: get_file + image_dataset_from_directory ----------------------

TUTORIAL_IMPORTS = """import pathlib
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

print(tf.__version__)"""

TUTORIAL_DOWNLOAD = """dataset_url = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
data_dir = tf.keras.utils.get_file('flower_photos', origin=dataset_url, untar=True)
data_dir = pathlib.Path(data_dir)
# newer Keras extracts into a folder of its own: the class folders are then one level down
if (data_dir / 'flower_photos').is_dir():
    data_dir = data_dir / 'flower_photos'

image_count = len(list(data_dir.glob('*/*.jpg')))
print(image_count)"""

TUTORIAL_PARAMS = """batch_size = 32
img_height = 192
img_width = 192
EPOCHS = 10"""

TUTORIAL_DATASETS = """train_ds = tf.keras.utils.image_dataset_from_directory(
  data_dir,
  validation_split=0.2,
  subset="training",
  seed=123,
  image_size=(img_height, img_width),
  batch_size=batch_size)

val_ds = tf.keras.utils.image_dataset_from_directory(
  data_dir,
  validation_split=0.2,
  subset="validation",
  seed=123,
  image_size=(img_height, img_width),
  batch_size=batch_size)

class_names = train_ds.class_names
print(class_names)"""

TUTORIAL_SHOW = """plt.figure(figsize=(10, 10))
for images, labels in train_ds.take(1):
  for i in range(9):
    ax = plt.subplot(3, 3, i + 1)
    plt.imshow(images[i].numpy().astype("uint8"))
    plt.title(class_names[labels[i]])
    plt.axis("off")"""

TUTORIAL_MODEL = """AUTOTUNE = tf.data.AUTOTUNE
train_ds = train_ds.prefetch(buffer_size=AUTOTUNE)
val_ds = val_ds.prefetch(buffer_size=AUTOTUNE)

num_classes = len(class_names)

model = keras.Sequential([
  layers.Input(shape=(img_height, img_width, 3)),
  layers.Rescaling(1./255),
  layers.Conv2D(16, 3, padding='same', activation='relu'),
  layers.MaxPooling2D(),
  layers.Conv2D(32, 3, padding='same', activation='relu'),
  layers.MaxPooling2D(),
  layers.Conv2D(64, 3, padding='same', activation='relu'),
  layers.MaxPooling2D(),
  layers.GlobalAveragePooling2D(),
  layers.Dense(num_classes, activation='softmax')
])

model.compile(optimizer='adam',
              loss=tf.keras.losses.SparseCategoricalCrossentropy(),
              metrics=['accuracy'])
model.summary()"""

TUTORIAL_FIT = """history = model.fit(
  train_ds,
  validation_data=val_ds,
  epochs=EPOCHS
)"""

TUTORIAL_CURVES = """acc = history.history['accuracy']
val_acc = history.history['val_accuracy']
loss = history.history['loss']
val_loss = history.history['val_loss']
epochs_range = range(len(acc))

plt.figure(figsize=(8, 8))
plt.subplot(1, 2, 1)
plt.plot(epochs_range, acc, label='Training Accuracy')
plt.plot(epochs_range, val_acc, label='Validation Accuracy')
plt.legend(loc='lower right')
plt.title('Training and Validation Accuracy')

plt.subplot(1, 2, 2)
plt.plot(epochs_range, loss, label='Training Loss')
plt.plot(epochs_range, val_loss, label='Validation Loss')
plt.legend(loc='upper right')
plt.title('Training and Validation Loss')
plt.show()"""

write("tf_tutorial_get_file_image_dataset_from_directory.ipynb",
      "# Flower classification\nFollowing the TensorFlow image classification tutorial, with 192x192 images and a small CNN.", [
          code(TUTORIAL_IMPORTS), md("## Download the dataset"), code(TUTORIAL_DOWNLOAD), code(TUTORIAL_PARAMS),
          code(TUTORIAL_DATASETS), code(TUTORIAL_SHOW), md("## Model"), code(TUTORIAL_MODEL),
          md("## Train"), code(TUTORIAL_FIT), code(TUTORIAL_CURVES)], accelerator="GPU")

# --- 3. Colab's "TPUs in Colab" sample: COLAB_TPU_ADDR and a cluster resolver ----------------

TPU_ADDRESS = """import os
if 'COLAB_TPU_ADDR' not in os.environ:
  raise BaseException('ERROR: Not connected to a TPU runtime; please see the first cell in this notebook for instructions!')
else:
  tpu_address = 'grpc://' + os.environ['COLAB_TPU_ADDR']
  print ('TPU address is', tpu_address)"""

TPU_IMPORTS = """import re, math
import numpy as np
import tensorflow as tf
from matplotlib import pyplot as plt
AUTO = tf.data.AUTOTUNE
print(tf.__version__)"""

TPU_CONNECT = """resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
tf.config.experimental_connect_to_cluster(resolver)
# This is the TPU initialization code that has to be at the beginning.
tf.tpu.experimental.initialize_tpu_system(resolver)
print("All devices: ", tf.config.list_logical_devices('TPU'))
strategy = tf.distribute.TPUStrategy(resolver)
print("REPLICAS: ", strategy.num_replicas_in_sync)"""

def scoped_cnn(*filters):
    """The small CNN learners build in ``strategy.scope()``: four convolutions of these widths."""
    a, b, c, d = filters
    return f"""with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(kernel_size=3, filters={a}, padding='same', activation='relu', input_shape=[*IMAGE_SIZE, 3]),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters={b}, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters={c}, padding='same', activation='relu'),
        tf.keras.layers.MaxPooling2D(pool_size=2),
        tf.keras.layers.Conv2D(kernel_size=3, filters={d}, padding='same', activation='relu'),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""


TPU_MODEL = scoped_cnn(24, 48, 96, 128)

write("colab_tpu_sample_cluster_resolver.ipynb",
      "# Flowers on a Colab TPU\nTPU set-up copied from Colab's *TPUs in Colab* example notebook.", [
          code(TPU_ADDRESS), code(TPU_IMPORTS), code(TPU_CONNECT), code(PARAMS.format(epochs=12)), code(CONFIG),
          code(HELPERS), code(READ), code(TPU_MODEL), code(TRAIN), code(CURVES)])

# --- 4 and 5. Older notebook formats, no cell ids ---------------------------------------------

nb = new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python", "version": "3.8.10"}
nb.cells = [
    md("# Flower classifier from scratch\nSaved from my local Jupyter (2021), copied from the codelab."),
    code(IMPORTS), code(DETECT), params_cell(), code(CONFIG), code(HELPERS), code(READ),
    md("## Model\nThe codelab's solution: 6 convolutions, global average pooling."),
    code(CODELAB_MODEL), code(TRAIN), code(CURVES)]
NOTEBOOKS[f"{FOLDER}/jupyter_nbformat_4_4_no_cell_ids.ipynb"] = plain(nb, minor=4, ids=False)

OLD_DETECT = """try: # detect TPUs
    tpu = tf.distribute.cluster_resolver.TPUClusterResolver() # TPU detection
except ValueError:
    tpu = None
    gpus = tf.config.experimental.list_logical_devices("GPU")

if tpu:
    tf.config.experimental_connect_to_cluster(tpu)
    tf.tpu.experimental.initialize_tpu_system(tpu)
    strategy = tf.distribute.experimental.TPUStrategy(tpu)
    print('Running on TPU ', tpu.cluster_spec().as_dict()['worker'])
elif len(gpus) > 1:
    strategy = tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    print('Running on multiple GPUs ', [gpu.name for gpu in gpus])
elif len(gpus) == 1:
    strategy = tf.distribute.get_strategy() # default strategy that works on CPU and single GPU
    print('Running on single GPU ', gpus[0].name)
else:
    strategy = tf.distribute.get_strategy() # default strategy that works on CPU and single GPU
    print('Running on CPU')
print("Number of accelerators: ", strategy.num_replicas_in_sync)"""

OLD_IMPORTS = IMPORTS.replace("AUTO = tf.data.AUTOTUNE", "AUTO = tf.data.experimental.AUTOTUNE")
assert OLD_IMPORTS != IMPORTS

OLD_MODEL = scoped_cnn(16, 32, 64, 64)

OLD_FIT_OUTPUT = "".join(
    f"Epoch {epoch}/20\n23/23 [==============================] - {30 if epoch == 1 else 9}s "
    f"{'1s' if epoch == 1 else '391ms'}/step - loss: {1.52 - 0.04 * epoch:.4f} - accuracy: "
    f"{0.31 + 0.02 * epoch:.4f} - val_loss: {1.48 - 0.03 * epoch:.4f} - val_accuracy: {0.34 + 0.02 * epoch:.4f}\n"
    for epoch in range(1, 21))

nb = new_notebook()
nb.metadata["colab"] = {"name": "Keras_Flowers_TPU_playground.ipynb", "provenance": [], "collapsed_sections": [],
                        "toc_visible": True}
nb.metadata["kernelspec"] = dict(COLAB_KERNEL)
nb.metadata["accelerator"] = "TPU"
nb.cells = [
    md("# Keras Flowers on TPU (my copy)\nDownloaded from Colab in 2020."),
    md("### Imports"), code(OLD_IMPORTS), md("### TPU or GPU detection"), code(OLD_DETECT),
    md("### Configuration"), code(PARAMS.format(epochs=20)), code(CONFIG), code(HELPERS), code(READ),
    md("### Model"), code(OLD_MODEL),
    ran(code(TRAIN), 9, stdout(OLD_FIT_OUTPUT)), code(CURVES)]
NOTEBOOKS[f"{FOLDER}/colab_nbformat_4_0_no_cell_ids.ipynb"] = plain(nb, minor=0, ids=False)

# --- 6. Saved outputs, one stream output with an extra "metadata" key -------------------------

MODEL_COUNT = "model.count_params()"

FIT_OUTPUT = "".join(
    f"Epoch {epoch}/8\n\x1b[1m186/186\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m "
    f"\x1b[1m{41 if epoch == 1 else 12}s\x1b[0m {'335' if epoch == 1 else '98'}ms/step - accuracy: "
    f"{0.33 + 0.04 * epoch:.4f} - loss: {1.50 - 0.07 * epoch:.4f} - val_accuracy: {0.36 + 0.04 * epoch:.4f} - "
    f"val_loss: {1.46 - 0.06 * epoch:.4f}\n"
    for epoch in range(1, 9))

detect_output = stdout("Number of accelerators:  1\n")
detect_output["metadata"] = {}  # not in the schema of a stream output; Jupyter tolerates it
nb = colab_notebook("# Flowers from scratch (run on Colab, outputs saved)", [
    ran(code(IMPORTS), 1, stdout("Tensorflow version 2.18.0\n")),
    ran(code(DETECT), 2, detect_output),
    ran(code(PARAMS.format(epochs=8)), 3),
    ran(code(CONFIG), 4, stdout(
        "Pattern matches 16 data files. Splitting dataset into 13 training files and 3 validation files\n"
        "With a batch size of 16, there will be 186 batches per training epoch and 43 batch(es) per validation run.\n")),
    ran(code(HELPERS), 5), ran(code(READ), 6), ran(code(OLD_MODEL), 7, stdout(
        "Model: \"sequential\"\n"
        "Total params: 60,837 (237.64 KB)\n"
        "Trainable params: 60,837 (237.64 KB)\n"
        "Non-trainable params: 0 (0.00 B)\n")),
    ran(code(MODEL_COUNT), 8, new_output("execute_result", data={"text/plain": "60837"}, execution_count=8)),
    ran(code(TRAIN), 9, stdout(FIT_OUTPUT)),
    ran(code(CURVES), 10, stdout("dict_keys(['accuracy', 'loss', 'val_accuracy', 'val_loss'])\n"),
        new_output("display_data", data={"text/plain": "<Figure size 1000x1000 with 2 Axes>"}))])
NOTEBOOKS[f"{FOLDER}/saved_outputs_stream_metadata_key.ipynb"] = plain(nb, minor=5, ids=True)

# --- 7. Google Drive --------------------------------------------------------------------------

DRIVE_MOUNT = """from google.colab import drive
drive.mount('/content/drive')"""

DRIVE_IMPORTS = """import os, re, math
import numpy as np
import pandas as pd
import tensorflow as tf
import matplotlib.pyplot as plt
AUTO = tf.data.AUTOTUNE
strategy = tf.distribute.get_strategy()
print(tf.__version__, strategy.num_replicas_in_sync)"""

DRIVE_LABELS = """# class names and colours for my plots, from the sheet I keep on Drive
labels_df = pd.read_csv('/content/drive/MyDrive/flowers/labels.csv')
print(labels_df.head())
COLORS = dict(zip(labels_df['name'], labels_df['color']))"""

SMALL_MODEL = """with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(192, 192, 3)),
        tf.keras.layers.Conv2D(32, (3, 3), activation='relu', padding='same'),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Conv2D(64, (3, 3), activation='relu', padding='same'),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.Conv2D(64, (3, 3), activation='relu', padding='same'),
        tf.keras.layers.MaxPooling2D((2, 2)),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

write("google_drive_labels_csv.ipynb", "# Flowers: my CNN\n(Drive holds my label sheet.)", [
    code(DRIVE_MOUNT), code(DRIVE_IMPORTS), code(DRIVE_LABELS), code(PARAMS.format(epochs=10)), code(CONFIG),
    code(HELPERS), code(READ), code(SMALL_MODEL), code(TRAIN), code(CURVES)])

# --- 8. A helper module that was never handed in ----------------------------------------------

HELPER_IMPORTS = """import numpy as np
import tensorflow as tf
import matplotlib.pyplot as plt
from flower_utils import load_flowers, build_model  # my helpers, in flower_utils.py next to this notebook"""

HELPER_TRAIN = """train_ds, val_ds, steps_per_epoch, validation_steps = load_flowers(GCS_PATTERN, batch_size=64)
model = build_model(input_shape=(192, 192, 3), n_classes=5)
model.summary()
history = model.fit(train_ds, steps_per_epoch=steps_per_epoch, epochs=EPOCHS,
                    validation_data=val_ds, validation_steps=validation_steps)"""

HELPER_PLOT = """plt.plot(history.history['accuracy'], label='train')
plt.plot(history.history['val_accuracy'], label='validation')
plt.legend(); plt.xlabel('epoch'); plt.title('accuracy')
plt.show()"""

write("helper_module_not_submitted.ipynb", "# Flowers\nThe data loading and the model are in flower_utils.py.", [
    code(HELPER_IMPORTS), code(PARAMS.format(epochs=20)), code(HELPER_TRAIN), code(HELPER_PLOT)])

# --- 9. PyTorch -------------------------------------------------------------------------------

TORCH_IMPORTS = """import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision import datasets, transforms
from torch.utils.data import DataLoader, random_split
import matplotlib.pyplot as plt

device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
print(torch.__version__, torchvision.__version__, device)"""

TORCH_DATA = """url = 'https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz'
torchvision.datasets.utils.download_and_extract_archive(url, download_root='data')

transform = transforms.Compose([
    transforms.Resize((192, 192)),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
])
dataset = datasets.ImageFolder('data/flower_photos', transform=transform)
n_val = int(0.2 * len(dataset))
train_set, val_set = random_split(dataset, [len(dataset) - n_val, n_val], generator=torch.Generator().manual_seed(42))
train_loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=2)
val_loader = DataLoader(val_set, batch_size=32, num_workers=2)
print(dataset.classes, len(train_set), len(val_set))"""

TORCH_MODEL = """class FlowerCNN(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = torch.mean(x, dim=(2, 3))  # global average pooling
        return self.fc(x)

model = FlowerCNN().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
print(sum(p.numel() for p in model.parameters()), 'parameters')"""

TORCH_TRAIN = """EPOCHS = 10
history = {'accuracy': [], 'val_accuracy': []}
for epoch in range(EPOCHS):
    model.train()
    correct = total = 0
    for images, labels in train_loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        correct += (outputs.argmax(1) == labels).sum().item()
        total += labels.size(0)
    history['accuracy'].append(correct / total)

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in val_loader:
            images, labels = images.to(device), labels.to(device)
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.size(0)
    history['val_accuracy'].append(correct / total)
    print(f"epoch {epoch + 1}: accuracy {history['accuracy'][-1]:.3f}, val_accuracy {history['val_accuracy'][-1]:.3f}")"""

TORCH_PLOT = """plt.plot(history['accuracy'], label='train')
plt.plot(history['val_accuracy'], label='val')
plt.legend()
plt.show()"""

write("pytorch_torchvision.ipynb", "# Flower classifier in PyTorch\nI know PyTorch better than Keras, so here is the same exercise with torchvision.", [
    code(TORCH_IMPORTS), code(TORCH_DATA), code(TORCH_MODEL), code(TORCH_TRAIN), code(TORCH_PLOT)], accelerator="GPU")

# --- 10. !pip install, then the import in a later cell ----------------------------------------

TIMM_IMPORT = """import timm
print(timm.__version__)
# pretrained models to compare my CNN with later
print(timm.list_models('mobilenetv3*')[:5])"""

TIMM_MODEL = DS_MODEL.replace("keras.Sequential", "tf.keras.Sequential").replace("layers.", "tf.keras.layers.")
assert "tf.keras.layers.Conv2D" in TIMM_MODEL

write("pip_install_timm.ipynb", "# Flowers CNN\nI also want to compare with a timm model at the end.", [
    code("!pip install -q timm"), code(IMPORTS), code(DETECT), code(TIMM_IMPORT), code(PARAMS.format(epochs=10)),
    code(CONFIG), code(HELPERS), code(READ), code(TIMM_MODEL), code(TRAIN), code(CURVES)])

# --- 11. Kaggle's GCS path helper -------------------------------------------------------------

KAGGLE_IMPORTS = """import re, math
import numpy as np
import tensorflow as tf
from kaggle_datasets import KaggleDatasets
import matplotlib.pyplot as plt
print("Tensorflow version " + tf.__version__)
AUTO = tf.data.experimental.AUTOTUNE"""

KAGGLE_DETECT = """# Detect hardware, return appropriate distribution strategy
try:
    tpu = tf.distribute.cluster_resolver.TPUClusterResolver()  # TPU detection. No parameters necessary if TPU_NAME environment variable is set. On Kaggle this is always the case.
    print('Running on TPU ', tpu.master())
except ValueError:
    tpu = None

if tpu:
    tf.config.experimental_connect_to_cluster(tpu)
    tf.tpu.experimental.initialize_tpu_system(tpu)
    strategy = tf.distribute.experimental.TPUStrategy(tpu)
else:
    strategy = tf.distribute.get_strategy()  # default distribution strategy in Tensorflow. Works on CPU and single GPU.

print("REPLICAS: ", strategy.num_replicas_in_sync)"""

KAGGLE_PATH = """GCS_DS_PATH = KaggleDatasets().get_gcs_path('tpu-getting-started')  # you can list the bucket with "!gsutil ls $GCS_DS_PATH"
print(GCS_DS_PATH)
GCS_PATTERN = GCS_DS_PATH + '/tfrecords-jpeg-192x192/train/*.tfrec'
EPOCHS = 12"""

write("kaggle_datasets_gcs_path.ipynb", "# Flowers on Kaggle TPUs\nRun as a Kaggle notebook with the TPU accelerator.", [
    code(KAGGLE_IMPORTS), code(KAGGLE_DETECT), code(KAGGLE_PATH), code(CONFIG), code(HELPERS), code(READ),
    code(SMALL_MODEL), code(TRAIN), code(CURVES)])

# --- 12. A subclassed model -------------------------------------------------------------------

SUBCLASS_MODEL = """class FlowerNet(tf.keras.Model):
    def __init__(self, num_classes=5):
        super().__init__()
        self.conv1 = tf.keras.layers.Conv2D(32, 3, padding='same', activation='relu')
        self.pool1 = tf.keras.layers.MaxPooling2D()
        self.conv2 = tf.keras.layers.Conv2D(64, 3, padding='same', activation='relu')
        self.pool2 = tf.keras.layers.MaxPooling2D()
        self.conv3 = tf.keras.layers.Conv2D(128, 3, padding='same', activation='relu')
        self.pool3 = tf.keras.layers.MaxPooling2D()
        self.gap = tf.keras.layers.GlobalAveragePooling2D()
        self.dropout = tf.keras.layers.Dropout(0.3)
        self.classifier = tf.keras.layers.Dense(num_classes, activation='softmax')

    def call(self, inputs, training=False):
        x = self.pool1(self.conv1(inputs))
        x = self.pool2(self.conv2(x))
        x = self.pool3(self.conv3(x))
        x = self.gap(x)
        x = self.dropout(x, training=training)
        return self.classifier(x)

with strategy.scope():
    model = FlowerNet()
    model.build((None, 192, 192, 3))
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

write("subclassed_model.ipynb", "# FlowerNet\nMy model as a `tf.keras.Model` subclass, like in the advanced TensorFlow quickstart.", [
    code(IMPORTS), code(DETECT), code(PARAMS.format(epochs=10)), code(CONFIG), code(HELPERS), code(READ),
    code(SUBCLASS_MODEL), code(TRAIN), code(CURVES)])

# --- 13. A Flatten -> Dense network without convolutions --------------------------------------

MLP_MODEL = """# start simple: a fully connected network
with strategy.scope():
    model = tf.keras.Sequential([
        tf.keras.layers.Flatten(input_shape=[*IMAGE_SIZE, 3]),
        tf.keras.layers.Dense(512, activation='relu'),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

write("flatten_dense_mlp.ipynb", "# Flowers with a dense network\nFirst try, before convolutions.", [
    code(IMPORTS), code(DETECT), code(PARAMS.format(epochs=5)), code(CONFIG), code(HELPERS), code(READ),
    code(MLP_MODEL), code(TRAIN), code(CURVES)])

# --- 14. Transfer learning from ImageNet ------------------------------------------------------

TRANSFER_MODEL = """with strategy.scope():
    base_model = tf.keras.applications.MobileNetV2(weights='imagenet', include_top=False, input_shape=[192, 192, 3])
    base_model.trainable = False  # freeze the ImageNet features
    model = tf.keras.Sequential([
        base_model,
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(5, activation='softmax')
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()
print('trainable weights:', len(model.trainable_weights))"""

write("transfer_learning_mobilenetv2_frozen.ipynb", "# Flowers with MobileNetV2\n95% in 5 epochs with transfer learning!", [
    code(IMPORTS), code(DETECT), code(PARAMS.format(epochs=5)), code(CONFIG), code(HELPERS), code(READ),
    code(TRANSFER_MODEL), code(TRAIN), code(CURVES)])

# --- 15. A folder on the learner's own disk ---------------------------------------------------

LOCAL_PARAMS = """img_height = img_width = 192
EPOCHS = 10"""

LOCAL_DATA = """data_dir = '/home/student/datasets/flower_photos'
data_dir = pathlib.Path(data_dir)
image_count = len(list(data_dir.glob('*/*.jpg')))
print(image_count, 'images')

train_ds = tf.keras.utils.image_dataset_from_directory(
  data_dir, validation_split=0.2, subset="training", seed=123,
  image_size=(img_height, img_width), batch_size=32)
val_ds = tf.keras.utils.image_dataset_from_directory(
  data_dir, validation_split=0.2, subset="validation", seed=123,
  image_size=(img_height, img_width), batch_size=32)
class_names = train_ds.class_names
print(class_names)"""

write("local_disk_path.ipynb", "# Flowers (run on my laptop)\nThe photos are in my datasets folder.", [
    code(TUTORIAL_IMPORTS), code(LOCAL_PARAMS), code(LOCAL_DATA), code(TUTORIAL_MODEL), code(TUTORIAL_FIT), code(TUTORIAL_CURVES)], accelerator=None)

# --- 16. TensorFlow Hub -----------------------------------------------------------------------

HUB_IMPORTS = IMPORTS + "\nimport tensorflow_hub as hub\nprint('Hub version:', hub.__version__)"

HUB_MODEL = """feature_extractor_url = 'https://tfhub.dev/google/tf2-preview/mobilenet_v2/feature_vector/4'
feature_extractor = hub.KerasLayer(feature_extractor_url, input_shape=(192, 192, 3), trainable=False)

model = tf.keras.Sequential([
    feature_extractor,
    tf.keras.layers.Dense(5, activation='softmax')
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

write("tfhub_feature_extractor.ipynb", "# Flowers with a TF Hub feature extractor", [
    code(HUB_IMPORTS), code(DETECT), code(PARAMS.format(epochs=5)), code(CONFIG), code(HELPERS), code(READ),
    code(HUB_MODEL), code(TRAIN), code(CURVES)], accelerator="GPU")

# --- 17. TensorFlow Datasets ------------------------------------------------------------------

TFDS_IMPORTS = """import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
import tensorflow_datasets as tfds
print(tf.__version__, tfds.__version__)"""

TFDS_LOAD = """(train_ds, val_ds), info = tfds.load(
    'tf_flowers',
    split=['train[:80%]', 'train[80%:]'],
    as_supervised=True,
    with_info=True,
)
num_classes = info.features['label'].num_classes
class_names = info.features['label'].names
print(num_classes, class_names)"""

TFDS_SHOW = """plt.figure(figsize=(12, 3))
for i, (image, label) in enumerate(train_ds.take(4)):
    plt.subplot(1, 4, i + 1)
    plt.imshow(image.numpy())
    plt.title(class_names[int(label)])
    plt.axis('off')
plt.show()"""

TFDS_PIPELINE = """IMG_SIZE = 192
BATCH_SIZE = 32
EPOCHS = 10

def preprocess(image, label):
    image = tf.image.resize(image, (IMG_SIZE, IMG_SIZE))
    image = tf.cast(image, tf.float32) / 255.0  # normalize to [0, 1]
    return image, label

train_batches = train_ds.shuffle(256).map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)
val_batches = val_ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE)"""

TFDS_MODEL = """model = tf.keras.Sequential([
    tf.keras.Input(shape=(IMG_SIZE, IMG_SIZE, 3)),
    tf.keras.layers.Conv2D(32, 3, activation='relu', padding='same'),
    tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.Conv2D(64, 3, activation='relu', padding='same'),
    tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.Conv2D(96, 3, activation='relu', padding='same'),
    tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.GlobalAveragePooling2D(),
    tf.keras.layers.Dense(num_classes, activation='softmax')
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.summary()"""

TFDS_FIT = """history = model.fit(train_batches, validation_data=val_batches, epochs=EPOCHS)
plt.plot(history.history['accuracy'], label='accuracy')
plt.plot(history.history['val_accuracy'], label='val_accuracy')
plt.legend()
plt.show()"""

write("tfds_tf_flowers.ipynb", "# tf_flowers from TensorFlow Datasets\nNo TFRecords to handle: TFDS downloads and splits the data.", [
    code(TFDS_IMPORTS), code(TFDS_LOAD), code(TFDS_SHOW), code(TFDS_PIPELINE), code(TFDS_MODEL), code(TFDS_FIT)],
    accelerator="GPU")


def notebooks():
    """Each notebook this file writes, by its path in the repository: a NotebookNode (written
    with nbformat.write) or a plain JSON document (written by `text`)."""
    return dict(NOTEBOOKS)


def text(doc):
    """The bytes, as text, of a notebook kept as a plain JSON document."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    (ROOT / FOLDER).mkdir(parents=True, exist_ok=True)
    for path, nb in notebooks().items():
        if isinstance(nb, nbformat.NotebookNode):
            nbformat.write(nb, str(ROOT / path))
        else:
            (ROOT / path).write_text(text(nb), encoding="utf-8")
