"""``bench worker``: serve this host's devices to a farm's Dask scheduler."""

from __future__ import annotations

import click

from benchharness.cli import common
from benchharness.errors import UsageError


@click.command("worker")
@common.scheduler_option(
    "The farm's Dask scheduler (`dask scheduler` on some host).", required=True
)
@common.devices_option(
    "Profile name or path to a .toml of a device on this host; repeat for each.", required=True
)
@click.option("--host", default=None, help="Interface to listen on (default: Dask's choice).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="First port: device i listens on PORT+i (default: any free ones).",
)
@click.option("--name", default=None, help="Worker name shown by the scheduler.")
@click.option(
    "--contact-host",
    default=None,
    help="Name or address the scheduler should use for this host (NAT, containers); needs --port.",
)
@click.option("--no-check", is_flag=True, help="Do not reach every device before joining.")
def worker_cmd(
    scheduler: str,
    devices: tuple[str, ...],
    host: str | None,
    port: int | None,
    name: str | None,
    contact_host: str | None,
    no_check: bool,
) -> None:
    """Check DEVICEs, then serve them to the farm until Ctrl-C (one job at a time each)."""
    from benchharness.farm.serve import WorkerOptions, serve
    from benchharness.profiles.schema import load_profile

    profiles = [load_profile(d) for d in devices]
    if contact_host and port is None:
        raise UsageError("--contact-host needs --port: the scheduler must know each device's port")
    options = WorkerOptions(host=host, port=port, name=name, contact_host=contact_host)
    serve(scheduler, profiles, options, click.echo, check=not no_check)
