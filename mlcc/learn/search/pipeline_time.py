"""How long pipelines take: `opt` and code generation of each pipeline on the
largest validation units of the corpus, one measurement at a time, the median
of `--repeat` runs. Sizes come out too, so a pipeline's bytes and its time can
be read side by side (docs/MODEL.md, "The tuned default")."""

from __future__ import annotations

import statistics
import tempfile
import time

import click

from mlcc.learn.search import search
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.measure import Unit, measure, prepare


@click.command()
@click.argument("pipelines", nargs=-1, required=True)
@click.option("--units", "count", default=8, show_default=True, help="The largest validation units.")
@click.option("--repeat", default=3, show_default=True)
def main(pipelines: tuple[str, ...], count: int, repeat: int) -> None:
    """Time PIPELINES (opt + code generation) on the largest validation units."""
    layout = Layout.from_environment()
    bitcode_of = search.corpus_bitcode(layout)
    units = [u for u in search.units_of(search.load_manifest(), "validation") if bitcode_of(u).exists()]
    units = sorted(units, key=lambda u: (-u["bitcode_bytes"], u["id"]))[:count]
    if not units:
        raise click.ClickException("no validation unit in the corpus: run `make corpus`")
    totals = dict.fromkeys(pipelines, 0.0)
    for u in units:
        unit = Unit.load(search.unit_dir(layout, u["project"]), u["id"])
        cells = []
        with tempfile.TemporaryDirectory(prefix="mlcc-time-") as tmp:
            prep = prepare(unit, tmp)
            for p in pipelines:
                runs = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    size = measure(prep, p, timeout=600)
                    runs.append(time.perf_counter() - start)
                totals[p] += statistics.median(runs)
                cells.append(f"{size} B {statistics.median(runs):.2f} s")
        click.echo(f"{u['project']}/{u['source']} ({u['bitcode_bytes']:,} B of bitcode): " + " | ".join(cells))
    for p, seconds in totals.items():
        click.echo(f"{seconds:7.2f} s  {p}")
