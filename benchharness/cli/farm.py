"""``bench farm``: what a device farm on a network needs (its certificates), and the options
every farm command shares to reach the scheduler safely (``--tls-*``, ``--insecure``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from benchharness.farm.security import DEFAULT_DAYS

if TYPE_CHECKING:
    from benchharness.farm.certificates import Member
    from benchharness.farm.security import FarmSecurity

F = Callable[..., Any]

#: The farm config file, as the help texts name it.
CONFIG_HINT = "$BENCH_FARM_CONFIG or ~/.config/benchharness/farm.toml"


def security_options(func: F) -> F:
    """--tls-ca, --tls-cert, --tls-key and --insecure: how a farm command reaches the scheduler.
    Unset, they are read from the farm config file."""
    path = click.Path(dir_okay=False, path_type=str)
    options = [
        click.option("--tls-ca", metavar="CA.pem", type=path, default=None,
                     help=f"The farm's CA certificate (default: tls_ca in {CONFIG_HINT})."),
        click.option("--tls-cert", metavar="CERT.pem", type=path, default=None,
                     help="This machine's certificate, signed by the farm's CA "
                     "(`bench farm certs`)."),
        click.option("--tls-key", metavar="KEY", type=path, default=None,
                     help="The key of --tls-cert."),
        click.option("--insecure", is_flag=True, default=False,
                     help="Allow plain tcp:// to a scheduler off this host: anyone who can "
                     "reach it can run code on every worker and here. Only on a network you "
                     "trust entirely."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def security_from(kw: dict[str, Any]) -> FarmSecurity:
    """The settings the options of ``security_options`` give, over the farm config file's."""
    from benchharness.farm.security import settings

    return settings(kw.get("tls_ca"), kw.get("tls_cert"), kw.get("tls_key"),
                    bool(kw.get("insecure")))  # fmt: skip


@click.group("farm")
def farm_group() -> None:
    """A device farm across machines: its certificates (see `bench worker`)."""


@farm_group.command("certs")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--worker",
    "workers",
    multiple=True,
    metavar="NAME",
    help="A worker certificate NAME.pem (repeat; default: worker.pem).",
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    metavar="NAME",
    help="A client certificate NAME.pem for `bench run` and `bench devices` "
    "(repeat; default: client.pem).",
)
@click.option("--days", type=click.IntRange(min=1), default=DEFAULT_DAYS, show_default=True,
              help="Days the certificates are valid (the CA: five times as long).")  # fmt: skip
def certs_cmd(directory: Path, workers: tuple[str, ...], clients: tuple[str, ...],
              days: int) -> None:  # fmt: skip
    """Make the farm's CA and the certificates of its scheduler, workers and clients in DIRECTORY.

    A DIRECTORY that has a CA already gets only the --worker and --client certificates named,
    signed by that CA. Keep DIRECTORY (its ca.key signs new members) off the workers.
    """
    from benchharness.errors import UsageError
    from benchharness.farm.certificates import CA_CERT, make_certificates, members

    has_ca = (directory / CA_CERT).exists()
    wanted = members(workers, clients)
    if has_ca:
        if not workers and not clients:
            raise UsageError(f"{directory} has a CA already: name the new --worker or --client")
        wanted = [m for m in wanted if m.name != "scheduler" and (
            (m.role == "worker" and workers) or (m.role == "client" and clients))]  # fmt: skip
    written = make_certificates(directory, wanted, days)
    for path in written:
        click.echo(f"wrote {path}")
    _next_steps(directory, wanted, has_ca)


def _next_steps(directory: Path, made: list[Member], had_ca: bool) -> None:
    """How to use what was made: the scheduler's, a worker's and a client's command lines."""
    d = directory.resolve()
    names = {m.role: m.name for m in made}
    if not had_ca:
        click.echo(
            "\nOn the scheduler's host (ca.pem, scheduler.pem, scheduler.key):\n"
            f"  dask scheduler --host ADDRESS --port 8786 --no-dashboard --tls-ca-file {d}/ca.pem"
            f" --tls-cert {d}/scheduler.pem --tls-key {d}/scheduler.key"
        )
    if "worker" in names:
        w = names["worker"]
        click.echo(
            f"\nOn each worker host (ca.pem, {w}.pem, {w}.key):\n"
            f"  bench worker --scheduler tls://ADDRESS:8786 --tls-ca {d}/ca.pem "
            f"--tls-cert {d}/{w}.pem --tls-key {d}/{w}.key --device DEVICE"
        )
    if "client" in names:
        c = names["client"]
        click.echo(
            f"\nWhere `bench run --scheduler` runs (ca.pem, {c}.pem, {c}.key), in "
            "~/.config/benchharness/farm.toml:\n"
            f'  tls_ca = "{d}/ca.pem"\n  tls_cert = "{d}/{c}.pem"\n  tls_key = "{d}/{c}.key"'
        )
    click.echo(
        f"\nKeep {d}/ca.key off the workers: whoever holds it can let any machine into the farm."
    )
