"""`python -m mlcc.learn.corpus STEP`: collect, index and derive the training corpus.

    python -m mlcc.learn.corpus collect [--only NAME ...] [--jobs 2] [--force]
    python -m mlcc.learn.corpus index
    python -m mlcc.learn.corpus derive --level s          # the -Os corpus, from the -Oz one
    python -m mlcc.learn.corpus derive --target thumbv7m  # a target's corpus (mlcc/data/targets.toml)

`collect` builds the projects of `mlcc/learn/data/corpus-projects.toml` with mlcc in
collect mode (resumable), `index` writes `models/corpus-manifest.json`.
Data goes under `$MLCC_DATA`, else `~/.cache/mlcc`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from mlcc.learn import entry
from mlcc.learn.corpus import derive
from mlcc.learn.corpus.collect import TIME_BOX_SECONDS, collect
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE, build_manifest, summary_table, write_manifest
from mlcc.learn.corpus.projects import CorpusError, load_projects, select
from mlcc.learn.corpus.sources import Interrupted, stop_everything


@click.group()
def main() -> None:
    """Collect and index mlcc's training corpus, and derive its -Os and other targets' units."""


def _console() -> Console:
    """Rich output; wide lines when written to a log file rather than a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@main.command("collect")
@click.option("--only", multiple=True, metavar="NAME", help="collect only these projects")
@click.option("--jobs", default=2, show_default=True, help="parallel make jobs per project")
@click.option("--parallel", default=1, show_default=True, help="projects built at the same time")
@click.option("--force", is_flag=True, help="redo projects that are already collected")
@click.option("--time-box", default=TIME_BOX_SECONDS, show_default=True,
              help="seconds one project may take (what compiled by then is kept)")
def collect_command(only, jobs, parallel, force, time_box) -> None:
    """Build the listed projects with mlcc in collect mode."""
    console = _console()
    layout = Layout.from_environment()
    projects = select(load_projects(), only)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcomes = collect(projects, layout, jobs=jobs, parallel=parallel, force=force,
                           time_box=time_box, console=console)
    except KeyboardInterrupt:
        stop_everything()
        raise Interrupted("collection interrupted; rerun to go on (done projects are kept)") from None
    failed = [o for o in outcomes if o.status == "failed"]
    console.print(f"collected {sum(o.units for o in outcomes)} units from "
                  f"{len(outcomes) - len(failed)} project(s) in {time.monotonic() - started:.0f} s; "
                  f"data in {layout.root}")
    for outcome in failed:
        console.print(f"[red]failed[/] {outcome.project}: {outcome.reason} "
                      f"(log: {layout.logs / (outcome.project + '.log')})")


@main.command("index")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path), default=MANIFEST_FILE,
              show_default=True, help="where to write the manifest")
def index_command(manifest_path: Path) -> None:
    """Write the corpus manifest and print per-project counts."""
    console = _console()
    layout = Layout.from_environment()
    previous = None
    if manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            previous = None
    manifest = build_manifest(load_projects(), layout, previous)
    if not manifest["units"]:
        raise CorpusError(f"no collected units under {layout.root / 'corpus'}: "
                          "run `python -m mlcc.learn.corpus collect` first")
    digest = write_manifest(manifest, manifest_path)
    console.print(summary_table(manifest))
    console.print(f"manifest: {manifest_path}  sha256 (training-data hash): {digest}")


main.add_command(derive.main, "derive")


if __name__ == "__main__":
    sys.exit(entry.run(main, "mlcc.learn.corpus"))
