#!/usr/bin/env bash
# Create .venv and install benchharness with everything it needs. Idempotent: a second call
# only checks that the installed package is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# the stamp records what was installed, so an unchanged checkout skips pip entirely
stamp=.venv/.benchharness-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch and torchvision first and pinned: pip takes them from this machine's disk (see README)
  .venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
  # farm: Dask distributed for `bench worker` / `--scheduler`; pte: ExecuTorch (and their tests)
  .venv/bin/python -m pip install --quiet -e ".[dev,farm,pte]"
  echo "$want" > "$stamp"
fi
