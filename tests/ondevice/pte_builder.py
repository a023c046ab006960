"""ExecuTorch programs built byte by byte: the few ``program.fbs`` tables ``pte_file`` reads.

A FlatBuffer as ``ondevice/pte_file.py`` reads it: a root offset, the file identifier, then
tables (an offset back to their vtable, then one 4-byte slot per field), vectors (a count, then
4-byte offsets) and strings (a length, bytes, a NUL). Every offset here points forward, as the
reader's unsigned offsets must. A node placed in two places is written once and pointed at twice,
as a builder shares a repeated string, and as a crafted file makes a few KB claim a huge program.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchharness.ondevice import pte_file

#: ExecuTorch 1.x's file identifier.
IDENTIFIER = b"ET12"


@dataclass(eq=False)
class Str:
    text: str


@dataclass(eq=False)
class Vec:
    items: list[Node]


@dataclass(eq=False)
class Table:
    fields: dict[int, Node] = field(default_factory=dict)


Node = Str | Vec | Table


class _Writer:
    """Writes nodes breadth first: a node is written after every slot that points at it was,
    so a node shared by the entries of a vector is written once, after them all."""

    def __init__(self) -> None:
        self.buf = bytearray(8)
        self.queue: deque[Node] = deque()
        self.slots: dict[int, list[int]] = {}  # id(node) -> the slots that point at it
        self.placed: dict[int, int] = {}  # id(node) -> where it was written

    def refer(self, slot: int, node: Node) -> None:
        if id(node) in self.placed:  # only reachable backwards now, which offsets cannot say
            raise ValueError("a node shared across levels of the program")
        if id(node) not in self.slots:
            self.slots[id(node)] = []
            self.queue.append(node)
        self.slots[id(node)].append(slot)

    def run(self) -> None:
        while self.queue:
            node = self.queue.popleft()
            pos = self._write(node)
            self.placed[id(node)] = pos
            for slot in self.slots[id(node)]:
                struct.pack_into("<I", self.buf, slot, pos - slot)

    def _align(self) -> None:
        self.buf += b"\0" * (-len(self.buf) % 4)

    def _write(self, node: Node) -> int:
        if isinstance(node, Table):
            return self._table(node)
        self._align()
        pos = len(self.buf)
        if isinstance(node, Str):
            data = node.text.encode()
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return pos
        self.buf += struct.pack("<I", len(node.items)) + b"\0" * (4 * len(node.items))
        for i, item in enumerate(node.items):
            self.refer(pos + 4 + 4 * i, item)
        return pos

    def _table(self, table: Table) -> int:
        slots = max(table.fields, default=-1) + 1
        vtable = len(self.buf)
        offsets = [4 + 4 * s if s in table.fields else 0 for s in range(slots)]
        self.buf += struct.pack(f"<HH{slots}H", 4 + 2 * slots, 4 + 4 * slots, *offsets)
        self._align()
        pos = len(self.buf)
        self.buf += struct.pack("<i", pos - vtable) + b"\0" * (4 * slots)
        for s, child in table.fields.items():
            self.refer(pos + 4 + 4 * s, child)
        return pos


def program(root: Table) -> bytes:
    writer = _Writer()
    writer.buf[4:8] = IDENTIFIER
    writer.refer(0, root)  # the root offset counts from byte 0, as every offset from its slot
    writer.run()
    return bytes(writer.buf)


def plan(
    name: str, operators: Sequence[tuple[str, str]] | Vec = (), delegates: Sequence[str] = ()
) -> Table:
    """An ``ExecutionPlan``: a method's name, its kernel operators and its delegates' ids."""
    ops = (
        operators
        if isinstance(operators, Vec)
        else Vec(
            [
                Table({pte_file.OPERATOR_NAME: Str(n), pte_file.OPERATOR_OVERLOAD: Str(o)})
                for n, o in operators
            ]
        )
    )
    return Table(
        {
            pte_file.PLAN_NAME: Str(name),
            pte_file.PLAN_OPERATORS: ops,
            pte_file.PLAN_DELEGATES: Vec(
                [Table({pte_file.DELEGATE_ID: Str(d)}) for d in delegates]
            ),
        }
    )


def program_of(*plans: Table) -> bytes:
    return program(Table({pte_file.PROGRAM_EXECUTION_PLAN: Vec(list(plans))}))


def shared_entries(entries: int, name_chars: int) -> bytes:
    """The crafted pattern: ``entries`` plans that are one plan, whose ``entries`` operators are
    one operator with a ``name_chars`` name; a few KB that claim entries**2 operator names."""
    op = Table({pte_file.OPERATOR_NAME: Str("o" * name_chars), pte_file.OPERATOR_OVERLOAD: Str("")})
    one_plan = plan("forward", Vec([op] * entries))
    return program_of(*([one_plan] * entries))
