"""The console entry of the learning side's command lines: errors become one line and
an exit code, here only (the steps raise)."""

from __future__ import annotations

import sys

import click

from mlcc.errors import MlccError


def run(group: click.Group, prog: str) -> int:
    """Run the command line `group`; an MlccError is `PROG: error: MESSAGE` and its code."""
    try:
        group(prog_name=prog, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except MlccError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
