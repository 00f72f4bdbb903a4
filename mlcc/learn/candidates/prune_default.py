"""Prune a target's tuned default on every training unit: each knob must earn its place.

`tune-default` takes a knob when it adds `--min-gain` points of mean project gain
on a sample of training units (200 for the cross targets). On the whole training
set some of those knobs add nothing, and a knob that adds nothing on training
still changes the code of every file, which is where validation's files larger
than clang's come from (thumbv7m's `no-block-placement`: 0.00 points on the 396
training units, 9 of the 54 larger validation files). This step holds the default
to the rule it was built by, on all the training units: each round measures the
default without each of its knobs, and drops the knob whose removal costs least
when that costs less than `--min-gain` points; it stops when every knob left
earns them. Then it chooses the trial sets again, on every training unit, from the
pruned default, the knob removals it measured and the previous trial sets'
pipelines, and checks the result on the validation projects, as `tune-default`
does (the validation units only score it).

    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates prune-default --jobs 2

Resumable (measurements already in the table are not redone). Rewrites
`models/data/default-<target>-O<level>.json`: the pruned `default`, its
`trial_sets` and `checked`, and the rounds under `pruned`; `ship-targets` then
puts it in mlcc/data/targets.toml.
"""

from __future__ import annotations

import json
import os

import click

from mlcc import knobs, passes
from mlcc.learn.candidates.tune_default import DEFAULT_FILE, best_of, check, gains, measure, tuned_default
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.search import search


def without_each(pipeline: str) -> list[str]:
    """`pipeline` with one of its knobs removed, for each knob (those opt can run)."""
    have = knobs.knobs_of(pipeline)
    return [p for p in (knobs.name(set(have) - {k}) for k in have) if passes.eligible(p)]


def weakest(best: str, scored: dict[str, float]) -> str | None:
    """The removal that costs least, or None when `best` has no knob to remove."""
    removals = [p for p in without_each(best) if p in scored]
    return best_of({p: scored[p] for p in removals}) if removals else None


@click.command()
@click.option("--min-gain", default=0.05, show_default=True,
              help="Points of mean project gain a knob must add on the training units to stay.")
@click.option("--rounds", default=8, show_default=True, help="At most this many knobs removed.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def main(min_gain: float, rounds: int, jobs: int, backend: str) -> None:
    """Drop the knobs of the tuned default that do not earn their place on every training unit."""
    if not DEFAULT_FILE.exists():
        raise click.ClickException(f"{DEFAULT_FILE} is missing: run `tune-default` first")
    previous = json.loads(DEFAULT_FILE.read_text())
    best = tuned_default()
    manifest = search.load_manifest()
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    units = list({u["id"]: u for u in search.units_of(manifest, "train") if bitcode_of(u).exists()}.values())
    if not units:
        raise click.ClickException("no training unit is in the corpus: run `make corpus`")
    store, engine = search.Store(), Engine(backend, jobs)
    counts = search.instruction_counts(units, bitcode_of)
    history = []
    for round_no in range(1, rounds + 1):
        tried = [search.CLANG_PIPELINE, best, *without_each(best)]
        measure(tried, units, store, engine, f"prune round {round_no}", counts)
        scored = gains(tried, units, store.by_unit(counts, tried))
        drop = weakest(best, scored)
        keep = drop is None or scored[drop] < scored[best] - min_gain
        new = best if keep else drop
        history.append({"round": round_no, "from": best, "pipelines": scored, "best": new})
        click.echo(f"prune round {round_no}: {best} {scored[best]:.3f}% -> {new} {scored[new]:.3f}%")
        if keep:
            break
        best = new
    pool = sorted({p for h in history for p in h["pipelines"]}
                  | {p for s in previous.get("trial_sets", []) for p in s})
    measure(pool, units, store, engine, "trial pipelines on every training unit", counts)
    result = check(best, [p for p in pool if p != search.CLANG_PIPELINE], units, manifest, bitcode_of,
                   store, engine, counts)
    previous.update(result, pruned={"units": len(units), "min_gain": min_gain, "rounds": history})
    DEFAULT_FILE.write_text(json.dumps(previous, indent=1) + "\n")
    click.echo(f"default: {best} -> {DEFAULT_FILE}")
