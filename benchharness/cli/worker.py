"""``bench worker``: serve this host's devices to a farm's Dask scheduler."""

from __future__ import annotations

from typing import Any

import click

from benchharness.cli import common
from benchharness.cli.farm import security_from, security_options
from benchharness.errors import UsageError


@click.command("worker")
@common.scheduler_option(
    "The farm's Dask scheduler: tls://HOST:8786 (plain tcp:// only on loopback or with "
    "--insecure).",
    required=True,
)
@common.devices_option(
    "Profile name or path to a .toml of a device on this host; repeat for each.", required=True
)
@security_options
@click.option(
    "--listen",
    "--host",
    "listen",
    default=None,
    metavar="ADDRESS",
    help="The one interface to listen on (default: loopback for a scheduler on loopback, else "
    "the interface this host reaches the scheduler through; never every interface).",
)
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
def worker_cmd(**kw: Any) -> None:
    """Check DEVICEs, then serve them to the farm until Ctrl-C (one job at a time each)."""
    from benchharness.farm.serve import WorkerOptions, serve
    from benchharness.profiles.device_profile import load_profile

    security = security_from(kw)
    profiles = [load_profile(d) for d in kw["devices"]]
    if kw["contact_host"] and kw["port"] is None:
        raise UsageError("--contact-host needs --port: the scheduler must know each device's port")
    options = WorkerOptions(
        host=kw["listen"], port=kw["port"], name=kw["name"], contact_host=kw["contact_host"]
    )
    serve(kw["scheduler"], profiles, options, click.echo, check=not kw["no_check"],
          security=security)  # fmt: skip
