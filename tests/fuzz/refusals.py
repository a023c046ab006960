"""What a reader refused, as the long run counts it: the kind of refusal, not where it was.

``mutations.record`` groups refusals by their message up to the first colon; the readers here
begin theirs with the file and the place (``log.txt: line 12: execution time (ms): expected
...``), so that part is taken off first and the counts say what was wrong.
"""

from __future__ import annotations

import re

from tests.fuzz.mutations import record

#: The places a message may begin with: a line, an event, the profile when no file is named.
_PLACE_RE = re.compile(r"^(?:line \d+|event \d+ \('.*?'\)|the profile|the ETDump \S+): ")


def record_refusal(reader: str, error: BaseException, source: str = "") -> None:
    """Count ``error`` as a refusal of ``reader``, without ``source`` and the place it names."""
    text = str(error).removeprefix(f"{source}: ") if source else str(error)
    while m := _PLACE_RE.match(text):
        text = text[m.end() :]
    record(reader, type(error)(text))
