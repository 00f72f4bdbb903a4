"""Prune a target's tuned default on every training unit: each knob must earn its place.

`tune-default` takes a knob when it adds `--min-gain` points of mean project gain
on a sample of training units (200 for the cross targets). On the whole training
set some of those knobs add nothing, and a knob that adds nothing still changes the
code of every file, which is where files larger than clang's come from. This step
holds the default to the two figures issue 25 reports, on all the training units:
the total-bytes gain and the mean of the projects' gains. Each round measures the
default without each of its knobs; a knob stays when removing it costs `--min-gain`
points in either figure against the tuned default (so that small losses cannot add
up over rounds). The others are dropped all at once when that costs less than
`--min-gain` in both figures too, and otherwise the one whose removal gains most
(the two figures averaged); it stops when every knob left earns its place.
Then it chooses the trial sets again, on every training unit, from the pruned
default, the removals it measured and the previous trial sets' pipelines, and
checks the result on the validation projects, as `tune-default` does (the
validation units only score it).

    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates prune-default --jobs 2

Resumable (measurements already in the table are not redone). Writes
`models/data/pruned-<target>-O<level>.json`: the pruned `default`, its `trial_sets`
and `checked`, and the rounds under `pruned`. With `--adopt` it also rewrites the
target's `default-<target>-O<level>.json` with them, which `ship-targets` then puts
in mlcc/data/targets.toml: adopt only what the cross bench confirms (the pruned
Thumb defaults were measured and not adopted, docs/TARGETS.md).
"""

from __future__ import annotations

import json
import os

import click

from mlcc import knobs, passes
from mlcc.learn.candidates.tune_default import DEFAULT_FILE, check, gains, measure, tuned_default
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.search import search
from mlcc.learn.train import train

PRUNED_FILE = search.DATA / f"pruned-{search.TAG}.json"


def without_each(pipeline: str) -> list[str]:
    """`pipeline` with one of its knobs removed, for each knob (those opt can run)."""
    return [p for p in (knobs.without(pipeline, k) for k in knobs.knobs_of(pipeline)) if passes.eligible(p)]


def scores(pipelines: list[str], units: list[dict], by_unit: dict) -> dict[str, dict[str, float]]:
    """Each pipeline's total-bytes gain and mean project gain (percent) on `units`."""
    mean = gains(pipelines, units, by_unit)
    rows = [u for u in units if by_unit.get(u["id"], {}).get(search.CLANG_PIPELINE)]
    clang = sum(by_unit[u["id"]][search.CLANG_PIPELINE] for u in rows)
    out = {}
    for p in mean:
        mine = sum(by_unit[u["id"]][p] or train.FAILED_RATIO * by_unit[u["id"]][search.CLANG_PIPELINE]
                   for u in rows)
        out[p] = {"total": round(100.0 * (1 - mine / clang), 4), "mean": mean[p]}
    return out


def costs_little(scored: dict[str, dict[str, float]], reference: dict[str, float], other: str,
                 min_gain: float) -> bool:
    """True when `other` loses less than `min_gain` points against the `reference` scores
    (the tuned default's, so that rounds of small losses cannot add up) in total and in
    mean project gain."""
    return other in scored and all(scored[other][k] > reference[k] - min_gain for k in ("total", "mean"))


def free_removals(best: str, scored: dict[str, dict[str, float]], min_gain: float,
                  reference: dict[str, float] | None = None) -> list[str]:
    """The knob removals that cost little against `reference` (`best`'s scores when not
    given), the one that gains most (both figures averaged) first: the knobs that do not
    earn their place."""
    reference = reference or scored[best]
    free = [p for p in without_each(best) if costs_little(scored, reference, p, min_gain)]
    return sorted(free, key=lambda p: (-(scored[p]["total"] + scored[p]["mean"]), p))


def without_all(best: str, removals: list[str]) -> str:
    """`best` less every knob that one of `removals` lacks."""
    dropped = {k for p in removals for k in set(knobs.knobs_of(best)) - set(knobs.knobs_of(p))}
    return knobs.name(set(knobs.knobs_of(best)) - dropped)


@click.command()
@click.option("--min-gain", default=0.05, show_default=True,
              help="Points a knob must add on the training units, in total or in mean project gain, to stay.")
@click.option("--rounds", default=4, show_default=True, help="At most this many rounds of removals.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@click.option("--adopt", is_flag=True, help="Also make the pruned default the target's tuned default.")
@engine_option
def main(min_gain: float, rounds: int, jobs: int, adopt: bool, backend: str) -> None:
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
    counts = search.slow_pass_sizes(units, bitcode_of)
    history = []
    reference = None  # the tuned default's scores: what every round is held to
    for round_no in range(1, rounds + 1):
        tried = [search.CLANG_PIPELINE, best, *without_each(best)]
        measure(tried, units, store, engine, f"prune round {round_no}", counts)
        scored = scores(tried, units, store.by_unit(counts, tried))
        reference = reference or scored[best]
        free = free_removals(best, scored, min_gain, reference)
        if not free:
            history.append({"round": round_no, "from": best, "pipelines": scored, "best": best})
            click.echo(f"prune round {round_no}: every knob of {best} earns its place {scored[best]}")
            break
        new = free[0]
        if len(free) > 1:  # every free knob dropped at once, kept if that costs little too
            combined = without_all(best, free)
            if passes.eligible(combined):
                measure([combined], units, store, engine, f"prune round {round_no}, combined", counts)
                scored.update(scores([combined], units, store.by_unit(counts, [combined])))
                if costs_little(scored, reference, combined, min_gain):
                    new = combined
        history.append({"round": round_no, "from": best, "pipelines": scored, "best": new})
        click.echo(f"prune round {round_no}: {best} {scored[best]} -> {new} {scored[new]}")
        best = new
    pool = sorted({p for h in history for p in h["pipelines"]}
                  | {p for s in previous.get("trial_sets", []) for p in s})
    measure(pool, units, store, engine, "trial pipelines on every training unit", counts)
    result = check(best, [p for p in pool if p != search.CLANG_PIPELINE], units, manifest, bitcode_of,
                   store, engine, counts)
    pruned = {"target": search.TARGET, "opt_level": search.OPT_LEVEL, "from": tuned_default(), **result,
              "pruned": {"units": len(units), "min_gain": min_gain, "rounds": history}}
    PRUNED_FILE.write_text(json.dumps(pruned, indent=1) + "\n")
    click.echo(f"pruned default: {best} -> {PRUNED_FILE}")
    if adopt:
        previous.update(result, pruned=pruned["pruned"])
        DEFAULT_FILE.write_text(json.dumps(previous, indent=1) + "\n")
        click.echo(f"adopted: {DEFAULT_FILE}")
