#!/usr/bin/env bash
# Set up everything the tests need (Debian packages for the SSH/adb/browser tests, the venv) and
# run the whole suite, including the one end-to-end test that exports and times the whole zoo.
# The ARM64 root file system of tests/arm64 is built once per machine (about 12 minutes, cached
# in ~/.cache/benchharness); BENCH_ARM64_BUILD=0 skips those tests instead of building it.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v adb >/dev/null || need+=(adb)
command -v chromium >/dev/null || need+=(chromium)
# the emulated ARM64 board and phone (tests/arm64): an arm64 Debian root under qemu-user
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh
.venv/bin/ruff check benchharness tests benchmarks
.venv/bin/mypy benchharness
# the benchmark scripts read the same typed rows: checked too, so they cannot rot unseen (the
# test helpers they import are not held to the package's strict typing)
.venv/bin/mypy benchmarks --follow-imports=silent
export BENCH_ARM64_BUILD="${BENCH_ARM64_BUILD:-1}"
# two workers, each taking whole test files (--dist loadfile), so a file's module fixtures are set up
# once and the session ones (sshd, emulated phone, adb server) once a worker; BENCH_TEST_WORKERS=0 runs
# the suite in this process alone; the longest files go first (tests/conftest.py), not xdist's
# largest-count-first
workers="${BENCH_TEST_WORKERS:-2}"
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
