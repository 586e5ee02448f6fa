# Sourced by the other scripts: create .venv and install facegan into it (editable) with the
# extras the sourcing script names in FACEGAN_EXTRAS -- quickstart (scripts/quickstart: about
# 2.7 GiB) or dev (scripts/test: everything the tests and benches use, about 4.6 GiB;
# docs/install.md) -- when they are missing or pyproject.toml changed since the last install.
# dev includes quickstart, so a test venv serves both.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACEGAN_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${FACEGAN_EXTRAS:-quickstart}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "facegan needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2; exit 2; }
stamp="$VENV/.facegan-installed"  # "<pyproject.toml's hash> <extras>" of the last install
want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ ! -x "$VENV/bin/python" ] || { [ "$have" != "$want $EXTRAS" ] && [ "$have" != "$want dev" ]; }; then
  case "$EXTRAS" in
    dev) echo "setting up $VENV for the tests (first time: about 4.6 GiB, 3-5 minutes)..." ;;
    *) echo "setting up $VENV for the quick start (first time: about 2.7 GiB, 3-4 minutes)..." ;;
  esac
  "$PY" -m venv "$VENV" 2>/dev/null || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 2; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
  echo "$want $EXTRAS" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
