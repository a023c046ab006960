"""Values used as file names: device names, model names and the like, made safe and unique.

A device name comes from a profile, from imported rows or from a farm worker, so it may be any
text: 300 characters (past the file system's 255-byte limit), a ``/`` or ``..`` (another
folder), a leading ``-`` (an option to a shell tool). ``safe_file_name`` keeps a name that is
already safe as it is, so files named before stay where they were, and turns any other into its
safe characters, cut to a bounded length, with a short hash of the whole text, so two names
that differ only in what was replaced or cut still name two files.

Standard library only, nothing else from the harness: every layer may use it.
"""

from __future__ import annotations

import hashlib
import re

#: Characters a file name keeps: portable on every file system and inert in a shell.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Longest name this makes (ASCII, so bytes too): well under NAME_MAX (255) so that a caller's
#: prefix and suffix (``latency-macs-``, ``.json.gz``, ``.png``) still fit.
MAX_NAME_CHARS = 120
#: Hex digits of the hash that keeps changed names apart: 40 bits, no collision among the
#: names one results folder holds.
HASH_CHARS = 10
#: What a name may not start with: ``.`` hides it (and ``..`` is the parent), ``-`` is an option.
_BAD_START = (".", "-")


def is_safe_file_name(text: str, max_chars: int = MAX_NAME_CHARS) -> bool:
    """Whether ``text`` may be used as a file name as it is."""
    return (
        0 < len(text) <= max_chars
        and not text.startswith(_BAD_START)
        and _UNSAFE.search(text) is None
    )


def safe_file_name(text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """``text`` itself when it is a safe file name; else its safe characters (the rest as
    ``_``), cut to fit ``max_chars`` with ``-`` and a hash of the whole ``text`` after them."""
    if is_safe_file_name(text, max_chars):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    kept = _UNSAFE.sub("_", text).lstrip("".join(_BAD_START))[: max_chars - HASH_CHARS - 1]
    return f"{kept}-{digest}" if kept else digest
