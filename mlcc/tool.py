"""`mlcc-tool`: everything that is not a compile (setup, inspection, learning).

Built with click; never imported by the compile path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from mlcc import __version__

DATA = Path(__file__).parent / "data"


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        ctx.invoke(version)
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show mlcc, its tools and its model, then exit.")
def main() -> None:
    """mlcc's companion command: setup, model and cache inspection, training, benchmarks."""


@main.command("toolchain-file")
def toolchain_file() -> None:
    """Print the path of the CMake toolchain file that selects mlcc and mlcc++."""
    click.echo(str(DATA / "mlcc-toolchain.cmake"))


def _tool_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"not runnable: {exc.strerror}"
    lines = [l for l in out.stdout.splitlines() if "version" in l.lower()]
    return lines[0].strip() if lines else out.stdout.strip().splitlines()[0]


def setup_report() -> dict:
    """mlcc, its tools and its model, as one dictionary."""
    from mlcc import model, toolchain
    from mlcc.errors import ToolchainMissing

    report: dict = {"mlcc": __version__, "python": sys.version.split()[0], "tools": {}}
    for name in toolchain.TOOLS:
        try:
            path = toolchain.find(name)
            report["tools"][name] = {"path": path, "version": _tool_version(path)}
        except ToolchainMissing as exc:
            report["tools"][name] = {"error": str(exc)}
    report["model"] = model.identity()
    return report


@main.command("version")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def version(as_json: bool = False) -> None:
    """Show the whole setup: mlcc, clang/opt/llc paths and versions, model."""
    report = setup_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"mlcc {report['mlcc']} (Python {report['python']})")
    for name, info in report["tools"].items():
        click.echo(f"  {name:8} {info.get('path', '-')}  {info.get('version', info.get('error'))}")
    click.echo(f"  model    {report['model']}")
