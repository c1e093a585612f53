# Two set-up commands: `make demo` and `make test`. Both create the virtualenv and install
# everything they need on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
DEMO_OUT ?= demo-output
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test test-fast clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

install: system-deps $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/grade demo --out $(DEMO_OUT)

test: install
	$(VENV)/bin/pytest

# Everything but the calibrated runs on the real photos (minutes instead of tens of minutes).
test-fast: install
	$(VENV)/bin/pytest -m "not real_photos"

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
