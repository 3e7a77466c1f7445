# Shared by scripts/serve and scripts/test: create .venv on first use and install the
# project into it (again only when pyproject.toml changes). Sourced, not executed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "stride-back needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

ensure_venv() {  # $1: the pip extra to install ("" or "dev")
  local extra="${1:-}" target="." stamp
  [ -n "$extra" ] && target=".[$extra]"
  if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
  fi
  stamp=".venv/.installed-${extra:-base}-$(cksum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --editable "$target"
    rm -f .venv/.installed-"${extra:-base}"-*
    touch "$stamp"
  fi
}
