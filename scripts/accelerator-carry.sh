#!/usr/bin/env bash
# What `python -m benchmarks --accelerator` needs on a GPU or TPU machine that has Python 3.12
# and JAX but no network, no Keras and no TensorFlow (docs/accelerators.md): wheels for Keras
# and the two packages it needs besides JAX's (namex, optree), and the real photos as shards.
# Written into build/accelerator/ (ignored by git; about 40 MB, under the 64 MiB a run carries).
# Then, on that machine, from the checkout:
#   pip install --no-index --no-deps --target /tmp/site build/accelerator/wheels/*.whl
#   PYTHONPATH=/tmp/site python3 -m benchmarks --accelerator --data build/accelerator/shards
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/accelerator
python=${PYTHON_VERSION:-3.12}
photos=${PHOTOS:-../shared/flowers-photos}
rm -rf "$out"
mkdir -p "$out/wheels"
.venv/bin/python -m pip download -q --only-binary=:all: --python-version "$python" \
    --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --no-deps \
    -d "$out/wheels" "keras==$(.venv/bin/python -c 'import keras; print(keras.__version__)')" \
    namex optree
.venv/bin/grade data import "$photos" --out "$out/shards"
du -sh "$out"
