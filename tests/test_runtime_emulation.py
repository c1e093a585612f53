"""The codelab's own Colab/TPU notebooks are graded as they are.

No TPU exists here: the notebooks' TPU detection really runs and falls back, which is the point.
What is tested is the kernel's side, so the style notebooks run together through one
`grade batch --no-train` in the sandbox, two kernels at a time; the one whose claimed accuracy is
compared with the verified one trains with the smoke profile. The batch mirrors the 331x331
prefix for the 331x331 model; a copy of that notebook reading the 512x512 prefix finds nothing
served.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import NOTEBOOKS, ROOT, grade_notebook, run_grade

PLAYGROUND = ROOT.parent / "shared" / "repro" / "07_Keras_Flowers_TPU_playground.ipynb"
COLAB_MODULES = [
    "from google.colab import auth, drive\nauth.authenticate_user()\n"
    "drive.mount('/content/drive')\nimport google.protobuf  # the real google package",
    "files = !ls /\nprint('LISTED', len(files))\n%matplotlib inline",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nimport keras\n"
    "model = keras.Sequential([keras.Input((192, 192, 3)),\n"
    "    keras.layers.Conv2D(8, 3, strides=4, activation='relu'),\n"
    "    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5, activation='softmax')])",
]
# student name in the batch → the notebook it hands in
CHECKED = {
    "new_tpu_idiom": NOTEBOOKS / "colab_tpu_new_style_1_epoch.ipynb",
    "fire_modules": NOTEBOOKS / "functional_fire_modules.ipynb",
    "transfer_learning": NOTEBOOKS / "transfer_learning_mobilenet_imagenet.ipynb",
    "model_331": NOTEBOOKS / "model_331x331.ipynb",   # its prefix mirrored for the batch
    "playground": PLAYGROUND,
}


class Checked:
    """What one `grade batch --no-train` left for each student."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def result(self, student: str) -> dict:
        return json.loads((self.out / student / "result.json").read_text())

    def executed(self, student: str) -> Path:
        return self.out / student / "executed.ipynb"


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, playground_data: Path) -> Checked:
    folder = tmp_path_factory.mktemp("emulation")
    for student, notebook in CHECKED.items():
        if notebook.is_file():
            shutil.copy(notebook, folder / f"{student}.ipynb")
    colab = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in COLAB_MODULES])
    colab.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nbformat.write(colab, str(folder / "colab_modules.ipynb"))
    # The same notebook reading a prefix that nothing serves.
    unmapped = (NOTEBOOKS / "model_331x331.ipynb").read_text().replace(
        "tfrecords-jpeg-331x331", "tfrecords-jpeg-512x512")
    (folder / "unmapped_512.ipynb").write_text(unmapped)
    data_331 = tmp_path_factory.mktemp("data331")
    assert run_grade("data", "synth", "--out", data_331, "--images", 48, "--size", 331,
                     "--seed", 2).returncode == 0
    out = tmp_path_factory.mktemp("emulation-out")
    process = run_grade("batch", folder, "--data", playground_data, "--out", out, "--no-train",
                        "--workers", "2", "--require-sandbox", "--mirror",
                        f"gs://flowers-public/tfrecords-jpeg-331x331={data_331}")
    assert process.returncode == 0, process.stderr[-3000:]
    return Checked(out)


def _cell_text(executed: Path, marker: str) -> str:
    notebook = json.loads(executed.read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            if marker in text:
                return text
    raise AssertionError(f"no output contains {marker!r}")


def test_old_colab_tpu_notebook_runs_unmodified_and_60_epochs_do_not_run(
        small_data: Path, tmp_path: Path) -> None:
    graded = grade_notebook(NOTEBOOKS / "colab_tpu_old_style_60_epochs.ipynb", small_data,
                            tmp_path, "--profile", "smoke")
    result = graded.result
    assert result["error"] is None, result["error"]
    assert result["status"] == "graded" and result["model"]["variable"] == "model"
    # What the notebook asked for is recorded ...
    assert result["student_training"] == [{
        "model": "sequential", "epochs": 60, "batch_size": None, "steps_per_epoch": 8,
        "callbacks": ["LearningRateScheduler", "CountTraining"]}]
    # ... and what really ran in the kernel, counted by the notebook's own callback, is one step.
    counted = _cell_text(tmp_path / "executed.ipynb", "EPOCHS RUN IN KERNEL")
    assert "EPOCHS RUN IN KERNEL: 1 BATCHES: 1" in counted
    # Later cells read history keys, including the LR callback's.
    assert "'learning_rate', 'loss', 'val_accuracy', 'val_loss'" in counted
    # The TPU probe fell back, `if tpu:` did not raise, gs:// read the local shards.
    assert "no TPU found" in _cell_text(tmp_path / "executed.ipynb", "REPLICAS")
    assert "Pattern matches 16 data files" in _cell_text(tmp_path / "executed.ipynb",
                                                         "Pattern matches")
    warnings = "\n".join(result["warnings"])
    assert "Cell 2: `%tensorflow_version 2.x` was skipped" in warnings
    assert "Cell 2: `!pip install -q --upgrade tensorflow` was skipped" in warnings
    # The saved outputs claim 93.8%; the trusted retraining is shown beside it, and the gap flagged.
    assert result["claimed_accuracy"] == pytest.approx(0.9375)
    assert result["accuracy"] < 0.8 and result["claim_flagged"] is True
    assert any("claim 93.8%" in w for w in result["warnings"])


def test_new_tpu_idiom_with_later_if_tpu_and_cell_magic(checked) -> None:
    result = checked.result("new_tpu_idiom")
    assert result["error"] is None, result["error"]
    assert result["status"] == "checked"
    assert result["student_training"][0]["epochs"] == 1
    assert any(w.startswith("Cell 2: `%%bash` was skipped") for w in result["warnings"])
    assert result["claimed_accuracy"] is None and result["claim_flagged"] is False


def test_functional_fire_modules_in_a_helper_function(checked) -> None:
    result = checked.result("fire_modules")
    assert result["error"] is None, result["error"]
    assert result["status"] == "checked"
    model = result["model"]
    assert model["variable"] == "squeezenet" and model["class_name"] == "Functional"
    assert model["reason"] == "the model the notebook last trained with fit()"
    kinds = {layer["class_name"] for layer in model["layers"]}
    assert {"Concatenate", "BatchNormalization", "Conv2D"} <= kinds


def test_transfer_learning_is_rejected_and_never_downloads(checked) -> None:
    result = checked.result("transfer_learning")
    assert result["error"] is None, result["error"]
    assert result["status"] == "rejected"
    failed = {c["id"]: c for c in result["checks"] if c["passed"] is False}
    assert list(failed) == ["frozen_layers", "applications"]
    assert "keras.applications.MobileNetV2 with weights=imagenet" \
        in failed["applications"]["message"]
    assert result["training"]["history"] == {}


def test_a_331_model_is_rejected_naming_both_sizes(checked) -> None:
    result = checked.result("model_331")
    assert result["error"] is None, result["error"]
    assert result["status"] == "rejected"
    failed = {c["id"]: c for c in result["checks"] if not c["passed"]}
    assert list(failed) == ["input_shape"]
    assert "331x331x3" in failed["input_shape"]["message"]
    assert "192x192x3" in failed["input_shape"]["message"]


def test_an_unmapped_gs_prefix_names_the_prefix_and_the_option(checked) -> None:
    error = checked.result("unmapped_512")["error"]
    assert checked.result("unmapped_512")["status"] == "error" and error["cell"] == 3
    assert "gs://flowers-public/tfrecords-jpeg-512x512/*.tfrec has no local copy" \
        in error["message"]
    assert "--mirror gs://flowers-public/tfrecords-jpeg-512x512=DIR" in error["message"]
    assert error["cause"] == "data_path"


def test_colab_modules_and_shell_do_nothing(checked) -> None:
    result = checked.result("colab_modules")
    assert result["error"] is None, result["error"]
    assert "LISTED 0" in _cell_text(checked.executed("colab_modules"), "LISTED")
    warnings = "\n".join(result["warnings"])
    assert "Cell 2: `files = !ls /` was skipped" in warnings
    assert "Cell 2: `%matplotlib inline` ran as usual" in warnings
    executed = json.loads(checked.executed("colab_modules").read_text())
    plot_outputs = executed["cells"][4]["outputs"]
    assert any("image/png" in o.get("data", {}) for o in plot_outputs)


@pytest.mark.skipif(not PLAYGROUND.is_file(), reason="../shared/repro is absent")
def test_the_codelab_playground_runs_in_the_sandbox(checked) -> None:
    """Google's playground notebook, the one every student starts from, once killed by the
    sandbox's address-space limit in the cell that predicts the validation images, and by
    TensorFlow's one-CPU MirroredStrategy in the cell after it."""
    result = checked.result("playground")
    assert result["error"] is None, result["error"]
    assert result["status"] == "checked" and result["isolation"] == "bubblewrap"
    assert "[val_loss, val_acc]" in _cell_text(checked.executed("playground"),
                                               "[val_loss, val_acc]")
