"""Tune the default: the pipeline every unit gets unless the model predicts better.

The knob walks (`search knobs`) run on small units, and the knobs they favour
there need not pay on the units a build is made of (validation's larger files
lost most of the walks' gain). This step tunes the default on a seeded sample
of 450 training units (`search.label_sample`; `label` now measures all of them):
start from the best of clang's pipeline and the tuned clang pipelines among
the candidates (`candidates-O<level>.json`; for another target, x86-64's tuned
default), measured on all of them; each round measures every one-knob change
of it (`knobs.toggles`), and all the changes that helped on their own taken at
once, and keeps the best by the rule the model's default is chosen by
(`train.mean_project_gain`: each project's total gain, averaged over the
projects). It stops when no change adds `--min-gain` points, or after
`--rounds`. For another target (MLCC_LEARN_TARGET) it also chooses trial sets
and checks the result on the validation projects (docs/TARGETS.md).

Resumable (measurements already in the table are not redone). Writes
`models/data/default-O<level>.json`: each round's pipelines with their gains,
and the result, which `candidates` adds to the candidate set.
"""

from __future__ import annotations

import json
import os

import click
import numpy as np

from mlcc import knobs, passes, targets
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.search import search
from mlcc.learn.train import train

DEFAULT_FILE = search.DATA / f"default-{search.TAG}.json"
TRIALS_K = 4  # trial sets of 1..K pipelines are chosen for a target without a model
# the default a target without a model ships (mlcc/data/targets.toml): this step's, when it
# is no worse than clang's pipeline in total on training and on validation


def tuned_default(path=DEFAULT_FILE) -> str | None:
    """The default this step found, if it ran."""
    return json.loads(path.read_text()).get("default") if path.exists() else None


def gains(pipelines: list[str], units: list[dict], by_unit: dict) -> dict[str, float]:
    """Mean project gain (percent) of each pipeline measured on every unit of `units`
    with clang's size; a failure counts as `train.FAILED_RATIO` times clang's size."""
    rows = [u for u in units if by_unit.get(u["id"], {}).get(search.CLANG_PIPELINE)]
    complete = [p for p in pipelines if all(p in by_unit[u["id"]] for u in rows)]
    if not rows or not complete:
        return {}
    clang = np.array([by_unit[u["id"]][search.CLANG_PIPELINE] for u in rows], dtype=np.float64)
    sizes = np.array([[by_unit[u["id"]][p] or train.FAILED_RATIO * c for p in complete]
                      for u, c in zip(rows, clang)], dtype=np.float64)
    groups = np.array([u["project"] for u in rows])
    mean = train.mean_project_gain(sizes, clang, groups)
    return {p: round(100.0 * float(g), 4) for p, g in zip(complete, mean)}


def candidate_pipelines() -> list[str]:
    return json.loads(search.CANDIDATES.read_text())["pipelines"] if search.CANDIDATES.exists() else []


def measure(pipelines: list[str], units: list[dict], store: search.Store, engine: Engine, title: str,
            counts: dict[str, float]) -> None:
    """Measure what mlcc runs for `pipelines` (`passes.bounded`, the units' instruction
    `counts`) on every unit of `units` that lacks one of them."""
    layout, by_unit = Layout.from_environment(), store.by_unit()
    jobs_list = []
    for u in units:
        run = search.bounded_pipelines(pipelines, counts.get(u["id"]))
        if any(p not in by_unit.get(u["id"], {}) for p in run):
            jobs_list.append(search.corpus_job(u, layout, run, by_unit.get(u["id"], {})))
    search.run_jobs(jobs_list, store, engine, title)


def summary(sizes: dict[str, int], units: list[dict], by_unit: dict) -> dict:
    """How the per-unit `sizes` do against clang's pipeline on `units` (the metrics every
    target reports): total gain, geometric mean of per-project gains, files larger."""
    rows = [u for u in units if by_unit.get(u["id"], {}).get(search.CLANG_PIPELINE) and sizes.get(u["id"])]
    clang = {u["id"]: by_unit[u["id"]][search.CLANG_PIPELINE] for u in rows}
    projects: dict[str, list[int]] = {}
    for u in rows:
        totals = projects.setdefault(u["project"], [0, 0])
        totals[0] += clang[u["id"]]
        totals[1] += sizes[u["id"]]
    ratios = [m / c for c, m in projects.values()]
    total_clang, total_mine = sum(clang.values()), sum(sizes[i] for i in clang)
    return {"units": len(rows), "projects": len(projects),
            "total_gain_pct": round(100.0 * (1 - total_mine / total_clang), 3) if rows else None,
            "geomean_gain_pct": round(100.0 * (1 - float(np.exp(np.mean(np.log(ratios))))), 3)
            if ratios else None,
            "larger_files": sum(sizes[i] > clang[i] for i in clang),
            "per_project_gain_pct": {p: round(100.0 * (1 - m / c), 3) for p, (c, m) in sorted(projects.items())}}


def sizes_of(pipelines: list[str], units: list[dict], by_unit: dict, with_clang: bool = False) -> dict[str, int]:
    """Each unit's size with the smallest of `pipelines` (and clang's pipeline, as trials
    build it, `with_clang`); a unit missing one of them has none."""
    run = [*pipelines, *([search.CLANG_PIPELINE] if with_clang else [])]
    out = {}
    for u in units:
        measured = [by_unit.get(u["id"], {}).get(p) for p in run]
        if all(m is not None for m in measured):
            out[u["id"]] = min(measured)
    return out


def trial_sets(pipelines: list[str], units: list[dict], by_unit: dict, k_max: int) -> list[list[str]]:
    """The sets of 1..`k_max` pipelines whose best (with clang's) per unit gains most, by
    the default's rule, chosen greedily among `pipelines` on `units`: what `-fmlcc-trials=K`
    builds for a target without a model."""
    chosen: list[str] = []
    sets = []
    for _ in range(k_max):
        def score(p: str) -> float:
            sizes = sizes_of([*chosen, p], units, by_unit, with_clang=True)
            rows = [u for u in units if u["id"] in sizes and by_unit[u["id"]].get(search.CLANG_PIPELINE)]
            if len(rows) < len(units) * 0.9:
                return float("-inf")  # failed or unmeasured on too many units
            clang = np.array([by_unit[u["id"]][search.CLANG_PIPELINE] for u in rows], dtype=np.float64)
            mine = np.array([[sizes[u["id"]]] for u in rows], dtype=np.float64)
            return float(train.mean_project_gain(mine, clang, np.array([u["project"] for u in rows]))[0])
        left = [p for p in pipelines if p not in chosen]
        if not left:
            break
        chosen.append(max(sorted(left), key=score))
        sets.append(list(chosen))
    return sets


def best_of(scored: dict[str, float]) -> str:
    return max(sorted(scored), key=lambda p: scored[p])


def check(best: str, measured: list[str], units: list[dict], manifest: dict, bitcode_of,
          store: search.Store, engine: Engine, counts: dict[str, float]) -> dict:
    """Trial sets chosen from the `measured` pipelines on the training `units`, then the
    default `best` and the largest set measured on every validation unit: `default`,
    `trial_sets` and `checked` (each split's summary, its trials', x86-64's default's
    for another target, and the training units' room), as the result file keeps them."""
    sets = trial_sets(measured, units, store.by_unit(counts, measured), TRIALS_K)
    host_default = tuned_default(search.DATA / f"default-O{search.OPT_LEVEL}.json")
    validation = [u for u in search.units_of(manifest, "validation") if bitcode_of(u).exists()]
    counts.update(search.slow_pass_sizes(validation, bitcode_of))
    compared = [host_default] if search.TARGET != targets.HOST and host_default else []
    measure([search.CLANG_PIPELINE, best, *sets[-1], *compared], validation, store, engine,
            "default and trials on validation", counts)
    checked = {}
    by_unit = store.by_unit(counts, [best, *measured, *compared])
    for split, sample in (("train", units), ("validation", validation)):
        checked[split] = summary(sizes_of([best], sample, by_unit), sample, by_unit)
        checked[split]["trials"] = summary(sizes_of(sets[-1], sample, by_unit, with_clang=True), sample, by_unit)
        if compared:  # what the target got before its own search: x86-64's default
            checked[split]["host_default"] = summary(sizes_of(compared, sample, by_unit), sample, by_unit)
        if split == "train":  # the room: each unit's best of every pipeline this search measured
            best_each = {u["id"]: min(v for v in by_unit[u["id"]].values() if v)
                         for u in sample if any(by_unit.get(u["id"], {}).values())}
            checked[split]["oracle"] = summary(best_each, sample, by_unit)
        for what, row in (("default", checked[split]), (f"trials K={len(sets[-1])}", checked[split]["trials"])):
            click.echo(f"{split}, {what}: {row['total_gain_pct']}% in total, {row['geomean_gain_pct']}% geomean, "
                       f"{row['larger_files']} of {row['units']} files larger")
    return {"default": best, "trial_sets": sets, "checked": checked}


@click.command()
@click.option("--limit", default=450, show_default=True,
              help="Training units: a seeded sample (`search.label_sample`) of those in this corpus.")
@click.option("--rounds", default=5, show_default=True, help="Rounds of one-knob changes.")
@click.option("--min-gain", default=0.02, show_default=True,
              help="Points of mean project gain a change must add to be taken.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def main(limit: int, rounds: int, min_gain: float, jobs: int, backend: str) -> None:
    """Descend from the best tuned clang pipeline one knob at a time on training units."""
    manifest = search.load_manifest()
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    # a file its project builds twice is one unit; one this corpus lacks cannot be measured
    present = [u for u in search.units_of(manifest, "train") if bitcode_of(u).exists()]
    units = list({u["id"]: u for u in search.label_sample(present, limit)}.values())
    if not units:
        raise click.ClickException("none of the sampled training units is in the corpus: run `make corpus`")
    store = search.Store()
    engine = Engine(backend, jobs)
    counts = search.slow_pass_sizes(units, bitcode_of)
    start = [search.CLANG_PIPELINE] + [p for p in candidate_pipelines()
                                       if search.is_tuned_clang(p) and passes.eligible(p)]
    host_default = tuned_default(search.DATA / f"default-O{search.OPT_LEVEL}.json")
    if search.TARGET != targets.HOST and host_default:
        start.append(host_default)  # what this target got before it had a search of its own
    measure(start, units, store, engine, "default start", counts)
    scored = gains(start, units, store.by_unit(counts, start))
    best = best_of(scored)
    history = [{"round": 0, "pipelines": scored, "best": best}]
    for round_no in range(1, rounds + 1):
        tried = [best] + [t for t in knobs.toggles(best, search.OPT_LEVEL, search.TARGET)
                          if passes.eligible(t)]
        measure(tried, units, store, engine, f"default round {round_no}", counts)
        scored = gains(tried, units, store.by_unit(counts, tried))
        # every change that helped on its own, taken at once: one more pipeline per round,
        # which saves the rounds a far start (x86-64's default on another target) would take
        helped = [t for t in tried[1:] if scored.get(t, float("-inf")) >= scored[best] + min_gain]
        if len(helped) > 1:
            have = set(knobs.knobs_of(best))
            combined = knobs.name(have ^ {k for t in helped for k in set(knobs.knobs_of(t)) ^ have})
            if passes.eligible(combined) and combined not in scored:
                measure([combined], units, store, engine, f"default round {round_no}, combined", counts)
                scored.update(gains([combined], units, store.by_unit(counts, [combined])))
        new = best_of(scored)
        if scored[new] < scored[best] + min_gain:
            new = best  # a step within noise of staying put is not taken
        history.append({"round": round_no, "from": best, "pipelines": scored, "best": new})
        click.echo(f"round {round_no}: {best} {scored[best]:.3f}% -> {new} {scored[new]:.3f}%")
        if new == best:
            break
        best = new
    measured = sorted({p for h in history for p in h["pipelines"]} - {search.CLANG_PIPELINE})
    checked = check(best, measured, units, manifest, bitcode_of, store, engine, counts)
    result = {"opt_level": search.OPT_LEVEL, "target": search.TARGET, "units": len(units),
              "min_gain": min_gain, **checked,
              "projects": len({u["project"] for u in units}),
              "rule": "mean over training projects of the project's total gain (percent)",
              "gain_pct": history[-1]["pipelines"][best], "rounds": history}
    DEFAULT_FILE.write_text(json.dumps(result, indent=1) + "\n")
    click.echo(f"default: {best} -> {DEFAULT_FILE}")
