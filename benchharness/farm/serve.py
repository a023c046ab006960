"""``bench worker``: check this host's devices, take their locks, and serve them to a scheduler.

The process runs one plain Dask worker per device (no nanny: a worker killed is a host gone,
never a silent restart that would repeat a process), each with one thread for the device and
one for artifact transfers; ``--port P`` gives device i port P + i. When the scheduler goes
away the workers abort their runners and reconnect, so a restarted scheduler gets its farm back;
Ctrl-C or SIGTERM ends them, aborting every runner and closing every device session.

The scheduler's address is checked before anything else (``farm/security.py``: TLS, or plain
tcp:// on loopback or with --insecure). Each Dask worker listens on one interface, never on all:
``--listen``, else the one this host reaches the scheduler through (loopback for a scheduler on
loopback); its HTTP server serves nothing (Dask's metrics page would be unauthenticated).
Every worker carries the marker (``farm/descriptions.py``) by which a coordinator tells a
``bench worker`` from a plain Dask worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchharness.dispatch.inspect import check_device
from benchharness.dispatch.locks import device_lock
from benchharness.errors import FarmError, UsageError
from benchharness.farm.descriptions import MARKER, marker
from benchharness.farm.messages import names_of
from benchharness.farm.security import (
    FarmEndpoint,
    FarmSecurity,
    check_handshake,
    endpoint,
    is_loopback,
)
from benchharness.farm.security import split_address as split_scheduler
from benchharness.farm.worker_plugin import FarmPlugin
from benchharness.profiles.device_profile import DeviceProfile

#: Seconds to reach the scheduler at start before giving up with a clear error.
CONNECT_TIMEOUT_S = 30.0
#: Seconds between attempts to reach a scheduler that went away.
RECONNECT_S = 2.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class WorkerOptions:
    """How the worker listens: which interface and port the scheduler and peers reach it on."""

    #: the interface to listen on (None: the one facing the scheduler)
    host: str | None = None
    port: int | None = None
    name: str | None = None
    #: the host name others should use when ``host`` is not reachable as such (NAT, containers)
    contact_host: str | None = None


def listen_host(farm: FarmEndpoint, options: WorkerOptions) -> str:
    """The one interface the workers listen on: ``--listen``, else loopback for a scheduler on
    loopback, else the address this host reaches the scheduler from (no packet is sent to find
    it: a UDP socket is only connected)."""
    if options.host:
        return options.host
    _, host, _ = split_scheduler(farm.address)
    if is_loopback(host):
        return "::1" if ":" in host else "127.0.0.1"
    from distributed.utils import get_ip

    try:
        return str(get_ip(host))
    except (OSError, ValueError) as exc:
        raise FarmError(
            f"cannot tell which interface of this host reaches {host} ({exc}); give --listen "
            "with this host's address on the farm's network"
        ) from None


def _no_http_routes() -> None:
    """Each Dask worker's HTTP server (its metrics page) serves nothing: it would answer anyone
    on the interface, without TLS."""
    import dask

    dask.config.set({"distributed.worker.http.routes": []})


def check_devices(profiles: Sequence[DeviceProfile], say: Say) -> dict[str, str]:
    """Reach every device as ``bench devices check`` does; a summary line per device.
    A device that cannot be reached stops the worker before it joins (FarmError)."""
    from benchharness.transport import open_transport

    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise UsageError(f"a device is named twice: {', '.join(names)}")
    summaries: dict[str, str] = {}
    for profile in profiles:
        with open_transport(profile) as transport:
            report = check_device(profile, transport)
        if not report.reachable:
            raise FarmError(
                f"device {profile.name} is not reachable: {report.error}; fix it (see "
                f"`bench devices check {profile.name}`) or leave it out of --device"
            )
        missing = [n for n, rt in report.runtimes.items() if not rt.present]
        summary = ", ".join(str(v) for v in (report.os, report.cpu_model) if v)
        summaries[profile.name] = summary
        say(f"{profile.name}: reachable ({summary or profile.transport})")
        for name in missing:
            say(f"{profile.name}: warning: runtime {name}: {report.runtimes[name].detail}")
    return summaries


def serve(
    scheduler: str,
    profiles: Sequence[DeviceProfile],
    options: WorkerOptions,
    say: Say,
    *,
    check: bool = True,
    security: FarmSecurity | None = None,
) -> None:
    """Hold the devices and serve them until interrupted: one Dask worker per device."""
    # the address first: a refused one costs no device check, and sends nothing anywhere
    farm = endpoint(scheduler, security or FarmSecurity())
    summaries = check_devices(profiles, say) if check else {}
    check_handshake(farm)
    plugins = [FarmPlugin([p], summaries) for p in profiles]
    options = WorkerOptions(
        host=listen_host(farm, options), port=options.port, name=options.name,
        contact_host=options.contact_host,
    )  # fmt: skip
    _no_http_routes()
    with contextlib.ExitStack() as locks:
        for p in profiles:
            locks.enter_context(device_lock(p))
        try:
            asyncio.run(_serve(farm, plugins, options, say))
        finally:
            for plugin in plugins:
                plugin.close_all()


async def _serve(
    farm: FarmEndpoint, plugins: Sequence[FarmPlugin], options: WorkerOptions, say: Say
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = [
        asyncio.ensure_future(_serve_device(farm, plugin, i, options, say, stop))
        for i, plugin in enumerate(plugins)
    ]
    try:
        await asyncio.gather(*serving)
    finally:
        stop.set()  # one device that cannot join ends them all
        await asyncio.gather(*serving, return_exceptions=True)


async def _serve_device(
    farm: FarmEndpoint,
    plugin: FarmPlugin,
    index: int,
    options: WorkerOptions,
    say: Say,
    stop: asyncio.Event,
) -> None:
    """One device's Dask worker, joined again whenever its scheduler comes back.

    A worker per device, not one for all: a Dask worker starts its resource-bound tasks in
    priority order and waits while the first cannot get its resource, so a process queued
    for a busy device would hold up every other device of a shared worker.
    """
    from distributed import Worker

    names = ", ".join("/".join(names_of(s.profile)) for s in plugin.slots.values())
    port = options.port + index if options.port else None
    scheme = farm.address.split("://", 1)[0]
    contact = f"{scheme}://{options.contact_host}:{port}" if options.contact_host else None
    scheduler = farm.address
    first = True
    while not stop.is_set():
        worker = Worker(
            scheduler,
            nthreads=2,  # the device's processes, one at a time, and artifact transfers
            resources=plugin.resources(),
            plugins=(plugin,),
            name=f"{options.name}/{names}" if options.name else None,
            host=options.host,
            port=port,
            contact_address=contact,
            security=farm.dask_security(),
            metrics={MARKER: lambda _worker: marker()},
            death_timeout=CONNECT_TIMEOUT_S,
            memory_limit=0,  # it holds no data to spill: never pause a device's worker
            nanny=None,
        )
        try:
            await worker
        except (TimeoutError, OSError, RuntimeError, ValueError, TypeError) as exc:
            if first:
                raise FarmError(_join_error(farm, exc)) from None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_S)
            continue
        say(f"serving {names} at {worker.address} for the scheduler at {scheduler}")
        first = False
        finished = asyncio.ensure_future(worker.finished())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({finished, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            finished.cancel()
            await worker.close(reason="bench-worker-stopped")
            break
        stopped.cancel()
        say(f"{names}: lost the scheduler at {scheduler}; reconnecting")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONNECT_S)


def _join_error(farm: FarmEndpoint, exc: BaseException) -> str:
    """Why the first join failed, and what to check."""
    text = str(exc) or type(exc).__name__
    if farm.secure and ("TLS" in text or "SSL" in text or "certificate" in text):
        return (
            f"the scheduler at {farm.address} and this worker do not accept each other's "
            f"certificates ({text}): both must be of the farm's CA; this worker uses CA "
            f"{farm.security.ca} and certificate {farm.security.cert}"
        )
    return (
        f"cannot reach the scheduler at {farm.address} within {CONNECT_TIMEOUT_S:.0f} s "
        f"({text}); is `dask scheduler` running there, with "
        f"{'TLS' if farm.secure else 'plain tcp://'}, and its port open to this host?"
    )
