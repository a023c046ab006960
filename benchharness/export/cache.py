"""The artifact cache: exported models keyed by everything that changes the bytes.

Key = model name, builder, builder kwargs, input shape, format, precision, the versions of the
exporters and of this harness's export code. A hit skips export entirely; a sidecar JSON holds the
sha256 (checked on every hit, so a damaged file is re-exported, not benchmarked) and the
verification result.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchharness.results.store import atomic_write_text

#: Where artifacts go unless ``--cache-dir`` or ``BENCH_CACHE_DIR`` says otherwise (git-ignored).
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "models" / "cache"

#: Bump when the export code changes what it writes, so stale artifacts are not reused.
EXPORT_CODE_VERSION = 3

#: Packages whose versions change exported bytes.
EXPORTER_PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxscript", "litert-torch")
#: Packages that change one format's bytes only: they go into that format's keys alone, so
#: installing or upgrading them leaves the other formats' cached artifacts valid.
FORMAT_PACKAGES: dict[str, tuple[str, ...]] = {"pte": ("executorch",)}


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", DEFAULT_CACHE_DIR))


def exporter_versions(packages: tuple[str, ...] = EXPORTER_PACKAGES) -> dict[str, str]:
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "absent"
    return versions


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
    payload = {**fields, "exporters": exporter_versions(), "code": EXPORT_CODE_VERSION}
    own = FORMAT_PACKAGES.get(str(fields.get("format")))
    if own:
        payload["format_exporters"] = exporter_versions(own)
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


#: File suffix of a format whose files are not named after it: torch.export archives are .pt2.
FILE_SUFFIXES = {"torch": "pt2"}


def artifact_path(root: Path, name: str, key: str, fmt: str) -> Path:
    return root / name / f"{name}-{key}.{FILE_SUFFIXES.get(fmt, fmt)}"


def lookup(path: Path) -> CacheEntry | None:
    """The cached entry at ``path`` if present and intact; None means export again."""
    side = path.with_suffix(path.suffix + ".json")
    if not path.exists() or not side.exists():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("sha256") != sha256_file(path):
        return None
    return CacheEntry(
        path=path,
        format=data["format"],
        precision=data["precision"],
        sha256=data["sha256"],
        max_abs_err=data.get("max_abs_err"),
        tolerance=data.get("tolerance"),
        export_s=0.0,
        cached=True,
    )


def record(entry: CacheEntry, fields: dict[str, Any]) -> None:
    side = entry.path.with_suffix(entry.path.suffix + ".json")
    data = {**entry.to_json(), "key_fields": fields, "exporters": exporter_versions()}
    atomic_write_text(side, json.dumps(data, indent=2, default=str))
