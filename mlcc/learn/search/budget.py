"""How close `-fmlcc-search=N` gets to a long search (1,000 evaluations), for N = 20, 50, 200.

For each sampled validation unit, one search with the longest budget, exactly
as the driver runs it (`UnitBuilder.search`, seeded by the bitcode, the model's
ranked candidates first). Its first evaluations do not depend on the budget
(the start list is shorter than half of every budget studied), so the best of
the first N evaluations is what `-fmlcc-search=N` would keep. Results go to
`models/data/search-budget-Oz.json`; `make report` puts them in the report.

With `--all`, every validation unit is searched (a short search: `--long 20`), so
the totals weigh every project as the report's single-shot and trial figures do. The
best of the first K+1 evaluations is then `-fmlcc-trials=K` as the driver runs it,
measured by building, not read from the table. Results go to
`models/data/search-budget-all-Oz.json`.

    python -m mlcc.learn.search budget [--units 12] [--long 1000] [--jobs 1]
    python -m mlcc.learn.search budget --all --long 20 --jobs 2
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from dataclasses import replace

import click

from mlcc import model, targets
from mlcc.learn.search import search
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Unit, prepare
from mlcc.job import UnitJob
from mlcc.objective import data_size
from mlcc.pipeline import CLANG
from mlcc.plan import UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain
from mlcc.trials import UnitBuilder, search_start

RESULTS = search.DATA / f"search-budget-{search.TAG}.json"
RESULTS_ALL = search.DATA / f"search-budget-all-{search.TAG}.json"
BUDGETS = (8, 20, 50, 100, 200, 500, 1000)
# On every unit: clang's pipeline plus the top K candidates (trials, K = 1..8), then the search.
BUDGETS_ALL = (2, 3, 4, 5, 6, 7, 8, 9, 20, 50, 200)
# Units small enough that a long search takes minutes, large enough to have room.
MIN_BITCODE, MAX_BITCODE = 8_000, 40_000


def sample_units(manifest: dict, count: int) -> list[dict]:
    """Validation units in the size band, seeded, one project after another."""
    rng = random.Random(search.EXPLORE_SEED)
    units = [u for u in search.units_of(manifest, "validation")
             if MIN_BITCODE <= u["bitcode_bytes"] <= MAX_BITCODE]
    rng.shuffle(units)
    by_project: dict[str, list[dict]] = {}
    for u in units:
        by_project.setdefault(u["project"], []).append(u)
    chosen: list[dict] = []
    while len(chosen) < count and any(by_project.values()):
        for project in sorted(by_project):
            if by_project[project] and len(chosen) < count:
                chosen.append(by_project[project].pop())
    return chosen


def long_search(unit: Unit, budget: int, with_data: bool = False
                ) -> tuple[list[str], dict[str, int | None], int | None]:
    """One search of `budget` evaluations on a corpus unit, exactly as `-fmlcc-search`
    runs it (seeded by the bitcode, the model's ranked candidates first): the start
    list (clang's pipeline and the ranked candidates), every pipeline tried with its
    size, in evaluation order (None: failed), and, `with_data`, the bytes of
    initialized data in clang's object (None otherwise)."""
    with tempfile.TemporaryDirectory(prefix="mlcc-budget-") as tmp:
        prep = prepare(unit, tmp)
        plan = UnitPlan(source=unit.id, language=unit.driver, frontend_args=(),
                        codegen_args=unit.codegen_args, output=None, emit_assembly=False)
        settings = Settings(no_cache=True, server=False)
        builder = UnitBuilder(UnitJob(plan, search.OPT_LEVEL, prep.bitcode, settings, Toolchain(clang=prep.clang), tmp,
                                      "unit", target_flags=prep.target_flags, clang_text=prep.clang_pipeline,
                                      triple=prep.triple))
        decision = model.choose(prep.bitcode, search.OPT_LEVEL, settings, triple=prep.triple)
        start = search_start(decision)
        _, sizes = builder.search(start, budget)
        # clang's object once more (its opt run is shared) to split its bytes
        data = data_size(builder.build(builder.job.pipeline(CLANG)).output) if with_data and sizes.get(CLANG) else None
    return start, sizes, data


def search_unit(job: tuple[Unit, int], files: dict[str, str]) -> dict:
    """Worker: the sizes of one long search, in evaluation order (None: failed), the
    unit's bitcode where the engine put it (`files`)."""
    unit, budget = job
    start, sizes, data = long_search(replace(unit, bitcode=files[unit.bitcode]), budget,
                                     with_data=True)
    return {"unit": unit.id, "project": unit.project, "clang": sizes.get(CLANG), "clang_data": data,
            "budget": budget, "starts": len(start), "sizes": list(sizes.values())}


def model_digest(name: str = search.TARGET, level: str = search.OPT_LEVEL) -> str:
    """What guides the searches: the short sha256 of the bundled model, or, for a
    target without one (MLCC_LEARN_TARGET), its shipped default and trial sets."""
    target = targets.named(name)
    if name == targets.HOST:
        return model.load(str(model.bundled_model_path(level))).digest
    shipped = json.dumps([target.default(level), target.trial_sets(level)])
    return "default:" + hashlib.sha256(shipped.encode()).hexdigest()[:12]


def summarize(rows: list[dict], budgets=BUDGETS) -> dict:
    """Total reduction against clang's pipeline after N evaluations, for each budget."""
    rows = [r for r in rows if r["clang"]]
    clang = sum(r["clang"] for r in rows)
    out = {}
    for n in budgets:
        best = sum(min(s for s in r["sizes"][:n] if s is not None) for r in rows)
        out[str(n)] = round(100.0 * (clang - best) / clang, 3) if clang else 0.0
    return {"units": len(rows), "projects": sorted({r["project"] for r in rows}),
            "clang_bytes": clang, "clang_data_bytes": sum(r.get("clang_data") or 0 for r in rows),
            "total_gain_pct": out}


@click.command()
@click.option("--units", "count", default=12, show_default=True, help="Validation units to search.")
@click.option("--long", "long_budget", default=BUDGETS[-1], show_default=True,
              help="Evaluations of the long search.")
@click.option("--jobs", default=1, show_default=True)
@engine_option
@click.option("--all", "every_unit", is_flag=True,
              help="Search every validation unit (largest first), into search-budget-all-O?.json.")
def main(count: int, long_budget: int, jobs: int, backend: str, every_unit: bool) -> None:
    """How close -fmlcc-search=N gets to a long search (resumable per unit)."""
    results = RESULTS_ALL if every_unit else RESULTS
    previous = json.loads(results.read_text()) if results.exists() else {}
    guide = model_digest()
    if previous.get("model") != guide:
        previous = {}  # another model guided those searches: start over
    # A search can end early: local edits of the best pipelines run out of new ones.
    done = {r["unit"]: r for r in previous.get("rows", [])
            if r.get("budget", len(r["sizes"])) >= long_budget}
    layout = Layout.from_environment()
    if every_unit:
        units = sorted(search.units_of(search.load_manifest(), "validation"),
                       key=lambda u: -u["bitcode_bytes"])
    else:
        units = sample_units(search.load_manifest(), count)
    bitcode_of = search.corpus_bitcode(layout)
    todo = [(Unit.load(bitcode_of(u).parent, u["id"]), long_budget)  # in this corpus only
            for u in units if u["id"] not in done and bitcode_of(u).exists()]
    rows = [done[u["id"]] for u in units if u["id"] in done]
    budgets = tuple(b for b in (BUDGETS_ALL if every_unit else BUDGETS) if b <= long_budget)

    def save() -> None:
        results.write_text(json.dumps({"long_budget": long_budget, "opt_level": search.OPT_LEVEL,
                                       "model": guide,
                                       **summarize(rows, budgets), "rows": rows}, indent=1) + "\n")

    searched = Engine(backend, jobs).map(search_unit, todo, title="budget",
                                         inputs=lambda job: [job[0].bitcode],
                                         count=lambda row: len(row["sizes"]))
    for row in searched:
        rows.append(row)
        save()
        click.echo(f"{row['unit']} ({row['project']}): {len(row['sizes'])} evaluations")
    save()
    click.echo(json.dumps(summarize(rows, budgets)["total_gain_pct"]))
