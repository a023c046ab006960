"""Artifacts moved to farm workers by sha256 and cached there, so a model crosses once per host.

The worker side is plain file handling: a file named by its sha256 exists in the cache only once
its bytes were checked against that hash (written to a temporary name, renamed after), so its
presence is the proof. The coordinator side asks each worker which hashes it lacks and sends
only those, through the scheduler (a worker need not be reachable from the coordinator).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.errors import FarmError
from benchharness.export.cache import FILE_SUFFIXES, cache_dir
from benchharness.plan.artifacts import Artifact

if TYPE_CHECKING:
    from distributed import Client

#: Where a worker keeps the artifacts it was sent, unless set: beside the export cache.
FARM_CACHE_ENV = "BENCH_FARM_CACHE_DIR"
#: Seconds one artifact may take to reach a worker and be written: a few hundred MB on a slow
#: link, not an endless wait on a worker that went away.
TRANSFER_TIMEOUT_S = 600.0


def farm_cache_dir() -> Path:
    env = os.environ.get(FARM_CACHE_ENV)
    return Path(env) if env else cache_dir() / "farm"


def cached_path(sha256: str, fmt: str) -> Path:
    return farm_cache_dir() / f"{sha256}.{FILE_SUFFIXES.get(fmt, fmt)}"


def present(sha256: str, fmt: str) -> Path | None:
    """The cached file of that hash, or None when this host has not been sent it."""
    path = cached_path(sha256, fmt)
    return path if path.is_file() else None


def missing(items: Sequence[tuple[str, str]]) -> list[str]:
    """The hashes of ``(sha256, format)`` pairs this host lacks (run on a worker)."""
    return [sha for sha, fmt in items if present(sha, fmt) is None]


def store(sha256: str, fmt: str, data: bytes) -> str:
    """Check ``data`` against its hash and cache it (run on a worker); the cached path."""
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise FarmError(f"artifact {sha256[:16]} arrived damaged (its bytes hash to {got[:16]})")
    path = cached_path(sha256, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


def sync(client: Client, workers: Iterable[str], artifacts: Sequence[Artifact]) -> dict[str, int]:
    """Send every artifact a worker lacks to it; bytes sent per worker address."""
    wanted = {a.sha256: a for a in artifacts if a.path is not None and a.sha256 and not a.error}
    items = [(sha, a.format) for sha, a in wanted.items()]
    sent: dict[str, int] = {}
    for address in workers:
        try:
            lacking = client.run(missing, items, workers=[address])[address]
        except (OSError, KeyError) as exc:
            raise FarmError(f"cannot ask worker {address} for its artifact cache: {exc}") from exc
        sent[address] = 0
        for sha in lacking:
            sent[address] += send_one(client, address, wanted[sha])
    return sent


def send_one(client: Client, address: str, artifact: Artifact) -> int:
    """Put one artifact into one worker's cache (the bytes pass through the scheduler); the
    number of bytes sent."""
    assert artifact.path is not None
    data = artifact.path.read_bytes()
    # through the scheduler: a worker behind NAT or a firewall need not accept our connection
    future = client.scatter(data, workers=[address], direct=False, hash=False)
    stored = client.submit(
        store, artifact.sha256, artifact.format, future,
        workers=[address], allow_other_workers=False, pure=False,
        key=f"bench-artifact-{artifact.sha256[:16]}-{os.urandom(4).hex()}",
    )  # fmt: skip
    try:
        stored.result(timeout=TRANSFER_TIMEOUT_S)
    except FarmError:
        raise
    except Exception as exc:  # the worker left, the transfer timed out: Dask's own types
        raise FarmError(
            f"cannot send {artifact.model} {artifact.format} to worker {address}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        stored.release()
        future.release()
    return len(data)
