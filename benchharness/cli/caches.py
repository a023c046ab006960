"""``bench cache``: the per-user export cache, and pruning the entries no run uses any more."""

from __future__ import annotations

from dataclasses import asdict

import click

from benchharness.cli import common

#: Days an entry may go unused before ``bench cache prune`` removes it, unless told otherwise:
#: a month keeps what a project switches between, and drops what three rounds of changes left.
DEFAULT_OLDER_THAN_DAYS = 30.0


@click.group("cache")
def cache_group() -> None:
    """The export cache (``~/.cache/benchharness/exports``, or ``$BENCH_CACHE_DIR``)."""


@cache_group.command("prune")
@click.option(
    "--older-than", "days", type=click.FloatRange(min=0), default=DEFAULT_OLDER_THAN_DAYS,
    show_default=True, metavar="DAYS",
    help="Remove the exports unused (neither written nor hit) for longer than this many days.",
)  # fmt: skip
@common.json_option
def prune_cmd(days: float, as_json: bool) -> None:
    """Remove exports that no run has used for DAYS; a later run exports them again."""
    from benchharness.export.cache import cache_dir
    from benchharness.export.prune import prune

    root = cache_dir()
    result = prune(root, days)
    if as_json:
        common.print_json({"cache": str(root), "older_than_days": days, **asdict(result)})
        return
    common.console.print(
        f"{root}: removed {result.removed_entries} exports ({result.removed_files} files, "
        f"{result.removed_bytes / 2**20:.1f} MiB) unused for over {days:g} days; kept "
        f"{result.kept_entries} ({result.kept_bytes / 2**20:.1f} MiB)"
    )
