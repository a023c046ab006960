"""``bench devices``: list profiles, check a device, trust its SSH host key."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from benchharness.cli import common
from benchharness.cli.farm import security_from, security_options
from benchharness.errors import HarnessError, UsageError

if TYPE_CHECKING:
    from benchharness.farm.security import FarmSecurity


@click.group("devices", invoke_without_command=True)
@common.scheduler_option(
    "List the farm of this Dask scheduler instead: who holds what, busy or idle."
)
@security_options
@common.json_option
@click.pass_context
def devices_cmd(ctx: click.Context, /, scheduler: str | None, as_json: bool, **kw: Any) -> None:
    """List device profiles; `check D` reaches one, `trust D` trusts its SSH host key."""
    if ctx.invoked_subcommand is not None:
        return
    if scheduler:
        show_farm(scheduler, as_json, security_from(kw))
        return
    from benchharness.profiles.device_profile import available_profiles, load_profile

    rows = []
    for name, path in available_profiles().items():
        try:
            p = load_profile(str(path))
            rows.append({"name": name, "transport": p.transport, "description": p.description,
                         "path": str(path), "error": None})  # fmt: skip
        except HarnessError as exc:  # one broken profile must not hide the others
            rows.append({"name": name, "transport": "?", "description": "", "path": str(path),
                         "error": str(exc)})  # fmt: skip
    if as_json:
        common.print_json(rows)
        return
    table = Table(title="Device profiles (bench devices check NAME to reach one)")
    for col in ("name", "transport", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            common.text(r["name"]),
            common.text(r["transport"]),
            common.text(r["error"] or r["description"]),
        )
    common.print_table(table)


def show_farm(scheduler: str, as_json: bool, security: FarmSecurity | None = None) -> None:
    """The farm's devices; the workers that are not bench workers of this version, below."""
    from benchharness.farm.client import Farm

    farm = Farm.connect(scheduler, security)
    try:
        rows = farm.listing()
    finally:
        farm.close()
    if as_json:
        common.print_json(rows)
        return
    hosts = len({r["host"] for r in rows})
    table = Table(
        title=common.text(f"Farm of {farm.address}: {len(rows)} device(s) on {hosts} host(s)")
    )
    for col in ("host", "worker", "device", "class", "transport", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(common.text(r[c] or "") for c in ("host", "worker", "device", "class",
                                                  "transport", "state")))  # fmt: skip
    common.print_table(table)
    if not rows:
        common.console.print(
            "no devices: start `bench worker --scheduler ADDRESS --device D` on a host"
        )
    for address, why in sorted(farm.ignored.items()):
        common.console.print(common.text(f"ignored worker {address}: {why}"))


@devices_cmd.command("check")
@click.argument("device")
@common.json_option
def devices_check_cmd(device: str, as_json: bool) -> None:
    """Reach DEVICE; show OS, CPU, clocks, temperature, free space and runtimes."""
    from benchharness.dispatch.inspect import check_device
    from benchharness.profiles.device_profile import load_profile
    from benchharness.transport import open_transport

    profile = load_profile(device)
    with open_transport(profile) as transport:
        report = check_device(profile, transport)
    if as_json:
        common.print_json(report.to_dict())
    else:
        table = Table(title=common.text(f"{profile.name} ({profile.transport})"), show_header=False)
        table.add_column("what")
        table.add_column("value")
        ghz = [f"{f / 1e6:.2f}" if f else "?" for f in report.max_freq_khz]
        rows = [
            ("reachable", "yes" if report.reachable else f"no: {report.error}"),
            ("os", report.os), ("soc", report.soc), ("cpu", report.cpu_model),
            ("cores", report.cores), ("max GHz", " ".join(ghz) or None),
            ("governors", " ".join(sorted({g or "?" for g in report.governors})) or None),
            ("temperatures °C", ", ".join(f"{k} {v:.1f}" for k, v in
                                          report.temperatures_c.items()) or None),
            ("free in workdir", f"{report.free_bytes / 2**30:.2f} GiB ({report.workdir})"
             if report.free_bytes is not None else None),
        ]  # fmt: skip
        rows += [
            (f"runtime {name}", ("ok: " if rt.present else "MISSING: ") + rt.detail)
            for name, rt in report.runtimes.items()
        ]
        for what, value in rows:
            if value is not None:
                table.add_row(common.text(what), common.text(value))
        common.print_table(table)
    if not report.reachable:
        sys.exit(common.EXIT_FAILURE)  # not click's Exit: see compare_cmd


@devices_cmd.command("trust")
@click.argument("device")
def devices_trust_cmd(device: str) -> None:
    """Fetch DEVICE's SSH host key and add it to its known_hosts (check the fingerprint!)."""
    from benchharness.profiles.device_profile import load_profile
    from benchharness.transport.ssh import DEFAULT_KNOWN_HOSTS, trust_host

    profile = load_profile(device)
    if profile.transport != "ssh":
        raise UsageError(f"{profile.name} uses {profile.transport}, not ssh: nothing to trust")
    described = trust_host(profile)
    where = profile.known_hosts or os.path.expanduser(DEFAULT_KNOWN_HOSTS)
    click.echo(f"{profile.host}:{profile.port} {described} is trusted in {where}")
    click.echo("Compare this fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` "
               "on the device; if it differs, remove the line again.")  # fmt: skip
