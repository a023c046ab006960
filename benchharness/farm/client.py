"""The coordinator's view of the farm: a Dask client, the workers and the devices they hold.

Dask's own types stop here: an unreachable scheduler, a lost one, a worker that does not answer
become ``FarmError``/``SchedulerLostError`` with what to do about it. The address is checked
against the farm's security settings before any connection (``farm/security.py``).

Only ``bench worker``s of this version count: the scheduler's list of workers says which carry
the marker (plain data, ``farm/descriptions.py``), only those are asked what they hold, and
their answers are read as plain data, checked field by field. A plain Dask worker, or a bench
worker of another version, is noted once and never asked again nor given work.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from distributed import Client

from benchharness.errors import FarmError, SchedulerLostError
from benchharness.farm.descriptions import (
    DescriptionError,
    Marker,
    parse_worker,
    read_marker,
    this_version,
)
from benchharness.farm.messages import DeviceStatus, WorkerInfo, names_of
from benchharness.farm.security import FarmEndpoint, FarmSecurity, endpoint, settings
from benchharness.farm.worker_plugin import describe_worker
from benchharness.profiles.device_profile import DeviceProfile

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
        #: workers that are not bench workers of this version: address -> what they are
        self.ignored: dict[str, str] = {}

    @classmethod
    def connect(cls, scheduler: str, security: FarmSecurity | None = None) -> Farm:
        """Reach the scheduler under ``security`` (the farm config file's when None) and read
        what its bench workers hold."""
        farm_at = endpoint(scheduler, security if security is not None else settings())
        # the client's own reconnect chatter would bury the one error we print
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            client = Client(
                farm_at.address,
                timeout=CONNECT_TIMEOUT_S,
                set_as_default=False,
                security=farm_at.dask_security(),
            )
        except (OSError, TimeoutError, TypeError, ValueError) as exc:
            raise FarmError(_connect_error(farm_at, exc)) from None
        farm = cls(farm_at.address, client)
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

    def markers(self) -> dict[str, Marker | None]:
        """Every worker the scheduler has, with the marker it carries (None: a plain Dask
        worker; read from the scheduler's list, nothing is asked of the worker)."""
        if self.client.status != "running":
            raise self.lost("the client is no longer connected")
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except (OSError, TimeoutError) as exc:
            raise self.lost(str(exc)) from None
        out: dict[str, Marker | None] = {}
        for address, w in info.get("workers", {}).items():
            try:
                out[address] = read_marker(w.get("metrics"))
            except DescriptionError:
                out[address] = None
        return out

    def unknown(self, live: Iterable[str]) -> set[str]:
        """Workers seen in ``live`` that were never looked at: neither described nor ignored."""
        return set(live) - set(self.workers) - set(self.ignored)

    def refresh(self, *, strict: bool = True) -> dict[str, WorkerInfo]:
        """Ask every bench worker of this version what it holds. A worker of another version
        is an error when ``strict`` (at the start of a run), and is left out mid-run, so one
        stray worker joining cannot stop a run; a plain Dask worker is left out, unasked."""
        ours = self._ours(self.markers(), strict)
        answers = self._describe(ours)
        workers: dict[str, WorkerInfo] = {}
        for address, answer in answers.items():
            try:
                workers[address] = parse_worker(answer, address)
            except DescriptionError as exc:
                if strict:
                    raise FarmError(f"the worker at {address} cannot be used: {exc}") from None
                self.ignored[address] = str(exc)
        # a device once seen gone stays gone for this run, whatever its worker says now
        for address, old in self.workers.items():
            new = workers.get(address)
            for d in new.devices if new else []:
                d.gone = d.gone or next((o.gone for o in old.devices if o.name == d.name), None)
        self.workers = workers
        return workers

    def _ours(self, markers: dict[str, Marker | None], strict: bool) -> list[str]:
        """The bench workers of this version among ``markers``; the others noted as ignored."""
        ours = []
        for address, mark in sorted(markers.items()):
            if mark is None:
                self.ignored[address] = "a plain Dask worker (not `bench worker`)"
            elif not mark.compatible:
                why = f"runs {mark.describe()}; this coordinator {this_version().describe()}"
                if strict:
                    raise FarmError(
                        f"the worker at {address} {why}: install the same version there"
                    )
                self.ignored[address] = why
            else:
                ours.append(address)
        return ours

    def _describe(self, addresses: Sequence[str]) -> dict[str, object]:
        if not addresses:
            return {}
        try:
            answers: dict[str, object] = self.client.run(
                describe_worker, workers=list(addresses), on_error="return"
            )
        except (OSError, TimeoutError) as exc:
            raise self.lost(str(exc)) from None
        return answers

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


def _connect_error(farm: FarmEndpoint, exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if farm.secure and ("TLS" in text or "SSL" in text or "certificate" in text):
        return (
            f"the Dask scheduler at {farm.address} and this machine do not accept each other's "
            f"certificates ({text}): both must be of the farm's CA; this machine uses CA "
            f"{farm.security.ca} and certificate {farm.security.cert}"
        )
    plain = "" if farm.secure else "; a scheduler started with TLS drops plain tcp:// (tls://)"
    return (
        f"cannot reach the Dask scheduler at {farm.address} ({text}); start it with "
        f"`dask scheduler` on that host{' with TLS' if farm.secure else ''} and open its port "
        f"to this machine{plain}"
    )


def _serves(device: DeviceStatus, name: str) -> bool:
    return not device.gone and name in names_of(device.profile)


def serving(farm: Farm, names: Iterable[str]) -> set[str]:
    """Worker addresses whose devices answer to any of ``names``."""
    return {p.worker.address for n in names for p in farm.providers(n)}
