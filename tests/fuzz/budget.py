"""Each fuzz test's share of the CI time: how many inputs it takes under the ``ci`` profile.

The readers of this area (native logs, ORT profiles, ETDump events, device profiles,
known_hosts) have eleven fuzz tests; at the profile's count each, they alone would take most of
a minute on two cores. Under ``ci`` each takes its share here (together well under 30 s); the
``long`` profile's count is left as it is.
"""

from __future__ import annotations

from hypothesis import settings


def ci_share(examples: int) -> settings:
    """Settings giving a test ``examples`` inputs under ``ci``, the profile's own count otherwise
    (use it as a decorator above ``@given``)."""
    if settings.get_current_profile_name() != "ci":
        return settings()
    return settings(max_examples=examples)
