"""The coordinator's view of the farm: a Dask client, the workers and the devices they hold.

Dask's own types stop here: an unreachable scheduler, a lost one, a worker that does not answer
become ``FarmError``/``SchedulerLostError`` with what to do about it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from distributed import Client

from benchharness import __version__
from benchharness.errors import FarmError, SchedulerLostError
from benchharness.farm.messages import DeviceStatus, WorkerInfo, names_of, scheduler_address
from benchharness.farm.worker_plugin import describe_worker
from benchharness.ondevice.protocol import PROTOCOL_VERSION
from benchharness.profiles.schema import DeviceProfile

#: Seconds to reach the scheduler before saying it cannot be reached.
CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Provider:
    """A live device that answers to a name: where it is and what it is."""

    device: DeviceStatus
    worker: WorkerInfo

    @property
    def where(self) -> str:
        return f"{self.device.name} on {self.worker.host} ({self.worker.address})"


class Farm:
    """A connection to one scheduler and what its ``bench worker``s hold."""

    def __init__(self, address: str, client: Client) -> None:
        self.address = address
        self.client = client
        self.workers: dict[str, WorkerInfo] = {}

    @classmethod
    def connect(cls, scheduler: str) -> Farm:
        address = scheduler_address(scheduler)
        # the client's own reconnect chatter would bury the one error we print
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise FarmError(
                f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
                "`dask scheduler` on that host and open its port (8786) to this machine"
            ) from None
        farm = cls(address, client)
        farm.refresh()
        return farm

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a client whose scheduler is gone
            self.client.close(timeout=5)

    # --- what is there ---------------------------------------------------------------------------

    def live_addresses(self) -> dict[str, dict[str, float]]:
        """Worker address -> its resources, as the scheduler sees them now."""
        if self.client.status != "running":
            raise self.lost("the client is no longer connected")
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except (OSError, TimeoutError) as exc:
            raise self.lost(str(exc)) from None
        return {a: dict(w.get("resources") or {}) for a, w in info.get("workers", {}).items()}

    def refresh(self, *, strict: bool = True) -> dict[str, WorkerInfo]:
        """Ask every worker what it holds (plain Dask workers are left out). A worker of
        another benchharness version is an error when ``strict`` (at the start of a run), and
        is left out mid-run, so one stray worker joining cannot stop a run."""
        try:
            answers = self.client.run(describe_worker, on_error="return")
        except (OSError, TimeoutError) as exc:
            raise self.lost(str(exc)) from None
        workers: dict[str, WorkerInfo] = {}
        for address, info in answers.items():
            if not isinstance(info, WorkerInfo):
                continue
            if info.harness_version != __version__ or info.protocol_version != PROTOCOL_VERSION:
                if not strict:
                    continue
                raise FarmError(
                    f"the worker on {info.host} ({address}) runs benchharness "
                    f"{info.harness_version} (protocol {info.protocol_version}); this coordinator "
                    f"runs {__version__} (protocol {PROTOCOL_VERSION}): install the same version"
                )
            workers[address] = info
        # a device once seen gone stays gone for this run, whatever its worker says now
        for address, old in self.workers.items():
            new = workers.get(address)
            for d in new.devices if new else []:
                d.gone = d.gone or next((o.gone for o in old.devices if o.name == d.name), None)
        self.workers = workers
        return workers

    def providers(
        self, name: str, live: dict[str, dict[str, float]] | None = None
    ) -> list[Provider]:
        """The serving devices that answer to ``name`` (on live workers, when ``live`` says)."""
        out = []
        for address, info in self.workers.items():
            if live is not None and live.get(address, {}).get(name, 0) <= 0:
                continue
            out += [Provider(d, info) for d in info.devices if _serves(d, name)]
        return out

    def mark_gone(self, address: str, device: str, why: str) -> None:
        """Note that a device no longer serves (its worker died or withdrew it)."""
        info = self.workers.get(address)
        for d in info.devices if info else []:
            if d.name == device and not d.gone:
                d.gone = why

    def known(self) -> list[str]:
        names = {n for w in self.workers.values() for d in w.devices for n in names_of(d.profile)}
        return sorted(names)

    def profiles(self, targets: Sequence[str]) -> list[DeviceProfile]:
        """The profile each ``--device`` stands for (renamed to it for a class), or FarmError
        naming what the farm holds when no worker serves one of them."""
        live = self.live_addresses()
        out = []
        for target in targets:
            found = self.providers(target, live)
            if not found:
                held = ", ".join(self.known()) or "no devices (is any `bench worker` connected?)"
                raise FarmError(
                    f"no worker of the farm at {self.address} serves device {target!r}; it holds "
                    f"{held}; start `bench worker --scheduler {self.address} --device {target}` "
                    "on the host that has it"
                )
            out.append(replace(found[0].device.profile, name=target))
        return out

    def lost(self, why: str) -> SchedulerLostError:
        return SchedulerLostError(f"lost the Dask scheduler at {self.address}: {why}")

    def listing(self) -> list[dict[str, Any]]:
        """One row per device of the farm, for ``bench devices --scheduler``."""
        rows = []
        for address, info in sorted(self.workers.items(), key=lambda kv: (kv[1].host, kv[0])):
            for d in info.devices:
                state = f"gone: {d.gone}" if d.gone else (f"busy: {d.busy}" if d.busy else "idle")
                rows.append(
                    {"host": info.host, "worker": address, "name": info.name, "device": d.name,
                     "class": d.profile.device_class, "transport": d.profile.transport,
                     "state": state, "description": d.profile.description,
                     "summary": d.summary}
                )  # fmt: skip
        return rows


def _serves(device: DeviceStatus, name: str) -> bool:
    return not device.gone and name in names_of(device.profile)


def serving(farm: Farm, names: Iterable[str]) -> set[str]:
    """Worker addresses whose devices answer to any of ``names``."""
    return {p.worker.address for n in names for p in farm.providers(n)}
