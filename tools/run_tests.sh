#!/usr/bin/env bash
# Set up .venv (first run: installs the stack; later runs: seconds) and run
# the test suite. Extra arguments go to pytest, e.g. `-m slow`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
exec "$ROOT/.venv/bin/python" -m pytest tests -q "$@"
