"""``python -m benchharness.cli``: the same as ``bench``."""

from benchharness.cli.app import main

main()
