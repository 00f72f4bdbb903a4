"""Measure pipelines on the corpus: the table every later step learns from.

Steps, each resumable (measurements already in the table are never redone):

- `explore`: on a sample of training units, clang's pipeline plus a shared
  set of random pipelines (the same for every unit, so that columns can be
  compared), then a greedy walk of local edits from each unit's best.
- `crosscheck`: the pipelines the greedy walks found, measured on every
  explored unit, so the candidate selection can compare them fairly.
- `label`: the chosen candidates (`models/data/candidates-Oz.json`) plus
  clang's pipeline on every unit of the corpus, training and validation.

The table is `models/data/measurements-Oz.jsonl.gz`: one JSON object per
line (unit, pipeline, size in bytes or null when the pipeline failed),
appended in gzip members, committed so the model can be retrained without
measuring again. Beside it, the features table (`features-v<schema>.jsonl.gz`):
each unit's IR features, extracted once; `label` reads the instruction counts
(slow passes run only on units under a bound), training the features.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.progress import track

from mlcc import features, knobs, targets
from mlcc import passes as pl
from mlcc.errors import MlccError
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Measurer, Unit, prepare
from mlcc.learn.paths import MODELS
from mlcc.pipeline import CLANG

DATA = MODELS / "data"
# The level the learning side works on: -Oz, or -Os with MLCC_LEARN_LEVEL=s (`make model-Os`,
# on the corpus corpus/derive.py derives). Every table and file is named by it.
OPT_LEVEL = os.environ.get("MLCC_LEARN_LEVEL", "z")
if OPT_LEVEL not in ("z", "s"):
    raise MlccError(f"MLCC_LEARN_LEVEL={OPT_LEVEL!r}: the size models are for -Oz (z) and -Os (s)")
# The target it works on: x86-64, or another of mlcc/data/targets.toml with
# MLCC_LEARN_TARGET=thumbv7m (on the corpus `corpus derive --target` makes). Every table
# and file is named by level and target: `measurements-Oz.jsonl.gz` for x86-64,
# `measurements-thumbv7m-Oz.jsonl.gz` for the others.
TARGET = os.environ.get("MLCC_LEARN_TARGET", targets.HOST)
if TARGET not in targets.table():
    raise MlccError(f"MLCC_LEARN_TARGET={TARGET!r}: mlcc/data/targets.toml knows {', '.join(targets.table())}")
TAG = f"O{OPT_LEVEL}" if TARGET == targets.HOST else f"{TARGET}-O{OPT_LEVEL}"
BOTH_DEFAULTS = ("default<Oz>", "default<Os>")
CLANG_PIPELINE = CLANG  # clang's own pipeline, exactly; the baseline of everything
OPT_DEFAULT = f"default<O{OPT_LEVEL}>"  # opt's version of it: close, not the same
MEASUREMENTS = DATA / f"measurements-{TAG}.jsonl.gz"
CANDIDATES = DATA / f"candidates-{TAG}.json"
EXPLORE_SEED = 20261127
MAX_EXPLORE_BITCODE = 1_500_000  # bytes; huge units would eat the exploration budget


class Store:
    """The measurement table: (unit, pipeline) -> bytes (None: the pipeline failed), the
    seconds its opt and code generation took, and (rows since 2026-12-07) the seconds of
    its code generation alone (`codegen_seconds`; 0 after an opt run an earlier
    pipeline of the same job made, whose seconds were then code generation's alone)."""

    def __init__(self, path: Path = MEASUREMENTS):
        self.path = path
        self.sizes: dict[tuple[str, str], int | None] = {}
        self.seconds: dict[tuple[str, str], float | None] = {}
        self.codegen_seconds: dict[tuple[str, str], float] = {}
        if path.exists():
            with gzip.open(path, "rt") as f:
                for line in f:
                    if line.strip():
                        self._keep(json.loads(line))

    def _keep(self, row: dict) -> None:
        key = (row["unit"], row["pipeline"])
        self.sizes[key] = row["size"]
        self.seconds[key] = row.get("seconds")
        if row.get("codegen_seconds") is not None:
            self.codegen_seconds[key] = row["codegen_seconds"]

    def has(self, unit: str, pipeline: str) -> bool:
        return (unit, pipeline) in self.sizes

    def by_unit(self, instructions: dict[str, float] | None = None,
                wanted=()) -> dict[str, dict[str, int | None]]:
        """unit -> pipeline -> size. With the units' `instructions`, the sizes are those of
        what mlcc runs for each pipeline (`as_run`), the `wanted` pipelines included
        where only what runs instead of them was measured."""
        out: dict[str, dict[str, int | None]] = defaultdict(dict)
        for (unit, pipeline), size in self.sizes.items():
            out[unit][pipeline] = size
        if instructions is not None:
            for unit, sizes in out.items():
                out[unit] = as_run(sizes, instructions.get(unit), wanted)
        return out

    def seconds_by_unit(self, codegen_only: bool = False) -> dict[str, dict[str, float | None]]:
        """unit -> pipeline -> seconds of its opt and code generation, as measured (with
        `codegen_only`, of its code generation alone, where the row has them)."""
        out: dict[str, dict[str, float | None]] = defaultdict(dict)
        for (unit, pipeline), seconds in (self.codegen_seconds if codegen_only else self.seconds).items():
            out[unit][pipeline] = seconds
        return out

    def append(self, rows: list[dict]) -> None:
        """Add rows as one gzip member (a crash loses at most this batch)."""
        fresh = [r for r in rows if (r["unit"], r["pipeline"]) not in self.sizes]
        if not fresh:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in fresh)
        with open(self.path, "ab") as f:
            f.write(gzip.compress(data.encode(), mtime=0))
        for r in fresh:
            self._keep(r)


def as_run(sizes: dict, instructions: float | None, wanted=()) -> dict:
    """One unit's measured sizes as mlcc gets them: a pipeline with a slow pass has, on a
    unit over the bound, the size of what runs instead (`passes.bounded`), or none yet
    when that one is not measured. The table keeps what was measured, under the names
    measured: a `wanted` pipeline that was never measured under its own name (only what
    runs instead of it) is added."""
    out = {}
    for pipeline in [*sizes, *(p for p in wanted if p not in sizes)]:
        run = pl.bounded(pipeline, instructions)
        if run == pipeline and pipeline in sizes:
            out[pipeline] = sizes[pipeline]
        elif run != pipeline and run in sizes:
            out[pipeline] = sizes[run]
    return out


def bounded_pipelines(pipelines: list[str], instructions: float | None) -> list[str]:
    """What to measure on a unit for `pipelines`: what mlcc runs for each of them."""
    return list(dict.fromkeys(pl.bounded(p, instructions) for p in pipelines))


def load_manifest(path: Path = MANIFEST_FILE) -> dict:
    return json.loads(path.read_text())


def units_of(manifest: dict, split: str | None = None) -> list[dict]:
    return [u for u in manifest["units"] if split is None or u["split"] == split]


# ----------------------------------------------------------------------------- the features table

# The -Os units' bitcode differs (no `minsize`), and so does another target's: each has a
# features table of its own (x86-64's -Oz one is `features-v<schema>.jsonl.gz`).
FEATURES_TABLE = DATA / (f"features-v{features.SCHEMA_VERSION}"
                         f"{'' if TAG == 'Oz' else '-' + TAG}.jsonl.gz")


def unit_dir(layout: Layout, project: str) -> Path:
    """Where a project's units are for the level and target this run learns for."""
    return layout.units(project, OPT_LEVEL, TARGET)


def corpus_bitcode(layout: Layout):
    """Where a manifest unit's bitcode lives in the collected corpus."""
    return lambda u: unit_dir(layout, u["project"]) / f"{u['id']}.bc"


def slow_pass_sizes(units: list[dict], bitcode_of, table: Path = FEATURES_TABLE) -> dict[str, float]:
    """Each unit's size as the bound on slow passes reads it (`features.slow_pass_size`:
    its instructions, infinite when its largest function is over the bound)."""
    return {unit: features.slow_pass_size(row, OPT_LEVEL)
            for unit, row in feature_table(units, bitcode_of, table).items()}


def feature_table(units: list[dict], bitcode_of, table: Path = FEATURES_TABLE) -> dict[str, np.ndarray]:
    """Features of every unit, extracted once and cached in `table`."""
    features_of: dict[str, np.ndarray] = {}
    schema = features.schema_hash()
    if table.exists():
        with gzip.open(table, "rt") as f:
            for line in f:
                row = json.loads(line)
                if row["schema"] == schema:
                    features_of[row["unit"]] = np.asarray(row["features"], dtype=np.float32)
    missing = [u for u in units if u["id"] not in features_of]
    rows = []
    for u in track(missing, description="features", console=Console(stderr=True),
                   disable=not missing):
        try:
            vec = features.extract_features(bitcode_of(u))
        except features.FeatureError:
            continue
        features_of[u["id"]] = vec
        rows.append({"unit": u["id"], "schema": schema,
                     "features": [float(x) for x in vec]})
    if rows:
        table.parent.mkdir(parents=True, exist_ok=True)
        with open(table, "ab") as f:
            data = "".join(json.dumps(r) + "\n" for r in rows)
            f.write(gzip.compress(data.encode(), mtime=0))
    return features_of


EXPLORE_UNITS = DATA / f"explore-units-{TAG}.json"
WALK_UNITS = DATA / f"walk-units-{TAG}.json"
# Walked units are small (a walk is many measurements) and come from every project.
WALK_MIN_BITCODE, WALK_MAX_BITCODE = 3_000, 40_000


def explore_sample(manifest: dict, count: int) -> list[dict]:
    """Training units for exploration, spread over projects (see `stored_sample`)."""
    return stored_sample(EXPLORE_UNITS, manifest, count, 0, MAX_EXPLORE_BITCODE)


def walk_sample(manifest: dict, count: int) -> list[dict]:
    """Training units for the long walks: small ones, spread over every project."""
    return stored_sample(WALK_UNITS, manifest, count, WALK_MIN_BITCODE, WALK_MAX_BITCODE)


def stored_sample(path: Path, manifest: dict, count: int, min_bytes: int, max_bytes: int) -> list[dict]:
    """`count` training units, drawn once and kept in `path`: a corpus that grows
    later does not change the sample, and asking for more units extends it (the
    units already measured stay first)."""
    known = {u["id"]: u for u in manifest["units"]}
    stored = json.loads(path.read_text()) if path.exists() else {}
    ids = stored.get("units", [])
    kept = [known[i] for i in ids if i in known]
    if len(ids) < count:
        taken = set(ids)
        fresh = [u for u in draw_sample(manifest, count + len(ids), min_bytes, max_bytes)
                 if u["id"] not in taken]
        kept += fresh[:count - len(ids)]
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = ids + [u["id"] for u in fresh[:count - len(ids)]]
        path.write_text(json.dumps({**stored, "seed": EXPLORE_SEED, "units": ids}, indent=1) + "\n")
    return kept[:count]


def draw_sample(manifest: dict, count: int, min_bytes: int, max_bytes: int) -> list[dict]:
    """Round-robin over projects, seeded."""
    rng = random.Random(EXPLORE_SEED)
    by_project: dict[str, list[dict]] = defaultdict(list)
    for u in units_of(manifest, "train"):
        if min_bytes <= u["bitcode_bytes"] <= max_bytes:
            by_project[u["project"]].append(u)
    for lst in by_project.values():
        rng.shuffle(lst)
    chosen: list[dict] = []
    projects = sorted(by_project)
    while len(chosen) < count and any(by_project.values()):
        for p in projects:
            if by_project[p] and len(chosen) < count:
                chosen.append(by_project[p].pop())
    return chosen


def shared_random_pipelines(count: int, level: str = OPT_LEVEL) -> list[str]:
    """The random pipelines every explored unit is measured with (seeded, so stable)."""
    rng = random.Random(EXPLORE_SEED)
    space = pl.load_space(trusted_only=False)  # the draws the table was measured with
    out: list[str] = []
    while len(out) < count:
        p = pl.to_opt(pl.random_pipeline(rng, space, level))
        if p not in out and p != f"default<O{level}>":
            out.append(p)
    return out


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class Job:
    """One unit to measure: `pipelines` not yet in `known`, then `greedy` local edits
    of its best pipeline at optimization level `level`."""

    unit: Unit
    pipelines: list[str]
    known: dict
    greedy: int = 0
    level: str = OPT_LEVEL
    knobs_only: bool = False  # the greedy edits toggle knobs of clang's pipeline (`knobs`)


def corpus_job(manifest_unit: dict, layout: Layout, pipelines: list[str], known: dict,
               greedy: int = 0, knobs_only: bool = False) -> Job | None:
    """The job of a manifest unit; None when this machine's corpus lacks the unit (not a
    failure: `run_jobs` leaves it out)."""
    directory = unit_dir(layout, manifest_unit["project"])
    if not (directory / f"{manifest_unit['id']}.bc").exists():
        return None
    return Job(Unit.load(directory, manifest_unit["id"]), pipelines, known, greedy,
               knobs_only=knobs_only)


def _measure_unit(job: Job, files: dict[str, str]) -> list[dict]:
    """Worker: measure one job, its bitcode where the engine put it (`files`)."""
    unit = replace(job.unit, bitcode=files[job.unit.bitcode])
    pipelines, greedy, level = job.pipelines, job.greedy, job.level
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mlcc-search-") as tmp:
        try:
            prep = prepare(unit, tmp)
        except Exception as exc:  # a unit that cannot even be read is recorded as failed
            return [{"unit": unit.id, "pipeline": p, "size": None, "error": str(exc)[:200]}
                    for p in pipelines]
        sizes = dict(job.known)
        measurer = Measurer(prep, tmp)

        def run(pipeline: str) -> None:
            start = time.perf_counter()  # a shared opt run counts for the first pipeline only
            codegen = measurer.codegen_seconds()
            size = measurer.size(pipeline, timeout=240)
            sizes[pipeline] = size
            rows.append({"unit": unit.id, "pipeline": pipeline, "size": size,
                         "seconds": round(time.perf_counter() - start, 3),
                         "codegen_seconds": round(measurer.codegen_seconds() - codegen, 3)})

        for p in pipelines:
            if p not in sizes:
                run(p)
        if greedy and job.knobs_only:
            _walk_knobs(sizes, greedy, run, level)
        elif greedy:
            rng = random.Random(f"{EXPLORE_SEED}:{unit.id}")
            space = pl.load_space()
            for _ in range(greedy):
                valid = {p: s for p, s in sizes.items() if s is not None}
                if not valid:
                    break
                best = min(sorted(valid), key=lambda p: valid[p])
                candidate = pl.to_opt(pl.mutate(rng, pl.editable(best, level), space, level, TARGET))
                if candidate not in sizes:
                    run(candidate)
    return rows


def _walk_knobs(sizes: dict, steps: int, run, level: str) -> None:
    """Greedy descent over clang pipeline knobs: each step measures the first untried
    toggle (in the knob table's order) of the best tuned clang pipeline so far; stops
    after `steps` measurements or when the best has no untried toggle."""
    for _ in range(steps):
        tuned = {p: s for p, s in sizes.items() if s is not None and is_tuned_clang(p)}
        if not tuned:
            return
        best = min(sorted(tuned), key=lambda p: tuned[p])
        untried = [p for p in knobs.toggles(best, level, TARGET) if p not in sizes]
        if not untried:
            return
        run(untried[0])


def is_tuned_clang(pipeline: str) -> bool:
    """clang's own pipeline, with or without knobs (and nothing around it)."""
    return knobs.is_element(pipeline)


def run_jobs(jobs: list[Job | None], store: Store, engine: Engine, title: str) -> None:
    """Measure `jobs` (None: a unit not in this machine's corpus) with `engine`; each
    unit's rows go into `store` as they come, so an interrupted step resumes there."""
    jobs = [job for job in jobs if job is not None]
    if not jobs:
        Console(stderr=True).print(f"[green]{title}: nothing left to measure")
        return
    for rows in engine.map(_measure_unit, jobs, title=title, count=len,
                           inputs=lambda job: [job.unit.bitcode]):
        store.append(rows)


# ----------------------------------------------------------------------------- commands


@click.command()
@click.option("--units", "count", default=120, show_default=True, help="Training units to explore.")
@click.option("--random", "n_random", default=40, show_default=True, help="Shared random pipelines.")
@click.option("--greedy", default=6, show_default=True, help="Local edits per unit from its best.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def explore(count: int, n_random: int, greedy: int, jobs: int, backend: str) -> None:
    """Clang's pipeline, shared random pipelines and greedy edits on sampled training units."""
    manifest = load_manifest()
    store = Store()
    layout = Layout.from_environment()
    pipelines = [CLANG_PIPELINE, *BOTH_DEFAULTS] + shared_random_pipelines(n_random)
    by_unit = store.by_unit()
    jobs_list = []
    for u in explore_sample(manifest, count):
        known = by_unit.get(u["id"], {})
        todo, walk = work_left(known, pipelines, greedy)
        if todo:
            jobs_list.append(corpus_job(u, layout, pipelines, known, walk))
    run_jobs(jobs_list, store, Engine(backend, jobs), "explore")


@click.command()
@click.option("--units", "count", default=120, show_default=True, help="Small training units to walk.")
@click.option("--steps", default=40, show_default=True, help="Local edits per unit from its best.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def walk(count: int, steps: int, jobs: int, backend: str) -> None:
    """Long greedy walks on small units from every training project, each starting
    from the same pipelines: clang's, `default<Oz>` and what `explore` found."""
    manifest = load_manifest()
    store = Store()
    layout = Layout.from_environment()
    units = walk_sample(manifest, count)
    start = walk_start()
    by_unit = store.by_unit()
    jobs_list = []
    for u in units:
        known = by_unit.get(u["id"], {})
        todo, left = work_left(known, start, steps)
        if todo:
            jobs_list.append(corpus_job(u, layout, start, known, left))
    run_jobs(jobs_list, store, Engine(backend, jobs), "walk")


@click.command("knobs")
@click.option("--units", "count", default=120, show_default=True, help="Walked units to use.")
@click.option("--steps", default=12, show_default=True, help="Knob toggles per unit from its best.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def knob_walk(count: int, steps: int, jobs: int, backend: str) -> None:
    """On the walked units: clang's pipeline with each knob alone (mlcc/data/clang-knobs.toml),
    then a greedy descent over sets of knobs from each unit's best."""
    manifest = load_manifest()
    store = Store()
    layout = Layout.from_environment()
    start = knob_start()
    by_unit = store.by_unit()
    jobs_list = []
    for u in walk_sample(manifest, count):
        known = by_unit.get(u["id"], {})
        left = max(0, steps - sum(1 for p in known if is_tuned_clang(p) and p not in start))
        if any(p not in known for p in start) or left:
            jobs_list.append(corpus_job(u, layout, start, known, left, knobs_only=True))
    run_jobs(jobs_list, store, Engine(backend, jobs), "knobs")


def knob_start() -> list[str]:
    """clang's pipeline, alone and with each knob alone."""
    return [CLANG_PIPELINE] + [knobs.name([k]) for k in knobs.table()]


def walk_start() -> list[str]:
    """The pipelines every walk starts from, fixed the first time (kept in WALK_UNITS,
    so a new candidate set does not change what resuming measures): clang's,
    `default<Oz>`, and the candidate curve of the explored units, less removed ones.
    At -Os: clang's, both `default<O?>`, and the -Oz curves (explored and walked) both as
    they are and with their `default<Oz>` made `default<Os>`, less what `candidates --wrapped-only` would not choose."""
    stored = json.loads(WALK_UNITS.read_text()) if WALK_UNITS.exists() else {}
    if stored.get("start"):
        return stored["start"]
    if OPT_LEVEL == "z":
        start = [CLANG_PIPELINE, OPT_DEFAULT] + curve_pipelines(CANDIDATES)
    else:
        oz_curve = curve_pipelines(DATA / "candidates-Oz.json") + curve_pipelines(DATA / "candidates-walk-Oz.json")
        start = [CLANG_PIPELINE, *BOTH_DEFAULTS] + [pl.relevel(p, OPT_LEVEL) for p in oz_curve] + oz_curve
        start = [p for p in start if pl.eligible(p) and pl.wraps_default(p)]  # what could be chosen
    start = list(dict.fromkeys(start))
    WALK_UNITS.parent.mkdir(parents=True, exist_ok=True)
    WALK_UNITS.write_text(json.dumps({**stored, "start": start}, indent=1) + "\n")
    return start


def curve_pipelines(path: Path) -> list[str]:
    """The selection curve of a candidates file, less its removed pipelines."""
    chosen = json.loads(path.read_text()) if path.exists() else {}
    removed = {r["pipeline"] for r in chosen.get("removed", [])}
    return [row["pipeline"] for row in chosen.get("curve", []) if row["pipeline"] not in removed]


def work_left(known: dict, pipelines: list[str], walk: int) -> tuple[bool, int]:
    """Resuming a unit: (anything left to measure, greedy edits still to make). Measurements
    not of `pipelines` are the greedy edits already made."""
    left = max(0, walk - sum(1 for p in known if p not in pipelines)) if walk else 0
    return any(p not in known for p in pipelines) or left > 0, left


def greedy_winners(store: Store, explored: list[dict], shared: set[str], limit: int,
                   per_unit: int = 0, only=None) -> list[str]:
    """Pipelines found by the greedy walks that beat their unit's best shared pipeline,
    by bytes saved; with `per_unit`, only each unit's best few (a long walk's steps
    are near copies of each other)."""
    gains: dict[str, float] = defaultdict(float)
    by_unit = store.by_unit()
    for u in explored:
        sizes = {p: s for p, s in by_unit.get(u["id"], {}).items() if s}
        base = min((s for p, s in sizes.items() if p in shared and pl.eligible(p)),
                   default=None)
        if not base:
            continue
        found = sorted((s, p) for p, s in sizes.items()
                       if p not in shared and s < base and pl.eligible(p) and (only is None or only(p)))
        for s, p in found[:per_unit or None]:
            gains[p] += (base - s)
    return [p for p, _ in sorted(gains.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


@click.command()
@click.option("--sample", type=click.Choice(["explore", "walk"]), default="explore", show_default=True)
@click.option("--units", "count", default=0, help="Units of the sample (default: 120 either way).")
@click.option("--random", "n_random", default=40, show_default=True)
@click.option("--limit", default=40, show_default=True, help="Greedy winners to cross-check.")
@click.option("--per-unit", default=0, help="Only each unit's best N winners (0: all).")
@click.option("--knobs", "knobs_only", is_flag=True,
              help="Only the knob walks' winners (`knobs`), on the walked units.")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def crosscheck(sample: str, count: int, n_random: int, limit: int, per_unit: int,
               knobs_only: bool, jobs: int, backend: str) -> None:
    """Measure the greedy walks' winners on every unit of the sample."""
    manifest = load_manifest()
    store = Store()
    layout = Layout.from_environment()
    units = sample_units(manifest, "walk" if knobs_only else sample, count)
    if knobs_only:
        shared = set(knob_start())
        winners = greedy_winners(store, units, shared, limit, per_unit, only=is_tuned_clang)
        winners += [p for p in knob_start() if p not in winners]
    else:
        shared = (set(walk_start()) if sample == "walk" else
                  {CLANG_PIPELINE, *BOTH_DEFAULTS, *shared_random_pipelines(n_random)})
        winners = greedy_winners(store, units, shared, limit, per_unit)
    by_unit = store.by_unit()
    jobs_list = [corpus_job(u, layout, winners, by_unit.get(u["id"], {})) for u in units
                 if any(p not in by_unit.get(u["id"], {}) for p in winners)]
    title = "crosscheck knobs" if knobs_only else f"crosscheck {sample}"
    run_jobs(jobs_list, store, Engine(backend, jobs), title)


def sample_units(manifest: dict, sample: str, count: int = 0) -> list[dict]:
    """The explored or the walked units (120 unless `count` says otherwise)."""
    draw = walk_sample if sample == "walk" else explore_sample
    return draw(manifest, count or 120)


def label_sample(units: list[dict], limit: int) -> list[dict]:
    """The units `label --limit` measures, smallest first: a seeded sample of `limit`
    (all when 0), the same every time."""
    units = sorted(units, key=lambda u: (u["bitcode_bytes"], u["id"]))
    if limit:
        rng = random.Random(EXPLORE_SEED)
        units = sorted(rng.sample(units, min(limit, len(units))),
                       key=lambda u: (u["bitcode_bytes"], u["id"]))
    return units


@click.command()
@click.option("--split", type=click.Choice(["train", "validation", "all"]), default="all")
@click.option("--limit", default=0, help="At most this many units per split (0: all).")
@click.option("--measured", is_flag=True,
              help="Only units the table already has clang's size for (a new candidate set "
                   "labels the same units as the last).")
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def label(split: str, limit: int, measured: bool, jobs: int, backend: str) -> None:
    """Measure clang's pipeline and every chosen candidate on the corpus."""
    manifest = load_manifest()
    store = Store()
    layout = Layout.from_environment()
    candidates = json.loads(CANDIDATES.read_text())["pipelines"]
    pipelines = [CLANG_PIPELINE] + [p for p in candidates if p != CLANG_PIPELINE]
    splits = ("train", "validation") if split == "all" else (split,)
    by_unit = store.by_unit()
    bitcode_of = corpus_bitcode(layout)
    jobs_list = []
    queued: set[str] = set()
    for s in splits:
        units = units_of(manifest, s)
        if measured:
            units = [u for u in units if by_unit.get(u["id"], {}).get(CLANG_PIPELINE)]
        units = label_sample(units, limit)
        counts = slow_pass_sizes([u for u in units if bitcode_of(u).exists()], bitcode_of)
        for u in units:
            known = by_unit.get(u["id"], {})
            run = bounded_pipelines(pipelines, counts.get(u["id"]))
            if u["id"] not in queued and any(p not in known for p in run):
                queued.add(u["id"])  # a file built twice by its project is one unit
                jobs_list.append(corpus_job(u, layout, run, known))
    run_jobs(jobs_list, store, Engine(backend, jobs), f"label {split}")
