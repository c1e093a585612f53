"""Reading a notebook without running it, and rebuilding hostile but legal configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.kernel.static import claimed_accuracy, escapes


def _with_outputs(*texts: str):
    notebook = new_notebook()
    for text in texts:
        cell = new_code_cell("pass")
        cell.outputs = [new_output("stream", name="stdout", text=text)]
        notebook.cells.append(cell)
    return notebook


@pytest.mark.parametrize("texts, claim", [
    (["Epoch 20/20 - accuracy: 0.9 - val_accuracy: 0.8123 - val_loss: 0.5"], 0.8123),
    (["val_acc: 0.61", "Epoch 2 ... val_acc: 0.71"], 0.71),
    (["[val_loss, val_acc] [0.5345, 0.8123]"], 0.8123),
    (["val_accuracy: 0.70", "FINAL ACCURACY: 81.5%"], 0.815),
    (["final validation accuracy = 0.77"], 0.77),
    (["no claim here", "accuracy: 0.99"], None),
])
def test_claimed_accuracy_reads_the_last_claim(texts: list[str], claim: float | None) -> None:
    assert claimed_accuracy(_with_outputs(*texts)) == (pytest.approx(claim) if claim else None)


def test_escapes_are_found_as_ipython_sees_them() -> None:
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("!not code"),
                      new_code_cell("x = 1\n!pip install keras\nfiles = !ls\n%time y = 2"),
                      new_code_cell("%%bash\necho hi")]
    found = [(e.cell, e.kind, e.name) for e in escapes(notebook)]
    assert found == [(2, "shell", "pip install keras"), (2, "shell", "files = !ls"),
                     (2, "line magic", "time"), (3, "cell magic", "bash")]


def test_scope_safe_renames_functional_layers_consistently() -> None:
    import keras

    from grader.model.architecture import scope_safe
    from grader.model.rebuild import build

    inputs = keras.Input((32, 32, 3), name="in <put>")
    x = keras.layers.Conv2D(4, 3, name="conv <img src=x onerror=alert(1)>")(inputs)
    y = keras.layers.Conv2D(4, 3, name="relu")(inputs)  # a legal name equal to an activation
    merged = keras.layers.Concatenate(name="join & merge")([x, y])
    outputs = keras.layers.Dense(5, activation="softmax", name="out")(
        keras.layers.GlobalAveragePooling2D()(merged))
    model = keras.Model(inputs, outputs, name="<b>mine")
    config = scope_safe(json.loads(model.to_json()))
    rebuilt = build(config)
    assert rebuilt.name.startswith("layer_") and "relu" in [l.name for l in rebuilt.layers]
    assert rebuilt.layers[-1].activation.__name__ == "softmax"
    assert rebuilt(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 5)  # runs in TF scopes
