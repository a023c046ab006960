#!/usr/bin/env bash
# Set up everything the tests need (Debian packages for the SSH/adb/browser tests, the venv) and
# run the whole suite, including the one end-to-end test that exports and times the whole zoo.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v adb >/dev/null || need+=(adb)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh
.venv/bin/ruff check benchharness tests benchmarks
.venv/bin/mypy benchharness
exec .venv/bin/python -m pytest -q "$@"
