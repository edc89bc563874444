#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then lint and run the whole suite.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -r tests/requirements.txt
# The Ray backend's tests (tests/test_ray_backend.py, marker `ray`) start a two-node Ray cluster on this machine.
python -m pip install --quiet -r requirements-ray.txt

# The real-browser test drives Debian's Chromium (Playwright never downloads a browser here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null
  else
    echo "note: chromium is not installed, the real-browser test will be skipped" \
         "(sudo apt-get install chromium fonts-wqy-microhei)" >&2
  fi
fi

python -m ruff check .
python -m ruff format --check .
python -m pytest "$@"
