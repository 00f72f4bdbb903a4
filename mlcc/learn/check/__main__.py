"""`python -m mlcc.learn.check STEP`: check mlcc's builds for miscompiles.

    python -m mlcc.learn.check difftest -n 1000 --jobs 2 --out build/difftest
    python -m mlcc.learn.check triage [--below 0.6]
"""

from __future__ import annotations

import click

from mlcc.learn.check import difftest, triage


@click.group()
def main() -> None:
    """Differential testing with Csmith, and triage of suspiciously small builds."""


main.add_command(difftest.run, "difftest")
main.add_command(triage.main, "triage")

if __name__ == "__main__":
    main()
