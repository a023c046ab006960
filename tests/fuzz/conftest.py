"""Hypothesis profiles of the fuzz tests: ``ci`` by default, ``long`` by hand.

``ci`` is derandomized (the same examples on every run, so CI never flakes on an input it has
not seen before) and small enough that every fuzz test together stays well under a minute on a
two-core machine. ``long`` (``BENCH_FUZZ_PROFILE=long``, as ``benchmarks/fuzz_long.py`` sets it)
tries thousands of random inputs per reader (``BENCH_FUZZ_EXAMPLES`` per test). Neither keeps
an example database in the tree.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Selects the profile; unset (or anything else) is ``ci``.
PROFILE_ENV = "BENCH_FUZZ_PROFILE"
#: Inputs per fuzz test of the ``long`` profile, when not its default.
EXAMPLES_ENV = "BENCH_FUZZ_EXAMPLES"
#: Inputs per fuzz test: ``ci`` keeps the whole fuzz suite to about 15 s on two cores.
CI_EXAMPLES = 150
LONG_EXAMPLES = 3000
#: Per-example time limit: far above what any reader needs on these small inputs (a few ms to
#: a few hundred, seen up to ~1 s on a loaded two-core machine), so only a reader that loops or
#: blows up (minutes before the fixes) trips it, never a busy machine.
DEADLINE_MS = 10_000
#: Health checks that judge the strategies, not the readers: mutating a real file is slow to
#: generate and draws many bytes by design.
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=CI_EXAMPLES,
    deadline=DEADLINE_MS,
    database=None,
    suppress_health_check=SUPPRESSED,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get(EXAMPLES_ENV, LONG_EXAMPLES)),
    deadline=DEADLINE_MS,
    database=None,
    suppress_health_check=SUPPRESSED,
    print_blob=True,
)
settings.load_profile("long" if os.environ.get(PROFILE_ENV) == "long" else "ci")
