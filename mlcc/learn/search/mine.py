"""Mine long searches for candidate pipelines that reach past the current set.

`-fmlcc-search` with a long budget finds far smaller objects than the candidates
do (docs/MODEL-REPORT.md, "search budget"). This step runs that same search
(`budget.long_search`: the driver's, guided by the bundled model) on training
units that the candidate selection does not use, keeps each unit's best few
finds, then measures the finds that saved the most on the walked units, where
`candidates` compares every pipeline. Whether a find made for one file helps
others is what that comparison shows.

    python -m mlcc.learn.search mine [--units 120] [--budget 200] [--jobs 2]
    python -m mlcc.learn.search mine-crosscheck [--limit 60]

Results: `models/data/mined-Oz.json` (per unit: clang's size, the best of the
model's candidates, the best finds, and the model that guided the search) and
the measurement table. Both steps resume where they stopped; a new model does
not redo the units already searched, and `--units` can grow the sample.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import replace

import click

from mlcc import passes
from mlcc.learn.search import budget, search
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Measurer, Unit, prepare
from mlcc.pipeline import CLANG

MINED = search.DATA / f"mined-{search.TAG}.json"
FINDS_PER_UNIT = 3  # a search's best finds are near copies of each other
MIN_OBJECT_BYTES = 800  # smaller objects leave a long search almost nothing to find


def mine_sample(manifest: dict, layout: Layout, count: int) -> list[dict]:
    """`count` training units of the walk size band that are not walked (the walked
    units judge the finds), are in the local corpus and are not known to be small,
    round-robin over projects, seeded."""
    walked = {u["id"] for u in search.walk_sample(manifest, 120)}
    clang = {unit: sizes.get(CLANG) for unit, sizes in search.Store().by_unit().items()}
    drawn = search.draw_sample(manifest, len(manifest["units"]),
                               search.WALK_MIN_BITCODE, search.WALK_MAX_BITCODE)
    return [u for u in drawn if u["id"] not in walked
            and (clang.get(u["id"]) or MIN_OBJECT_BYTES) >= MIN_OBJECT_BYTES
            and (search.unit_dir(layout, u["project"]) / f"{u['id']}.bc").exists()][:count]


def best_finds(sizes: dict[str, int | None], start: set[str], count: int = FINDS_PER_UNIT) -> list:
    """The `count` smallest pipelines a search found beyond its start list that beat
    everything in it, as [pipeline, size] pairs, smallest first."""
    started = [s for p, s in sizes.items() if p in start and s]
    if not started:
        return []
    floor = min(started)
    found = sorted((s, p) for p, s in sizes.items()
                   if p not in start and s and s < floor and passes.eligible(p))
    return [[p, s] for s, p in found[:count]]


def mine_unit(job: tuple[Unit, int], files: dict[str, str]) -> dict:
    """Worker: one long search on one unit, reduced to what `mine-crosscheck` needs, its
    bitcode where the engine put it (`files`)."""
    unit, evaluations = job
    unit = replace(unit, bitcode=files[unit.bitcode])
    with tempfile.TemporaryDirectory(prefix="mlcc-mine-") as tmp:
        clang = Measurer(prepare(unit, tmp), tmp).size(CLANG)
    if not clang or clang < MIN_OBJECT_BYTES:
        return {"unit": unit.id, "project": unit.project, "clang": clang, "evaluations": 1,
                "best_candidate": clang, "finds": []}
    start, sizes, _ = budget.long_search(unit, evaluations)
    best_start = min((s for p, s in sizes.items() if p in start and s), default=None)
    return {"unit": unit.id, "project": unit.project, "clang": sizes.get(CLANG),
            "evaluations": len(sizes), "best_candidate": best_start,
            "finds": best_finds(sizes, set(start))}


@click.command("mine")
@click.option("--units", "count", default=120, show_default=True, help="Training units to search.")
@click.option("--budget", "evaluations", default=200, show_default=True, help="Evaluations per unit.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def search_command(count: int, evaluations: int, jobs: int, backend: str) -> None:
    """Long searches on training units outside the walked ones (resumable per unit)."""
    previous = json.loads(MINED.read_text()) if MINED.exists() else {}
    # A find stays a find when the model changes: rows are kept, each with its guide.
    rows = {r["unit"]: r for r in previous.get("rows", [])}
    guide = budget.model_digest()
    layout = Layout.from_environment()
    units = mine_sample(search.load_manifest(), layout, count)
    todo = [(Unit.load(search.unit_dir(layout, u["project"]), u["id"]), evaluations)
            for u in units if rows.get(u["id"], {}).get("budget", 0) < evaluations]

    def save() -> None:
        MINED.write_text(json.dumps({"opt_level": search.OPT_LEVEL,
                                     "budgets": sorted({r["budget"] for r in rows.values()}),
                                     "models": sorted({r["model"] for r in rows.values()}),
                                     **summarize(list(rows.values())),
                                     "rows": sorted(rows.values(), key=lambda r: r["unit"])},
                                    indent=1) + "\n")

    mined = Engine(backend, jobs).map(mine_unit, todo, title="mine",
                                      inputs=lambda job: [job[0].bitcode],
                                      count=lambda row: row["evaluations"])
    for i, row in enumerate(mined, 1):
        rows[row["unit"]] = {"model": guide, "budget": evaluations, **row}
        save()
        click.echo(f"[{i}/{len(todo)}] {row['unit']} ({row['project']}): "
                   f"clang {row['clang']}, candidates {row['best_candidate']}, "
                   f"found {row['finds'][0][1] if row['finds'] else '-'}")
    save()


def summarize(rows: list[dict]) -> dict:
    """Total gain against clang of the model's candidates and of the whole search."""
    rows = [r for r in rows if r["clang"] and r["best_candidate"]]
    clang = sum(r["clang"] for r in rows)
    candidates = sum(r["best_candidate"] for r in rows)
    found = sum(min([r["best_candidate"]] + [s for _, s in r["finds"]]) for r in rows)

    def pct(total: int) -> float:
        return round(100.0 * (clang - total) / clang, 3) if clang else 0.0

    return {"units": len(rows), "clang_bytes": clang,
            "candidates_gain_pct": pct(candidates), "search_gain_pct": pct(found)}


def winners(rows: list[dict], limit: int) -> list[str]:
    """The finds that saved the most bytes on their own units, at most `limit`."""
    saved: dict[str, int] = defaultdict(int)
    for r in rows:
        for pipeline, size in r["finds"]:
            saved[pipeline] += r["best_candidate"] - size
    return [p for p, _ in sorted(saved.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


@click.command("mine-crosscheck")
@click.option("--limit", default=60, show_default=True, help="Finds to measure on the walked units.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def crosscheck(limit: int, jobs: int, backend: str) -> None:
    """Measure the best finds on every walked unit (resumable)."""
    mined = json.loads(MINED.read_text())
    chosen = winners(mined["rows"], limit)
    store = search.Store()
    layout = Layout.from_environment()
    by_unit = store.by_unit()
    units = search.walk_sample(search.load_manifest(), 120)
    jobs_list = [search.corpus_job(u, layout, chosen, by_unit.get(u["id"], {})) for u in units
                 if any(p not in by_unit.get(u["id"], {}) for p in chosen)]
    search.run_jobs(jobs_list, store, Engine(backend, jobs), "crosscheck mined")
