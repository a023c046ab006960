"""The ``bench`` command line: one module per command group, thin over library functions."""

from __future__ import annotations

from benchharness.cli.app import cli, main

__all__ = ["cli", "main"]
