"""The fuzz tests (``tests/fuzz``) under their ``long`` profile: thousands of hostile inputs per
reader, then what each reader did with them and what was found.

CI runs the same tests under the derandomized ``ci`` profile (150 inputs per test, the same ones
every time). This script draws fresh random inputs (``--examples`` per test, 3000 unless told)
for the predictor file, the ``.pte`` reader and the results folder reload, and prints, per
reader, how many inputs it was given, how many loaded and how it refused the rest; then every
test that failed (a reader that raised something other than the harness's error, ran past the
per-input deadline or used too much memory), with hypothesis's falsifying input above it in the
pytest output. A test marked ``xfail`` is a defect already reported; its failure is printed too.

Run from the repository root (minutes, no device)::

    .venv/bin/python benchmarks/fuzz_long.py
    .venv/bin/python benchmarks/fuzz_long.py --examples 1000 -k pte
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout wins over an installed copy of the package
    sys.path.insert(0, str(ROOT))

#: How many refusal kinds to print per reader before summing up the rest.
TOP_REFUSALS = 12
#: Of a failure: its last lines (hypothesis's input and how to replay it), each cut to a width
#: (a falsifying input may be a whole file); pytest's own output above has them whole.
FAILURE_LINES = 4
LINE_CHARS = 300


class Outcomes:
    """A pytest plugin that keeps each test's outcome and, for a failure, its last lines."""

    def __init__(self) -> None:
        self.tests: dict[str, str] = {}
        self.failures: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.outcome != "failed":
            return
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        self.tests[report.nodeid] = outcome
        if outcome in ("failed", "xfailed") and report.longrepr is not None:
            lines = str(report.longrepr).strip().splitlines()
            errors = [line for line in lines if re.match(r"E\s+\w+(Error|Exception)\b", line)]
            shown = [*errors[-1:], *lines[-FAILURE_LINES:]]
            self.failures[report.nodeid] = "\n".join(cut(line) for line in shown)


def cut(line: str) -> str:
    return line if len(line) <= LINE_CHARS else f"{line[:LINE_CHARS]}... ({len(line)} chars)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3000, help="inputs per fuzz test")
    parser.add_argument("-k", dest="select", help="only the fuzz tests pytest's -k selects")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.environ["BENCH_FUZZ_PROFILE"] = "long"
    os.environ["BENCH_FUZZ_EXAMPLES"] = str(args.examples)
    plugin = Outcomes()
    pytest_args = [str(ROOT / "tests" / "fuzz"), "-q", "-p", "no:cacheprovider", "--tb=short"]
    pytest_args += ["--hypothesis-show-statistics"]
    if args.select:
        pytest_args += ["-k", args.select]
    start = time.perf_counter()
    code = pytest.main(pytest_args, plugins=[plugin])
    wall = time.perf_counter() - start

    from tests.fuzz.mutations import OUTCOMES  # filled by the tests pytest just ran

    print_readers(OUTCOMES)
    print_found(plugin)
    print(f"\n{args.examples} inputs per fuzz test, {wall:.0f} s; pytest exit code {int(code)}")
    return int(code)


def print_readers(outcomes: Counter[tuple[str, str]]) -> None:
    by_reader: dict[str, Counter[str]] = defaultdict(Counter)
    for (reader, outcome), n in outcomes.items():
        by_reader[reader][outcome] += n
    print("\n=== inputs per reader ===")
    for reader, counts in sorted(by_reader.items()):
        total = sum(counts.values())
        loaded = counts.pop("loaded", 0)
        print(f"\n{reader}: {total} inputs, {loaded} loaded, {total - loaded} refused")
        ranked = counts.most_common()
        for outcome, n in ranked[:TOP_REFUSALS]:
            print(f"  {n:7d}  {outcome}")
        rest = ranked[TOP_REFUSALS:]
        if rest:
            print(f"  {sum(n for _, n in rest):7d}  ... {len(rest)} other kinds of refusal")


def print_found(plugin: Outcomes) -> None:
    print("\n=== what was found ===")
    failed = {t: o for t, o in plugin.tests.items() if o in ("failed", "xfailed")}
    if not failed:
        print("nothing: every input loaded or was refused as the harness's own error")
    for test, outcome in sorted(failed.items()):
        known = " (a known defect, marked xfail)" if outcome == "xfailed" else ""
        print(f"\n{test}: {outcome}{known}")
        print("    " + plugin.failures.get(test, "").replace("\n", "\n    "))


if __name__ == "__main__":
    sys.exit(main())
