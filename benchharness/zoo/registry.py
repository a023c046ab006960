"""The zoo registry: model name -> builder, default input shape, classes and source.

The manifest is ``models/zoo.toml``; one table per model, so adding a model is one entry. A user can
also name any ``module:function`` returning an ``nn.Module``, or a ready ``.onnx``/``.tflite``
file.

A built model gets the seeded weights of ``zoo/init_weights.py`` (rule ``seeded-normal/v1``)
unless its spec keeps the builder's own (``keep_weights``, ``--keep-weights``; a builder asked for
trained weights keeps them too): untrained builders zero-initialise whole branches, which a
converter then folds away.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchharness.errors import ModelFileError, UnknownModelError, UsageError
from benchharness.zoo import init_weights

if TYPE_CHECKING:
    from torch import nn

#: The manifest shipped with the repository.
ZOO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "zoo.toml"

#: Input of a ``module:function`` model when the user gives no ``--input-shape``: ImageNet size.
DEFAULT_INPUT_SHAPE = (1, 3, 224, 224)

#: The global torch seed a builder runs under, so its own (kept) weights are the same every time;
#: the weights exported by default are ``init_weights``' and have their own seed.
WEIGHT_SEED = 0

#: File suffixes benchmarked as they are, without export.
ARTIFACT_SUFFIXES = {".onnx": "onnx", ".tflite": "tflite", ".pte": "pte"}


@dataclass(frozen=True)
class ModelSpec:
    """A torch model the harness can build and export."""

    name: str
    source: str
    builder: str
    input_shape: tuple[int, ...]
    classes: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    #: keep the builder's own weights (a trained checkpoint) instead of ``init_weights``' rule
    keep_weights: bool = False

    @property
    def input_shape_str(self) -> str:
        return "x".join(str(d) for d in self.input_shape)

    @property
    def keeps_builder_weights(self) -> bool:
        """Whether the model is exported with its builder's weights: asked for with
        ``keep_weights``, or implied by a builder keyword asking for trained weights."""
        return self.keep_weights or init_weights.asks_for_trained(self.kwargs)

    @property
    def init(self) -> str:
        """The weights' origin as rows record it: ``seeded-normal/v1 seed 0`` or ``builder``."""
        return init_weights.label(self.keeps_builder_weights)

    def with_input_shape(self, shape: Sequence[int]) -> ModelSpec:
        return dataclasses.replace(self, input_shape=tuple(shape))

    def build(self) -> nn.Module:
        """Instantiate the model in eval mode, with the weights ``init`` names: the seeded rule
        of ``init_weights`` unless the builder's own are kept."""
        import torch

        func = _import_builder(self.builder)
        kwargs = dict(self.kwargs)
        if self.classes is not None:
            kwargs.setdefault("num_classes", self.classes)
        torch.manual_seed(WEIGHT_SEED)
        try:
            model = func(**kwargs)
        except Exception as exc:  # any builder failure is the user's model's problem
            raise UnknownModelError(
                f"building {self.name} with {self.builder}({_fmt_kwargs(kwargs)}) failed: {exc}"
            ) from exc
        if not hasattr(model, "eval") or not callable(model):
            raise UnknownModelError(f"{self.builder} did not return a torch nn.Module")
        built: nn.Module = model.eval()
        if not self.keeps_builder_weights:
            try:
                init_weights.initialise(built, self.input_shape)
            except Exception as exc:  # a parameter the rule cannot fill: say how to go around it
                raise UnknownModelError(
                    f"initialising {self.name}'s weights ({init_weights.RULE}) failed: "
                    f"{type(exc).__name__}: {exc}; --keep-weights exports the builder's own"
                ) from exc
        return built


@dataclass(frozen=True)
class ArtifactRef:
    """A model file given by path, benchmarked as it is."""

    path: Path
    format: str
    #: the name in rows when the stem alone would not tell it from another file of the run
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.path.stem


ModelRef = ModelSpec | ArtifactRef


def _fmt_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


#: (mtime_ns, size) of each builder module's file when it was last (re)loaded.
_LOADED: dict[str, tuple[int, int]] = {}


def _fresh(module: Any) -> Any:
    """``module``, reloaded if its file changed since it was loaded: a long-lived process (the
    pytest plugin) must build what the export cache key, which hashes the file, says it built."""
    path = getattr(module, "__file__", None)
    if not path:
        return module
    try:
        info = os.stat(path)
    except OSError:
        return module
    stamp = (info.st_mtime_ns, info.st_size)
    known = _LOADED.setdefault(module.__name__, stamp)
    if known != stamp:
        module = importlib.reload(module)
        _LOADED[module.__name__] = stamp
    return module


def _import_builder(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UnknownModelError(f"{target!r} is not of the form module:function")
    try:
        module = _fresh(importlib.import_module(module_name))
    except ImportError as exc:
        raise UnknownModelError(
            f"cannot import {module_name!r} for {target!r}: {exc}; is it on PYTHONPATH?"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownModelError(f"module {module_name!r} has no {attr!r}") from None


def load_zoo(manifest: Path = ZOO_MANIFEST) -> dict[str, ModelSpec]:
    """Read the manifest; malformed entries are reported with their name and field."""
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the zoo manifest {manifest}: {exc}") from exc
    zoo: dict[str, ModelSpec] = {}
    for name, entry in data.items():
        try:
            zoo[name] = ModelSpec(
                name=name,
                source=str(entry["source"]),
                builder=str(entry["builder"]),
                input_shape=tuple(int(d) for d in entry["input_shape"]),
                classes=int(entry["classes"]) if "classes" in entry else None,
                kwargs=dict(entry.get("kwargs", {})),
                notes=str(entry.get("notes", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{manifest}: model [{name}]: bad or missing field {exc}") from exc
    return zoo


def parse_shape(text: str) -> tuple[int, ...]:
    """``1x3x224x224`` or ``1,3,224,224`` -> a tuple of positive ints."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"input shape {text!r} is not like 1x3x224x224") from None
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(f"input shape {text!r} must have positive dimensions")
    return shape


def resolve_models(
    selection: str,
    *,
    input_shape: Sequence[int] | None = None,
    manifest: Path = ZOO_MANIFEST,
    keep_weights: bool = False,
) -> list[ModelRef]:
    """Turn ``all``, ``a,b``, ``module:function`` or model file paths into model references;
    ``keep_weights`` exports every model with its builder's own weights (``ModelSpec``)."""
    zoo = load_zoo(manifest)
    items = [s.strip() for s in selection.split(",") if s.strip()]
    if not items:
        raise UsageError("--models is empty; give 'all', zoo names, module:function or a file")
    refs: list[ModelRef] = []
    for item in items:
        if item == "all":
            refs.extend(zoo.values())
            continue
        suffix = Path(item).suffix.lower()
        if suffix in ARTIFACT_SUFFIXES:
            path = Path(item)
            if not path.is_file():
                raise ModelFileError(f"model file {item} does not exist")
            refs.append(ArtifactRef(path=path.resolve(), format=ARTIFACT_SUFFIXES[suffix]))
            continue
        if item in zoo:
            refs.append(zoo[item])
            continue
        if ":" in item:
            _import_builder(item)  # fail now, with a clear message, rather than mid-run
            refs.append(
                ModelSpec(
                    name=item.split(":", 1)[1],
                    source="user",
                    builder=item,
                    input_shape=tuple(input_shape or DEFAULT_INPUT_SHAPE),
                )
            )
            continue
        close = [n for n in zoo if item.lower() in n or n in item.lower()]
        hint = f" Did you mean {', '.join(close[:3])}?" if close else ""
        raise UnknownModelError(
            f"unknown model {item!r}.{hint} Run `bench models` for the zoo, or pass "
            "module:function or a path to an .onnx/.tflite file"
        )
    if input_shape is not None:
        refs = [r.with_input_shape(input_shape) if isinstance(r, ModelSpec) else r for r in refs]
    if keep_weights:
        refs = [replace(r, keep_weights=True) if isinstance(r, ModelSpec) else r for r in refs]
    seen: set[str] = set()
    unique = []
    for r in refs:
        key = (
            r.builder
            if isinstance(r, ModelSpec) and r.source == "user"
            else (r.name if isinstance(r, ModelSpec) else str(r.path))
        )
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return _distinct_names(unique)


def _distinct_names(refs: list[ModelRef]) -> list[ModelRef]:
    """Rename models whose names collide (two ``net.onnx`` in different folders, two modules'
    ``build``): each row and job must say which model it measured."""
    counts: dict[str, int] = {}
    for r in refs:
        counts[r.name] = counts.get(r.name, 0) + 1
    out: list[ModelRef] = []
    for r in refs:
        if counts[r.name] < 2:
            out.append(r)
        elif isinstance(r, ArtifactRef):
            out.append(replace(r, label=_path_label(r, [x for x in refs if x.name == r.name])))
        else:
            out.append(replace(r, name=r.builder))
    return out


def _path_label(ref: ArtifactRef, clash: list[ModelRef]) -> str:
    """The fewest trailing folders of ``ref``'s path that tell it from the others of ``clash``."""
    paths = [x.path for x in clash if isinstance(x, ArtifactRef)]
    parts = ref.path.with_suffix("").parts
    for depth in range(2, len(parts) + 1):
        label = "/".join(parts[-depth:])
        others = ["/".join(p.with_suffix("").parts[-depth:]) for p in paths if p != ref.path]
        if label not in others:
            return label
    return str(ref.path)
