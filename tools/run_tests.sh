#!/usr/bin/env bash
# The README's test command, and what .ci/run calls: sets up everything the tests need on a fresh
# machine that has nothing but Python, then runs them. Arguments go to pytest.
#
# Besides the Python packages (a virtual environment in .venv), tests/test_browser.py drives the
# web page in Debian's headless Chromium, which no pip package provides; it is installed from the
# system's package registry when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    echo "installing chromium and chromium-driver for tests/test_browser.py" >&2
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q "torch==2.13.0" -e ".[dev,serve]"
exec .venv/bin/python -m pytest "$@"
