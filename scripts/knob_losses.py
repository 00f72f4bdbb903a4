#!/usr/bin/env python3
"""Which knobs of a target's default cost the bytes of the validation files it makes
larger than clang's.

The files are those the 20-evaluation search per file found larger with the default
(`models/data/search-budget-all-<target>-Oz.json`: its second evaluation is the
default). Each is measured with clang's pipeline, the default, and the default less
each of its knobs, as the driver builds it (`measure.Measurer`). Prints, per knob, the
bytes its removal saves on those files and how many it makes no larger than clang's;
writes the sizes to `models/data/knob-losses-<target>-Oz.json` (docs/TARGETS.md).

    MLCC_LEARN_TARGET=thumbv7m python scripts/knob_losses.py --jobs 2
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace

import click

from mlcc import knobs, targets
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Measurer, Unit, prepare
from mlcc.learn.search import budget, search


def measure_unit(job: tuple[Unit, str], files: dict[str, str]) -> dict:
    """Worker: one unit's sizes with clang's pipeline, the default and each knob left out."""
    unit, default = job
    unit = replace(unit, bitcode=files[unit.bitcode])
    with tempfile.TemporaryDirectory(prefix="mlcc-knob-losses-") as tmp:
        measurer = Measurer(prepare(unit, tmp), tmp)
        row = {"unit": unit.id, "project": unit.project, "clang": measurer.size(search.CLANG_PIPELINE),
               "default": measurer.size(default)}
        row["without"] = {k: measurer.size(knobs.without(default, k)) for k in knobs.knobs_of(default)}
    return row


@click.command()
@click.option("--jobs", default=2, show_default=True)
@engine_option
def main(jobs: int, backend: str) -> None:
    """Leave each knob out of the target's default on the files it makes larger."""
    default = targets.named(search.TARGET).default(search.OPT_LEVEL)
    searched = json.loads(budget.RESULTS_ALL.read_text())
    larger = {r["unit"] for r in searched["rows"]
              if r["clang"] and len(r["sizes"]) > 1 and r["sizes"][1] and r["sizes"][1] > r["clang"]}
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    todo = [(Unit.load(bitcode_of(u).parent, u["id"]), default)
            for u in search.units_of(search.load_manifest(), "validation")
            if u["id"] in larger and bitcode_of(u).exists()]
    rows = list(Engine(backend, jobs).map(measure_unit, todo, title="knob losses",
                                          inputs=lambda job: [job[0].bitcode],
                                          count=lambda row: 2 + len(row["without"])))
    measured = [r for r in rows if r["clang"] and r["default"]]
    click.echo(f"{search.TARGET}: {len(measured)} validation files larger than clang's with the default, "
               f"{sum(r['default'] - r['clang'] for r in measured)} bytes lost")
    for knob in knobs.knobs_of(default):
        done = [r for r in measured if r["without"][knob]]
        saved = sum(r["default"] - r["without"][knob] for r in done)
        fixed = sum(r["without"][knob] <= r["clang"] for r in done)
        click.echo(f"  without {knob:22} saves {saved:6} bytes, {fixed:3} files no longer larger")
    out = search.DATA / f"knob-losses-{search.TAG}.json"
    out.write_text(json.dumps({"target": search.TARGET, "default": default, "rows": rows}, indent=1) + "\n")
    click.echo(f"-> {out}")


if __name__ == "__main__":
    main()
