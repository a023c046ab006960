"""The artifact cache: exported models keyed by everything that changes the bytes.

Key = model name, builder, builder kwargs, input shape, format, precision, the builder's own
source (builder_fingerprint), the versions of every package that writes or shapes the bytes, and
this harness's export code (its version and the source of the modules that write artifacts). A
hit skips export entirely; a sidecar JSON holds the sha256 (checked on every hit, so a damaged
file is re-exported, not benchmarked) and the verification result.

The cache is per user (the XDG cache directory, ``~/.cache/benchharness/exports``), so every
checkout and the test suite share exports; ``BENCH_CACHE_DIR`` moves it. Exports of one key are
serialised by a lock file beside the artifact, so two processes sharing the cache never write the
same file at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchharness.atomic import write_text_atomic
from benchharness.errors import ExportError

#: The cache's folder under the user's cache directory (XDG Base Directory specification).
CACHE_SUBDIR = Path("benchharness") / "exports"

#: Bump when the export code changes what it writes, so stale artifacts are not reused.
EXPORT_CODE_VERSION = 3

#: Packages whose versions change exported bytes: the model libraries, the exporters and what
#: they write through (onnx-ir under torch.onnx, litert-converter under litert-torch), and what
#: writes or calibrates the compressed variants (onnxruntime's float16 and quantization tools,
#: ai-edge-quantizer, and ai-edge-litert, whose interpreter runs the calibration).
EXPORTER_PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "onnx",
    "onnxscript",
    "onnx-ir",
    "litert-torch",
    "litert-converter",
    "onnxruntime",
    "ai-edge-quantizer",
    "ai-edge-litert",
)
#: Directory names that mark an installed package, whose version stands for its source.
INSTALLED_DIRS = ("site-packages", "dist-packages")
#: The export modules whose code decides the bytes written: their source is in the key, so an
#: edit re-exports without anyone remembering to bump EXPORT_CODE_VERSION.
EXPORT_SOURCES = ("convert.py", "quantize.py")
#: What to do when a file cannot be written into the cache (a full disk, a read-only or foreign
#: folder): the environment variable that moves the whole cache elsewhere.
WRITE_ADVICE = "free space or fix the folder's owner or mode, or set BENCH_CACHE_DIR elsewhere"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/benchharness/exports``, or ``~/.cache/benchharness/exports``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # the specification: a relative path is invalid and is ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / CACHE_SUBDIR


#: Where artifacts go unless ``BENCH_CACHE_DIR`` says otherwise (as this process started).
DEFAULT_CACHE_DIR = default_cache_dir()
#: Packages that change one format's bytes only: they go into that format's keys alone, so
#: installing or upgrading them leaves the other formats' cached artifacts valid. A ``.pte`` is
#: written by ExecuTorch and, at int8-static, quantised by torchao's PT2E flow.
FORMAT_PACKAGES: dict[str, tuple[str, ...]] = {"pte": ("executorch", "torchao")}
#: Export modules that write one format only: their source goes into that format's keys alone
#: (like FORMAT_PACKAGES), so an edit re-exports that format and leaves the others' valid.
FORMAT_SOURCES: dict[str, tuple[str, ...]] = {"pte": ("pte.py",)}


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR") or default_cache_dir())


def _sources_digest(names: tuple[str, ...]) -> str:
    """sha256 prefix of the export modules ``names``, in order."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in names:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def export_code_digest() -> str:
    """sha256 of the export modules that write artifacts of every format (EXPORT_SOURCES)."""
    return _sources_digest(EXPORT_SOURCES)


@functools.cache
def format_code_digest(fmt: str) -> str | None:
    """sha256 of the export modules of ``fmt`` alone (FORMAT_SOURCES), None when it has none."""
    own = FORMAT_SOURCES.get(fmt)
    return _sources_digest(own) if own else None


@contextlib.contextmanager
def key_lock(path: Path) -> Iterator[None]:
    """Hold the export lock of the artifact at ``path`` (an flock on ``<path>.lock``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def exporter_versions(packages: tuple[str, ...] = EXPORTER_PACKAGES) -> dict[str, str]:
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    return versions


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def _installed_version(top: str) -> str | None:
    """``dist==version`` when the top-level module ``top`` is an installed package's."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    if not any(part in INSTALLED_DIRS for part in Path(spec.origin).parts):
        return None
    for dist in _distributions().get(top, []):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist}=={metadata.version(dist)}"
    return None


def builder_fingerprint(builder: str) -> str | None:
    """What the bytes of a ``module:function`` builder's model depend on in its own code.

    For a module of an installed package (torchvision, timm) its version, ``dist==version``,
    which the key carries anyway; for anything else (a user's module, the seed architectures
    in this repository) the sha256 of its source: of the module file, or of every ``.py`` file
    of a package. Helpers it imports from other modules are not covered. None when the module
    cannot be found (building will then fail and say why).
    """
    module_name = builder.partition(":")[0]
    top = module_name.partition(".")[0]
    # the top-level package first: finding it imports nothing, while find_spec of a dotted name
    # imports its parents (torchvision.models: torch, seconds of every run's start)
    installed = _installed_version(top)
    if installed is not None:
        return installed
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    origin = Path(spec.origin)
    files = [origin]
    if spec.submodule_search_locations:
        files = sorted(origin.parent.rglob("*.py"))
    digest = hashlib.sha256()
    for file in files:
        if len(files) > 1:
            digest.update(str(file.relative_to(origin.parent)).encode() + b"\0")
        digest.update(file.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file into the cache atomically (``benchharness.atomic``); an OSError is an
    ExportError that says what to do."""
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}; {WRITE_ADVICE}") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A verified artifact on disk, and what its export measured."""

    path: Path
    format: str
    precision: str
    sha256: str
    max_abs_err: float | None
    tolerance: float | None
    export_s: float
    cached: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def cache_key(fields: dict[str, Any]) -> str:
    payload = {
        **fields,
        "exporters": exporter_versions(),
        "code": EXPORT_CODE_VERSION,
        "code_sha": export_code_digest(),
    }
    fmt = str(fields.get("format"))
    own = FORMAT_PACKAGES.get(fmt)
    if own:
        payload["format_exporters"] = exporter_versions(own)
    own_code = format_code_digest(fmt)
    if own_code:
        payload["format_code_sha"] = own_code
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


#: File suffix of a format whose files are not named after it: torch.export archives are .pt2.
FILE_SUFFIXES = {"torch": "pt2"}


def artifact_path(root: Path, name: str, key: str, fmt: str) -> Path:
    return root / name / f"{name}-{key}.{FILE_SUFFIXES.get(fmt, fmt)}"


def record_path(path: Path) -> Path:
    """The sidecar JSON of the artifact at ``path``: its sha256, verification and key fields."""
    return path.with_suffix(path.suffix + ".json")


def lookup(path: Path) -> CacheEntry | None:
    """The cached entry at ``path`` if present and intact; None means export again."""
    side = record_path(path)
    if not path.exists() or not side.exists():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # damaged: export again
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("format", "precision", "sha256")
    ):
        return None
    errors = [data.get(k) for k in ("max_abs_err", "tolerance")]
    if any(e is not None and not isinstance(e, (int, float)) for e in errors):
        return None
    if data["sha256"] != sha256_file(path):
        return None
    # a hit is a use: the sidecar's time is what ``bench cache prune`` keeps young entries by
    with contextlib.suppress(OSError):  # a read-only cache is still a cache
        os.utime(side)
    return CacheEntry(
        path=path,
        format=data["format"],
        precision=data["precision"],
        sha256=data["sha256"],
        max_abs_err=errors[0],
        tolerance=errors[1],
        export_s=0.0,
        cached=True,
    )


def record(entry: CacheEntry, fields: dict[str, Any]) -> None:
    side = record_path(entry.path)
    data = {**entry.to_json(), "key_fields": fields, "exporters": exporter_versions()}
    atomic_write_text(side, json.dumps(data, indent=2, default=str))
