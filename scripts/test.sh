#!/usr/bin/env bash
# Install the project with its test tools, then run every test (real-model tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/install.sh
lint-imports
python3 -m pytest -q "$@"
