#!/usr/bin/env bash
# Sourced by scripts/demo and scripts/test: make .venv with the project and its dev
# dependencies, once. Re-installs only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MINT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
STAMP="$VENV/.mint-installed"
# Any C source newer than the stamp means the extensions must be rebuilt (an editable install
# does not rebuild them on import).
stale_c() { [ -n "$(find "$ROOT/src/mint" -maxdepth 1 \( -name '*.c' -o -name '*.h' \) -newer "$STAMP" -print -quit)" ]; }
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$ROOT/setup.py" -nt "$STAMP" ] || stale_c; then
    echo "==> installing mint-websocket[dev] into $VENV"
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
    touch "$STAMP"
fi
if [ -f "$ROOT/tests/servers/node/package.json" ] && [ ! -d "$ROOT/tests/servers/node/node_modules" ] && command -v npm >/dev/null; then
    echo "==> installing the Node.js test peers (npm ci)"
    (cd "$ROOT/tests/servers/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
export PATH="$VENV/bin:$PATH"
