"""The cache key covers every module and package that writes an artifact's bytes, per format.

A ``.pte`` was reused after the int8 quantiser changed: ``export/pte.py`` and torchao were not in
its key. The key of each format now carries its own exporter's source and packages, and a test
reads the exporters' imports so a new module or package cannot be left out unnoticed. The onnx
and tflite keys are what they were, so their cached artifacts stay valid.
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from benchharness.export import cache

EXPORT_DIR = Path(cache.__file__).resolve().parent
#: Export modules that write no artifact bytes, and why.
NOT_WRITERS = {
    "__init__.py": "empty",
    "cache.py": "keys, locks and sidecars: no artifact bytes",
    "pipeline.py": "chooses what to call; what it passes on (shape, precision, calibration) is "
    "in the key fields",
    "verify.py": "reads artifacts, writes none",
    "prune.py": "removes whole entries of the cache, writes none",
}
#: Packages the writers import that shape no bytes themselves, and why.
NOT_BYTES = {
    "numpy": "arrays in and out; the random calibration set it draws is keyed by its seed and "
    "count (quantize.Calibration.fingerprint)",
}


def _fields(fmt: str) -> dict[str, Any]:
    return {"model": "m", "builder": "b:f", "builder_source": None, "kwargs": {},
            "classes": 10, "input_shape": [1, 3, 8, 8], "format": fmt, "precision": "fp32"}  # fmt: skip


def _key_before_pte_had_its_own(fields: dict[str, Any]) -> str:
    """How every key was made before: onnx and tflite keys must still be made so."""
    payload = {
        **fields,
        "exporters": cache.exporter_versions(),
        "code": cache.EXPORT_CODE_VERSION,
        "code_sha": cache.export_code_digest(),
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _clear_digests() -> None:
    for value in vars(cache).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def fresh_digests() -> Any:
    _clear_digests()
    yield
    _clear_digests()


@pytest.mark.parametrize("fmt", ["onnx", "tflite", "torch"])
def test_the_keys_of_other_formats_are_what_they_were(fmt: str) -> None:
    assert cache.cache_key(_fields(fmt)) == _key_before_pte_had_its_own(_fields(fmt))


def test_an_edit_of_the_pte_exporter_changes_pte_keys_only(
    monkeypatch: pytest.MonkeyPatch, fresh_digests: None
) -> None:
    before = {fmt: cache.cache_key(_fields(fmt)) for fmt in ("pte", "onnx", "tflite")}
    real = Path.read_bytes

    def edited(path: Path) -> bytes:
        data = real(path)
        return data + b"\n# the int8 quantiser changed\n" if path.name == "pte.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    _clear_digests()
    after = {fmt: cache.cache_key(_fields(fmt)) for fmt in ("pte", "onnx", "tflite")}
    assert after["pte"] != before["pte"], "an edited export/pte.py kept its old key"
    assert (after["onnx"], after["tflite"]) == (before["onnx"], before["tflite"])


@pytest.mark.parametrize("package", ["torchao", "executorch"])
def test_a_new_version_of_a_pte_package_changes_pte_keys_only(
    monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    before = {fmt: cache.cache_key(_fields(fmt)) for fmt in ("pte", "onnx")}
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "99.0" if name == package else real(name))
    after = {fmt: cache.cache_key(_fields(fmt)) for fmt in ("pte", "onnx")}
    assert after["pte"] != before["pte"], f"a new {package} kept the old pte key"
    assert after["onnx"] == before["onnx"]


def _imported_packages(source: Path) -> set[str]:
    """Distributions of the third-party packages ``source`` imports (anywhere in it)."""
    tops: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.partition(".")[0])
    third_party = tops - set(sys.stdlib_module_names) - {"__future__", "benchharness"}
    dists = metadata.packages_distributions()
    return {dist for top in third_party for dist in dists.get(top, [top])}


def _format_of(module: str) -> str | None:
    """The format whose own sources list ``module``, or None (every format's)."""
    owners = [fmt for fmt, names in cache.FORMAT_SOURCES.items() if module in names]
    assert len(owners) <= 1, f"{module} is the own source of several formats: {owners}"
    return owners[0] if owners else None


def test_every_module_that_writes_bytes_is_in_a_key() -> None:
    modules = sorted(p.name for p in EXPORT_DIR.glob("*.py"))
    keyed = set(cache.EXPORT_SOURCES).union(*cache.FORMAT_SOURCES.values())
    missing = [m for m in modules if m not in keyed and m not in NOT_WRITERS]
    assert not missing, f"export modules in no cache key: {missing}"
    assert not keyed & set(NOT_WRITERS), "a module listed as writing no bytes is keyed"


def test_every_package_a_writer_imports_is_in_its_formats_key() -> None:
    for module in sorted(set(cache.EXPORT_SOURCES).union(*cache.FORMAT_SOURCES.values())):
        fmt = _format_of(module)
        keyed = set(cache.EXPORTER_PACKAGES) | set(cache.FORMAT_PACKAGES.get(fmt or "", ()))
        imported = _imported_packages(EXPORT_DIR / module) - set(NOT_BYTES)
        missing = sorted(imported - keyed)
        assert not missing, f"{module} imports {missing}, which no {fmt or 'every'} key holds"
