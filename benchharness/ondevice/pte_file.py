"""What an ExecuTorch ``.pte`` program holds, read with the standard library alone.

A ``.pte`` file is a FlatBuffer of ExecuTorch's ``program.fbs`` schema. Its execution plan lists
the backend delegates the program calls (``delegates``: each one a partition that a backend such
as XNNPACK compiled) and the kernel operators it calls itself (``operators``: what stayed on
ExecuTorch's own CPU kernels, the portable or optimized library). Both the device runner (for the
row's ``provider``) and the host (to say which operators did not lower) read them here; neither
needs ExecuTorch or the ``flatbuffers`` package for it.

Shipped to devices beside the runner: standard library only, nothing from ``benchharness``,
Python 3.8 compatible at runtime.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field

#: Bytes 4-8 of a FlatBuffer are its file identifier; ExecuTorch programs say ``ET`` and a
#: two-digit schema version (``ET12`` for ExecuTorch 1.x).
PTE_IDENTIFIER_PREFIX = b"ET"
#: Field slots of the tables read here, in ``program.fbs`` declaration order.
PROGRAM_EXECUTION_PLAN = 1
PLAN_NAME = 0
PLAN_OPERATORS = 6
PLAN_DELEGATES = 7
OPERATOR_NAME = 0
OPERATOR_OVERLOAD = 1
DELEGATE_ID = 0
#: How the rows name the backends ExecuTorch knows by their registration id.
BACKEND_NAMES = {"XnnpackBackend": "XNNPACK"}
#: The provider of operators no delegate took: ExecuTorch's own kernels.
PORTABLE = "portable"
#: Operators that move no data and compute nothing (``et_view`` re-labels a buffer): a program
#: that calls only these outside its delegates is still fully lowered.
BOOKKEEPING_OPERATORS = frozenset({"executorch_prim::et_view", "aten::sym_size", "aten::sym_numel"})


#: Work the reader may do per byte of the file: a vector entry costs its 4 bytes, a string its
#: 4-byte length and its text. A program read end to end costs at most its own size once (the
#: delegates' data, most of a file, is never read); twice leaves room for a builder that writes a
#: repeated string once, and stops a few KB whose entries all point at one table from claiming
#: millions of names (memory and time stay a small multiple of the file's size).
WORK_PER_BYTE = 2


class PteFormatError(ValueError):
    """The bytes are not an ExecuTorch program this reader understands."""


@dataclass
class PteSummary:
    """The methods of a program, its delegates' backend ids and the operators left outside them."""

    methods: list[str] = field(default_factory=list)
    delegates: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)

    @property
    def portable_operators(self) -> list[str]:
        """Kernel operators that compute (not bookkeeping), in program order, without repeats."""
        return [op for op in dict.fromkeys(self.operators) if op not in BOOKKEEPING_OPERATORS]

    @property
    def backends(self) -> list[str]:
        """The delegates' backends as the rows name them, in first-seen order."""
        return list(dict.fromkeys(BACKEND_NAMES.get(d, d) for d in self.delegates))

    @property
    def provider(self) -> str:
        """``XNNPACK``, ``XNNPACK+portable`` or ``portable``: who runs the program's work."""
        parts = self.backends
        if self.portable_operators or not parts:
            parts = [*parts, PORTABLE]
        return "+".join(parts)


class _Buffer:
    """Bounds-checked reads of FlatBuffer tables, vectors and strings, within a work budget
    proportional to the file's size (``WORK_PER_BYTE``)."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self.data = data
        self.budget = WORK_PER_BYTE * len(data)

    def _spend(self, cost: int) -> None:
        """Charge ``cost`` to the budget before the work is done; PteFormatError once spent."""
        self.budget -= cost
        if self.budget < 0:
            raise PteFormatError(
                f"the file's entries point at the same tables over and over: reading them "
                f"takes more than {WORK_PER_BYTE}x its {len(self.data)} bytes, which no "
                "ExecuTorch program does"
            )

    def _unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise PteFormatError(f"offset {pos} is outside the {len(self.data)}-byte file")
        value: int = struct.unpack_from(fmt, self.data, pos)[0]
        return value

    def u32(self, pos: int) -> int:
        return self._unpack("<I", pos)

    def field_pos(self, table: int, slot: int) -> int | None:
        """Where field ``slot`` of the table at ``table`` is stored, or None if absent."""
        vtable = table - self._unpack("<i", table)
        vtable_size = self._unpack("<H", vtable)
        entry = 4 + 2 * slot
        if entry + 2 > vtable_size:
            return None
        offset = self._unpack("<H", vtable + entry)
        return table + offset if offset else None

    def ref(self, table: int, slot: int) -> int | None:
        """The table, vector or string field ``slot`` points at, or None if absent."""
        pos = self.field_pos(table, slot)
        return None if pos is None else pos + self.u32(pos)

    def vector(self, pos: int | None) -> list[int]:
        """Positions of the elements of a vector of tables or strings."""
        if pos is None:
            return []
        n = self.u32(pos)
        if n > (len(self.data) - pos) // 4:
            raise PteFormatError(f"a vector at {pos} claims {n} elements, more than fit")
        self._spend(4 * n)
        return [pos + 4 + 4 * i + self.u32(pos + 4 + 4 * i) for i in range(n)]

    def string(self, pos: int | None) -> str:
        if pos is None:
            return ""
        n = self.u32(pos)
        if pos + 4 + n > len(self.data):
            raise PteFormatError(f"a string at {pos} runs past the end of the file")
        self._spend(4 + n)
        return self.data[pos + 4 : pos + 4 + n].decode("utf-8", "replace")


def is_pte(head: bytes) -> bool:
    """Whether the first 8 bytes of a file carry an ExecuTorch program's identifier."""
    return len(head) >= 8 and head[4:6] == PTE_IDENTIFIER_PREFIX


def summarize(data: bytes | mmap.mmap) -> PteSummary:
    """Methods, delegate backend ids and kernel operators of a program (PteFormatError if the
    bytes are not one, or claim more than their size can hold)."""
    if not is_pte(data[:8]):
        raise PteFormatError("no ExecuTorch program identifier (ET..) at bytes 4-8")
    buf = _Buffer(data)
    root = buf.u32(0)
    summary = PteSummary()
    for plan in buf.vector(buf.ref(root, PROGRAM_EXECUTION_PLAN)):
        summary.methods.append(buf.string(buf.ref(plan, PLAN_NAME)))
        for op in buf.vector(buf.ref(plan, PLAN_OPERATORS)):
            name = buf.string(buf.ref(op, OPERATOR_NAME))
            overload = buf.string(buf.ref(op, OPERATOR_OVERLOAD))
            summary.operators.append(f"{name}.{overload}" if overload else name)
        for delegate in buf.vector(buf.ref(plan, PLAN_DELEGATES)):
            summary.delegates.append(buf.string(buf.ref(delegate, DELEGATE_ID)))
    return summary


def summarize_file(path: str) -> PteSummary:
    """``summarize`` of a file, mapped rather than read: the delegates' data (most of the file)
    is never touched."""
    with open(path, "rb") as fh:
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise PteFormatError(f"{path} is empty") from exc
        with mapped:
            return summarize(mapped)
