# Two set-up commands: `make demo` and `make test`. Both create the virtualenv and install
# everything they need on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
DEMO_OUT ?= demo-output
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test test-fast test-real-world test-calibration test-image clean

# uv resolves the same versions as pip from PyPI and installs them in 44 s instead of pip's
# 2-2.5 min, TensorFlow included. --compile-bytecode as pip does: without it every kernel
# compiles Keras and TensorFlow again (import keras 25 s instead of 8 where bytecode is not
# written, PYTHONDONTWRITEBYTECODE). -q: errors only.
$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (a minute the first time) ..."
	$(PYTHON) -m venv $(VENV)
	PYTHONWARNINGS=ignore $(VENV)/bin/pip install -qq uv
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python --compile-bytecode -q -e '.[test,runtime,jax]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

install: system-deps $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/grade demo --out $(DEMO_OUT)

test: install
	$(VENV)/bin/pytest

# The fast layer: no kernel, no training (seconds). What a developer runs all the time.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not kernel and not training"

# The real-world corpus alone (tests/notebooks/real-world/; make test runs it too): its 17
# notebooks and the student notebook, graded in the sandbox and checked (grade check) without it.
test-real-world: install
	$(VENV)/bin/pytest tests/test_real_world.py

# The full calibrated run on the real photos, whatever this host's projected time.
test-calibration: install
	FLOWERS_GRADER_CALIBRATION=full $(VENV)/bin/pytest tests/test_calibration.py

# The worker image (Containerfile), built without a registry, and `grade demo` run in it. Opt-in:
# root, podman and debootstrap (installed when missing); about 6 minutes the first time here.
test-image:
	bash scripts/build-image.sh

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
