#!/usr/bin/env bash
# System packages the grader and its tests use. Installed with apt when running as root on a
# Debian-like machine; otherwise we only say what is missing (the features that need them say so
# too).
set -euo pipefail

packages=(
    chromium     # headless browser for the report tests (Playwright drives it)
    bubblewrap   # the sandbox of the student's kernel (grader/kernel/sandbox.py)
)

missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${missing[*]} ..."
    log=$(mktemp)
    # apt and debconf talk a lot; their words matter only when the install fails.
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
else
    echo "note: system packages not installed: ${missing[*]} (run as root to install them)" >&2
fi
