"""Artifacts moved to farm workers by sha256 and cached there, so a model crosses once per host.

The worker side is plain file handling. A file is named by its sha256 and written under a
temporary name, checked, then renamed; it is hashed again every time it is used, since a disk
or a hand can change bytes after they were checked (a file that no longer matches is removed
and sent again). A program's companion files travel with it: a ``.pte``'s ETRecord, which its
operator rows are read with, is ``<sha256>.etrecord`` beside it, its own hash kept in
``<sha256>.etrecord.sha256``. The cache is bounded: past ``max_bytes()`` the least recently used
artifacts (with their companions) leave, never one a device is measuring.

The coordinator side asks each worker which hashes it lacks and sends only those, through the
scheduler (a worker need not be reachable from the coordinator).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchharness.errors import FarmError, UsageError
from benchharness.export.cache import FILE_SUFFIXES, cache_dir
from benchharness.export.pte import ETRECORD_SUFFIX
from benchharness.plan.artifacts import Artifact

if TYPE_CHECKING:
    from distributed import Client

#: Where a worker keeps the artifacts it was sent, unless set: beside the export cache.
FARM_CACHE_ENV = "BENCH_FARM_CACHE_DIR"
#: Bytes the cache may hold before the least recently used artifacts leave: a zoo's worth of
#: fp32 and int8 programs in every format is a few GiB, so 20 GiB keeps several runs' models
#: without filling a worker's disk, which its export cache and the devices' pushes share.
DEFAULT_MAX_BYTES = 20 * 2**30
#: Overrides DEFAULT_MAX_BYTES (bytes) for a worker with a smaller or larger disk.
MAX_BYTES_ENV = "BENCH_FARM_CACHE_MAX_BYTES"
#: Seconds one artifact may take to reach a worker and be written: a few hundred MB on a slow
#: link, not an endless wait on a worker that went away.
TRANSFER_TIMEOUT_S = 600.0
#: Bytes read at a time when hashing a cached file.
HASH_CHUNK = 1 << 20
#: Files a program needs beside it, by format: the suffix each is cached under.
COMPANIONS: dict[str, tuple[str, ...]] = {"pte": (ETRECORD_SUFFIX,)}
#: The suffix of the file holding a companion's sha256.
HASH_SUFFIX = ".sha256"
#: What a look at a cached artifact finds.
INTACT, MISSING, DAMAGED = "intact", "missing", "damaged"

#: Guards eviction against a device of this worker checking or pinning an artifact meanwhile.
_lock = threading.Lock()
#: sha256 -> devices of this process measuring with it now: never evicted while > 0.
_pins: dict[str, int] = {}

#: (sha256, format, companion suffixes the coordinator has): what one artifact needs on a worker.
Want = tuple[str, str, tuple[str, ...]]


def farm_cache_dir() -> Path:
    env = os.environ.get(FARM_CACHE_ENV)
    return Path(env) if env else cache_dir() / "farm"


def max_bytes() -> int:
    """The cache's bound: $BENCH_FARM_CACHE_MAX_BYTES, else DEFAULT_MAX_BYTES."""
    env = os.environ.get(MAX_BYTES_ENV)
    if not env:
        return DEFAULT_MAX_BYTES
    try:
        value = int(env)
    except ValueError:
        value = -1
    if value <= 0:
        raise UsageError(f"${MAX_BYTES_ENV}={env!r}: give a positive number of bytes")
    return value


def cached_path(sha256: str, fmt: str) -> Path:
    return farm_cache_dir() / f"{sha256}.{FILE_SUFFIXES.get(fmt, fmt)}"


def companion_path(sha256: str, suffix: str) -> Path:
    return farm_cache_dir() / f"{sha256}{suffix}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- the worker side ---------------------------------------------------------------------------


def present(sha256: str, fmt: str, companions: Sequence[str] = ()) -> Path | None:
    """The cached file of that hash, hashed again now, with every companion it was sent and
    each of ``companions``; None when this host lacks any of them, or their bytes changed (then
    they are removed, to be sent again)."""
    path = cached_path(sha256, fmt)
    with _lock:
        state = _check(path, sha256, companions)
        if state == DAMAGED:
            _remove_group(sha256)
        if state != INTACT:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # its last use, for the least-recently-used eviction
    return path


def _check(path: Path, sha256: str, companions: Sequence[str]) -> str:
    """INTACT, MISSING (a file of it is not here) or DAMAGED (a file's bytes changed)."""
    sent = {p.name.removeprefix(sha256).removesuffix(HASH_SUFFIX)
            for p in path.parent.glob(f"{sha256}.*{HASH_SUFFIX}")}  # fmt: skip
    files = [(path, sha256)]
    for suffix in sorted(sent | set(companions)):
        try:
            recorded = companion_path(sha256, suffix + HASH_SUFFIX).read_text().strip()
        except OSError:
            return MISSING
        files.append((companion_path(sha256, suffix), recorded))
    for file, expected in files:
        try:
            if file_sha256(file) != expected:
                return DAMAGED
        except FileNotFoundError:
            return MISSING
        except OSError:
            return DAMAGED
    return INTACT


def missing(items: Sequence[Want]) -> list[str]:
    """The hashes of the artifacts this host lacks, whole and intact (run on a worker)."""
    return [sha for sha, fmt, companions in items if present(sha, fmt, companions) is None]


@contextlib.contextmanager
def pinned(sha256: str) -> Iterator[None]:
    """While a device measures with an artifact, eviction leaves it alone."""
    with _lock:
        _pins[sha256] = _pins.get(sha256, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _pins[sha256] -= 1
            if not _pins[sha256]:
                del _pins[sha256]


def store(sha256: str, fmt: str, data: bytes) -> str:
    """Check ``data`` against its hash and cache it (run on a worker); the cached path. The
    least recently used artifacts leave if the cache is now over its bound."""
    path = cached_path(sha256, fmt)
    _write_checked(path, sha256, data)
    evict(keep=sha256)
    return str(path)


def store_companion(sha256: str, suffix: str, companion_sha256: str, data: bytes) -> str:
    """Cache a file an artifact needs beside it (a ``.pte``'s ETRecord), checked against its
    own hash, which is kept beside it for the checks on use."""
    if suffix not in {s for suffixes in COMPANIONS.values() for s in suffixes}:
        raise FarmError(f"{suffix!r} is not a companion file an artifact may have")
    path = companion_path(sha256, suffix)
    _write_checked(path, companion_sha256, data)
    _write_atomic(companion_path(sha256, suffix + HASH_SUFFIX), companion_sha256.encode())
    return str(path)


def _write_checked(path: Path, sha256: str, data: bytes) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise FarmError(f"artifact {sha256[:16]} arrived damaged (its bytes hash to {got[:16]})")
    _write_atomic(path, data)


def _write_atomic(path: Path, data: bytes) -> None:
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


def evict(keep: str = "", limit: int | None = None) -> list[str]:
    """Remove the least recently used artifacts (with their companions) until the cache holds at
    most ``limit`` bytes (``max_bytes()``); never ``keep`` nor one being measured. The hashes
    removed."""
    limit = max_bytes() if limit is None else limit
    with _lock:
        groups = _groups()
        total = sum(size for _, size in groups.values())
        removed = []
        for sha, _ in sorted(groups.items(), key=lambda kv: kv[1][0]):
            if total <= limit:
                break
            if sha == keep or sha in _pins:
                continue
            _remove_group(sha)
            total -= groups[sha][1]
            removed.append(sha)
    return removed


def _groups() -> dict[str, tuple[float, int]]:
    """sha256 -> (last use, bytes) of every cached artifact, its companions counted with it."""
    groups: dict[str, tuple[float, int]] = {}
    root = farm_cache_dir()
    if not root.is_dir():
        return groups
    for entry in root.iterdir():
        if entry.name.startswith(".") or "." not in entry.name:
            continue  # a transfer being written
        sha, _, rest = entry.name.partition(".")
        try:
            stat = entry.stat()
        except OSError:
            continue
        used, size = groups.get(sha, (0.0, 0))
        # the program's own file carries the last use (companions keep their arrival time)
        is_main = f".{rest}" not in _companion_names()
        groups[sha] = (stat.st_mtime if is_main else used, size + stat.st_size)
    return groups


def _companion_names() -> set[str]:
    names = {s for suffixes in COMPANIONS.values() for s in suffixes}
    return names | {s + HASH_SUFFIX for s in names}


def _remove_group(sha256: str) -> None:
    for entry in farm_cache_dir().glob(f"{sha256}.*"):
        entry.unlink(missing_ok=True)


# --- the coordinator side ----------------------------------------------------------------------


def companions_of(artifact: Artifact) -> list[tuple[str, Path]]:
    """The companion files this machine has for ``artifact``: (suffix, path)."""
    if artifact.path is None:
        return []
    out = []
    for suffix in COMPANIONS.get(artifact.format, ()):
        path = artifact.path.with_suffix(suffix)
        if path.is_file():
            out.append((suffix, path))
    return out


def wants(artifacts: Iterable[Artifact]) -> dict[str, tuple[Artifact, Want]]:
    """What each sendable artifact needs on a worker, by sha256."""
    out: dict[str, tuple[Artifact, Want]] = {}
    for a in artifacts:
        if a.path is None or not a.sha256 or a.error:
            continue
        suffixes = tuple(s for s, _ in companions_of(a))
        out[a.sha256] = (a, (a.sha256, a.format, suffixes))
    return out


def sync(client: Client, workers: Iterable[str], artifacts: Sequence[Artifact]) -> dict[str, int]:
    """Send every artifact a worker lacks to it; bytes sent per worker address."""
    wanted = wants(artifacts)
    items = [want for _, want in wanted.values()]
    sent: dict[str, int] = {}
    for address in workers:
        try:
            lacking = client.run(missing, items, workers=[address])[address]
        except (OSError, KeyError) as exc:
            raise FarmError(f"cannot ask worker {address} for its artifact cache: {exc}") from exc
        if not isinstance(lacking, list) or not all(isinstance(s, str) for s in lacking):
            raise FarmError(f"worker {address} answered the artifact check with {lacking!r}")
        sent[address] = 0
        for sha in lacking:
            if sha in wanted:
                sent[address] += send_one(client, address, wanted[sha][0])
    return sent


def send_one(client: Client, address: str, artifact: Artifact) -> int:
    """Put one artifact and its companions into one worker's cache (the bytes pass through the
    scheduler); the number of bytes sent."""
    assert artifact.path is not None
    total = 0
    for suffix, path in companions_of(artifact):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        args = (artifact.sha256, suffix, digest)
        total += _send(client, address, artifact, data, store_companion, *args)
    data = artifact.path.read_bytes()
    total += _send(client, address, artifact, data, store, artifact.sha256, artifact.format)
    return total


def _send(
    client: Client,
    address: str,
    artifact: Artifact,
    data: bytes,
    fn: Callable[..., str],
    *args: str,
) -> int:
    """``fn(*args, data)`` on the worker at ``address``, the data sent through the scheduler."""
    # through the scheduler: a worker behind NAT or a firewall need not accept our connection
    future = client.scatter(data, workers=[address], direct=False, hash=False)
    stored = client.submit(
        fn, *args, future,
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
