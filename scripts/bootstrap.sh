# Sourced by the other scripts: create .venv and install facegan (editable, with the dev extra)
# when it is missing or pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACEGAN_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "facegan needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2; exit 2; }
stamp="$VENV/.facegan-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $VENV (first time: about 3 GB, 2-3 minutes)..."
  "$PY" -m venv "$VENV" 2>/dev/null || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 2; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
