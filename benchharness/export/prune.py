"""Pruning the artifact cache: every key ever exported stays until something removes it.

A key changes with the builder's source, the exporters' versions and this harness's export code,
so a machine that follows the project keeps collecting keys no run asks for again (7.8 GB here
after three rounds, which once filled CI's disk). An entry is the files of one key (artifact,
sidecar, lock, cost, ETRecord, a leftover ``.part``), last used when the newest of them was
written; a cache hit touches the sidecar (``cache.lookup``), so an entry in use stays young.
Entries unused for longer than the given age are removed whole; files that belong to no key are
never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchharness.errors import ExportError

#: ``<model>-<16 hex digits of the key>.<suffix...>``: every file the cache writes for a key.
ENTRY_FILE = re.compile(r"^(?P<entry>.+-[0-9a-f]{16})\.[A-Za-z0-9.]+$")
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed and kept (entries are keys; bytes are the removed files')."""

    removed_entries: int
    removed_files: int
    removed_bytes: int
    kept_entries: int
    kept_bytes: int


def _entries(root: Path) -> dict[Path, list[os.DirEntry[str]]]:
    """Each key's files, one folder level below ``root`` (a folder per model)."""
    groups: dict[Path, list[os.DirEntry[str]]] = defaultdict(list)
    with os.scandir(root) as models:
        for model in models:
            if not model.is_dir(follow_symlinks=False):
                continue
            with os.scandir(model.path) as files:
                for f in files:
                    match = ENTRY_FILE.match(f.name)
                    if match and f.is_file(follow_symlinks=False):
                        groups[Path(model.path) / match["entry"]].append(f)
    return groups


def prune(root: Path, older_than_days: float, now: float | None = None) -> PruneResult:
    """Remove the entries of ``root`` whose newest file is older than ``older_than_days``.

    ExportError when ``root`` is not a readable folder or a file cannot be removed."""
    if older_than_days < 0:
        raise ExportError(f"--older-than must be 0 days or more, not {older_than_days}")
    if not root.is_dir():
        raise ExportError(f"no export cache at {root}: nothing to prune")
    cutoff = (time.time() if now is None else now) - older_than_days * SECONDS_PER_DAY
    removed = files = removed_bytes = kept = kept_bytes = 0
    try:
        for group in _entries(root).values():
            stats = [f.stat(follow_symlinks=False) for f in group]
            size = sum(s.st_size for s in stats)
            if max(s.st_mtime for s in stats) >= cutoff:
                kept, kept_bytes = kept + 1, kept_bytes + size
                continue
            for f in group:
                with contextlib.suppress(FileNotFoundError):  # another prune got there first
                    os.unlink(f.path)
            removed, files, removed_bytes = removed + 1, files + len(group), removed_bytes + size
    except OSError as exc:
        raise ExportError(f"cannot prune {root}: {exc}") from exc
    return PruneResult(removed, files, removed_bytes, kept, kept_bytes)
