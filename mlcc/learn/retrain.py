"""Retrain on your own code: collected units -> measurements -> candidates -> model.

    MLCC_COLLECT=$PWD/units make CC=mlcc CFLAGS=-Oz      # keep every unit's bitcode
    mlcc-tool retrain units -o my-model.onnx              # search, choose, train, export
    MLCC_MODEL=$PWD/my-model.onnx make CC=mlcc CFLAGS=-Oz

The same steps as the bundled model (`make model`), on one or more directories
that `MLCC_COLLECT` filled:

1. every distinct unit; a fixed share of them (chosen by a hash of the units' ids)
   is held out for validation and never searched, selected on or trained on;
2. `explore`: on a sample of the other units, clang's pipeline, the bundled
   model's candidates, shared random pipelines and greedy edits of each
   unit's best; the greedy winners are then measured on every explored unit;
3. the candidate set, by greedy cover of the per-unit best (`candidates.select`);
4. every unit measured with every candidate (`label`);
5. model families compared by cross-validation, the best exported to ONNX with
   the metadata the driver checks, and scored on the held-out units.

Everything measured goes to `<work>` (default: `.mlcc-retrain/` in the first
directory), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

from rich.console import Console

from mlcc import model as runtime
from mlcc.errors import MlccError
from mlcc.learn.candidates import candidates as cands
from mlcc.learn.corpus.manifest import distinct_units, read_units
from mlcc.learn.engine import Engine
from mlcc.learn.measure import Unit
from mlcc.learn.search import search
from mlcc.learn.train import train

LEVELS = ("z", "s")
MIN_TRAIN_UNITS = 8
MIN_UNITS_ALL_FAMILIES = 50


def collected_units(directories: list[Path]) -> list[dict]:
    """The distinct units of `directories`, each with its directory and level."""
    units = []
    for directory in directories:
        if not directory.is_dir():
            raise MlccError(f"{directory}: not a directory (build with MLCC_COLLECT={directory} first)")
        for meta in distinct_units(read_units(directory)):
            bitcode = directory / f"{meta['id']}.bc"
            units.append({"id": meta["id"], "project": directory.name, "dir": str(directory),
                          "level": meta.get("opt_level", ""), "source": meta.get("source", ""),
                          "bitcode_bytes": bitcode.stat().st_size})
    return units


def held_out(units: list[dict], share: float) -> set[str]:
    """The ids of the units kept for validation: `share` of them, by a hash of their ids."""
    ranked = sorted(units, key=lambda u: hashlib.sha256(f"mlcc-holdout:{u['id']}".encode()).digest())
    return {u["id"] for u in ranked[:round(share * len(units))]}


def bundled_candidates(level: str) -> list[str]:
    """The bundled model's candidates for `level` (a good place to start), if there is one."""
    try:
        return list(runtime.load(str(runtime.bundled_model_path(level))).candidates)
    except (OSError, MlccError):
        return []


def run(directories: list[Path], out: Path, *, work: Path | None, level: str | None,
        explore_units: int, n_random: int, greedy: int, k_max: int, holdout: float,
        jobs: int, console: Console, backend: str = "local") -> dict:
    """Search, choose, train and export; return the summary (also written to `<work>`)."""
    units = collected_units(directories)
    levels = Counter(u["level"] for u in units)
    level = level or (levels.most_common(1)[0][0] if levels else "z")
    if level not in LEVELS:
        raise MlccError(f"units were collected at -O{level}; mlcc optimizes -Oz and -Os builds "
                        "(collect with CFLAGS=-Oz or -Os, or pass --level)")
    units = [u for u in units if u["level"] == level]
    held = held_out(units, holdout)
    for u in units:
        u["split"] = "validation" if u["id"] in held else "train"
    training = [u for u in units if u["split"] == "train"]
    if len(training) < MIN_TRAIN_UNITS:
        raise MlccError(f"{len(training)} training units collected at -O{level} in "
                        f"{', '.join(map(str, directories))}: need at least {MIN_TRAIN_UNITS}")
    work = work or directories[0] / ".mlcc-retrain"
    work.mkdir(parents=True, exist_ok=True)
    store = search.Store(work / f"measurements-O{level}.jsonl.gz")
    console.print(f"{len(units)} units at -O{level} from {len(directories)} director"
                  f"{'y' if len(directories) == 1 else 'ies'}: {len(training)} to learn from, "
                  f"{len(units) - len(training)} held out; measurements in {work}")

    # 2. explore a sample of the training units, then cross-check the greedy winners
    rng = random.Random(search.EXPLORE_SEED)
    pool = sorted((u for u in training if u["bitcode_bytes"] <= search.MAX_EXPLORE_BITCODE),
                  key=lambda u: u["id"]) or sorted(training, key=lambda u: u["id"])
    explored = rng.sample(pool, min(explore_units, len(pool)))
    shared = list(dict.fromkeys([search.CLANG_PIPELINE, f"default<O{level}>",
                                 *bundled_candidates(level),
                                 *search.shared_random_pipelines(n_random, level)]))

    def bitcode_of(u: dict) -> Path:
        return Path(u["dir"]) / f"{u['id']}.bc"

    # what decides whether a slow pass may run on a unit (passes.bounded)
    counts = search.slow_pass_sizes(units, bitcode_of, work / "features.jsonl.gz")

    def jobs_for(unit_list: list[dict], pipelines: list[str], walk: int = 0) -> list[search.Job]:
        by_unit = store.by_unit()
        out_jobs = []
        for u in unit_list:
            known = by_unit.get(u["id"], {})
            run = search.bounded_pipelines(pipelines, counts.get(u["id"]))
            todo, left = search.work_left(known, run, walk)
            if todo:
                out_jobs.append(search.Job(Unit.load(Path(u["dir"]), u["id"]), run, known, left, level))
        return out_jobs

    engine = Engine(backend, jobs)
    search.run_jobs(jobs_for(explored, shared, greedy), store, engine, "explore")
    winners = search.greedy_winners(store, explored, set(shared), limit=16)
    search.run_jobs(jobs_for(explored, winners), store, engine, "cross-check")

    # 3. the candidate set
    columns = cands.complete_columns(store, [u["id"] for u in explored], counts)
    if search.CLANG_PIPELINE not in columns:
        raise MlccError("no unit could be measured with clang's own pipeline (see the units' flags)")
    selection = cands.select(columns, k_max=k_max, k_min=min(4, k_max))
    candidates = selection["pipelines"]
    (work / f"candidates-O{level}.json").write_text(
        json.dumps({"opt_level": level, **selection}, indent=1) + "\n")

    # 4. label every unit, 5. train and validate
    search.run_jobs(jobs_for(units, candidates), store, engine, "label")
    train_set, valid_set = train.labeled_splits(units, candidates, store, bitcode_of,
                                                work / "features.jsonl.gz")
    candidates = train_set.candidates
    if len(train_set.units) < MIN_TRAIN_UNITS:
        raise MlccError(f"only {len(train_set.units)} training units could be measured "
                        f"with every candidate: need at least {MIN_TRAIN_UNITS}")
    # Few units: only the tree ensembles (the MLP's early stopping and k-NN need more).
    families = train.FAMILIES if len(train_set.units) >= MIN_UNITS_ALL_FAMILIES else train.TREE_FAMILIES
    fitted = train.fit(train_set, families, console)
    validation = train.validate(fitted, train_set, valid_set)
    unit_ids = "\n".join(sorted(u["id"] for u in units)).encode()
    training_data = {
        "own_code": [str(d) for d in directories],
        "units_sha256": hashlib.sha256(unit_ids).hexdigest(),
        "measurements_sha256": train.file_sha256(store.path),
        "train_units": len(train_set.units), "validation_units": len(valid_set.units),
        "holdout": holdout,
    }
    metadata = train.model_metadata(fitted, train_set, level, training_data, validation)
    digest = train.write_model(fitted, train_set, metadata, out)
    summary = {"model": str(out), "sha256": digest, "opt_level": level, "family": fitted.family,
               "candidates": candidates, "selection": {k: selection[k] for k in (
                   "selection_units", "pipelines_considered", "k", "oracle_all_pct", "best_single")},
               "cv": fitted.cv[fitted.family], "validation": validation, "training_data": training_data}
    (work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    console.print(f"[green]wrote {out} (-O{level}, {fitted.family}, {len(candidates)} candidates, "
                  f"sha256 {digest})")
    train.print_validation(console, validation)
    console.print(f"use it: MLCC_MODEL={out.resolve()} (or -fmlcc-model={out.resolve()})")
    return summary
