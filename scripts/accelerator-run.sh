#!/usr/bin/env bash
# On a lent GPU or TPU machine, from the checkout with build/accelerator/ carried beside it
# (scripts/accelerator-carry.sh): install the carried wheels into a private folder and run the
# accelerator benchmark (docs/accelerators.md). Options go to the benchmark; its numbers are
# written to $OUT/accelerator.json when OUT is set (the device runner's output folder).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
site=$(mktemp -d)
"$python" -m pip install -q --no-index --no-deps --target "$site" build/accelerator/wheels/*.whl
nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv 2>/dev/null || true
PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" "$python" -m benchmarks --accelerator \
    --data build/accelerator/shards --json "${OUT:-build/accelerator}/accelerator.json" "$@"
