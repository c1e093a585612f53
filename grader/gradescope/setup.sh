#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image, with the zip
# unpacked in /autograder/source. Two steps, runnable alone: `setup.sh system` (apt: a Python
# the grader supports, and bubblewrap) and `setup.sh install` (a virtualenv with the grader's
# wheel and the student runtime). AUTOGRADER_ROOT moves /autograder (the tests use a folder).
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"

supported() {  # the grader needs Python 3.11 or newer (tomllib)
    command -v "$1" >/dev/null 2>&1 &&
        "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

python_here() {
    for candidate in python3 python3.13 python3.12 python3.11; do
        if supported "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

system() {
    # Ubuntu 22.04, Gradescope's default image, has Python 3.10 as python3 and Python 3.11 as
    # the package python3.11 (universe); its harness keeps using python3, so that stays.
    if python_here >/dev/null && command -v bwrap >/dev/null 2>&1; then
        echo "setup: $(python_here) and bubblewrap are here; nothing to install with apt"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -y
    packages=(bubblewrap)
    python_here >/dev/null || packages+=(python3.11 python3.11-venv)
    apt-get install -y --no-install-recommends "${packages[@]}"
}

install() {
    python=$(python_here) || { echo "setup: no Python 3.11 or newer: run 'setup.sh system'" >&2; exit 1; }
    wheel=$(ls "$SOURCE"/flowers_grader-*.whl)
    "$python" -m venv "$VENV"
    # uv installs TensorFlow and the rest in seconds, pip in minutes. Both compile the
    # bytecode now: each submission's container starts from the image, without it.
    if "$VENV/bin/pip" install -q uv; then
        "$VENV/bin/uv" pip install --python "$VENV/bin/python" --compile-bytecode -q \
            "$wheel[runtime]"
    else
        "$VENV/bin/pip" install -q "$wheel[runtime]"
    fi
    "$VENV/bin/grade" --help >/dev/null
    echo "setup: the grader is installed in $VENV ($("$VENV/bin/python" --version))"
}

case "${1:-all}" in
    system) system ;;
    install) install ;;
    all) system; install ;;
    *) echo "usage: setup.sh [system|install|all]" >&2; exit 2 ;;
esac
