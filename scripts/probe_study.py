"""Do behavioural features tell the model which candidate wins? (issue 28, idea 1)

The model reads features of the unit's unoptimized IR, and its choice adds little
over its default (docs/MODEL.md). Behavioural features probe the unit instead: run
a short pipeline on it and read how its features respond. This study runs each probe
of PROBES on every labeled x86-64 unit at -Oz (opt from the unit's collected
bitcode, then `features.extract_features` of the result), keeps the rows in
`models/data/features-probes-v1-x86_64-Oz.jsonl.gz` (a rerun computes only what is
missing) and then trains the shipped learner, extra trees predicting each
candidate's size, on the training projects with each feature set:

- `base`: the features the model reads today;
- `base + <probe>`: with the probe's response, the change of every feature
  (log1p after minus log1p before);
- `base + all probes`;
- `base + all probes, counts`: the response of a few counts only (instructions,
  blocks, calls, memory instructions, functions) per probe.

Each is scored as `train` scores a model (out-of-fold margin, then validation),
for 3 seeds, against the default (candidate 0) and the oracle of the candidates.
The probes' CPU is reported against clang's own pipeline on the same units (opt
and code generation from bitcode, the measurement table's seconds; the front end,
which a compile also runs, is not counted, so the share is an upper bound).

    python scripts/probe_study.py [--jobs 2] [--seeds 3]

writes models/data/probe-study-x86_64-Oz.json (docs/MODEL.md, issue 28's table).
It needs the x86-64 corpus (`make corpus`); units the corpus lacks are left out.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcc import features  # noqa: E402
from mlcc.toolchain import find  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.corpus.manifest import MANIFEST_FILE  # noqa: E402
from mlcc.learn.search import search  # noqa: E402
from mlcc.learn.train import train  # noqa: E402

# Short pipelines, each from the unit's unoptimized bitcode: how much a cleanup finds,
# what inlining does, what merging and outlining find, what loop passes change.
PROBES = {
    "cleanup": "function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg)",
    "inline": "function(sroa,early-cse),cgscc(inline),function(instcombine<no-verify-fixpoint>,simplifycfg)",
    "mergefunc": "function(sroa,early-cse,simplifycfg),mergefunc",
    "outline": "function(sroa,early-cse,simplifycfg),iroutliner",
    "loops": "function(sroa,simplifycfg,loop-simplify,lcssa,loop(loop-rotate),loop-mssa(licm),loop(indvars))",
}
COUNTS = ("TotalInsts", "TotalBlocks", "NumCallInst", "TotalMemInst", "TotalFuncs")
TABLE = search.DATA / f"features-probes-v{features.SCHEMA_VERSION}-{search.TAG}.jsonl.gz"
RESULTS = search.DATA / f"probe-study-{search.TAG}.json"
FAMILY = "extra-trees"


def _probe_rows(args) -> list[dict]:
    """Worker: every probe of PROBES on one unit's bitcode, with its features and seconds."""
    unit_id, bitcode, opt = args
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlcc-probe-") as tmp:
        out = os.path.join(tmp, "probed.bc")
        for name, pipeline in PROBES.items():
            start = time.perf_counter()
            done = subprocess.run([opt, f"-passes={pipeline}", bitcode, "-o", out],
                                  capture_output=True, timeout=120).returncode == 0
            try:
                vector = features.extract_features(out) if done else None
            except features.FeatureError:
                vector = None
            rows.append({"unit": unit_id, "schema": features.schema_hash(), "probe": name,
                         "pipeline": pipeline, "seconds": round(time.perf_counter() - start, 4),
                         "features": None if vector is None else [float(x) for x in vector]})
    return rows


def probe_table(units: list[dict], jobs: int) -> dict[tuple[str, str], dict]:
    """(unit, probe) -> row, from TABLE, computing what it lacks."""
    schema, out = features.schema_hash(), {}
    if TABLE.exists():
        with gzip.open(TABLE, "rt") as f:
            for line in f:
                row = json.loads(line)
                if row["schema"] == schema and PROBES.get(row["probe"]) == row["pipeline"]:
                    out[row["unit"], row["probe"]] = row
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    opt = find("opt")
    missing = [(u["id"], str(bitcode_of(u)), opt) for u in units
               if any((u["id"], p) not in out for p in PROBES) and bitcode_of(u).exists()]
    print(f"probing {len(missing)} units ({len(units)} labeled)", flush=True)
    batch = 200  # appended in batches: an interrupted run keeps what it probed
    with ProcessPoolExecutor(jobs) as pool:
        for start in range(0, len(missing), batch):
            rows = [r for rs in pool.map(_probe_rows, missing[start:start + batch], chunksize=4) for r in rs]
            with open(TABLE, "ab") as f:
                f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0))
            out.update({(r["unit"], r["probe"]): r for r in rows})
            print(f"  {min(start + batch, len(missing))} of {len(missing)}", flush=True)
    return out


def feature_sets(data: train.Dataset, table: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which units have every probe, and each feature set's (transformed) matrix for them."""
    ok = np.array([all(table.get((u["id"], p), {}).get("features") for p in PROBES) for u in data.units])
    base = train.transform(data.X[ok])
    response = {p: train.transform(np.array([table[u["id"], p]["features"]
                                             for u, k in zip(data.units, ok) if k])) - base
                for p in PROBES}
    counts = [features.FEATURE_NAMES.index(c) for c in COUNTS]
    sets = {"base": base}
    sets.update({f"base + {p}": np.hstack([base, r]) for p, r in response.items()})
    sets["base + all probes"] = np.hstack([base, *response.values()])
    sets["base + all probes, counts"] = np.hstack([base, *(r[:, counts] for r in response.values())])
    return ok, sets


def fit(X: np.ndarray, data: train.Dataset, rows, seed: int):
    model = train.make_model(FAMILY, seed)
    return model.fit(X[rows], data.R[rows])


def run(X_tr, tr, X_va, va, seed: int) -> dict:
    """`train`'s procedure on given matrices: out of fold on training, the margin chosen
    there, refitted on all of training, scored on validation."""
    pred = np.zeros_like(tr.R)
    for fit_rows, held in train.fold_splits(tr):
        pred[held] = fit(X_tr, tr, fit_rows, seed).predict(X_tr[held])
    margin = train.best_margin(tr, pred)
    chosen = train.choose(fit(X_tr, tr, slice(None), seed).predict(X_va), margin)
    on_valid = train.score(va, chosen)
    return {"seed": seed, "margin": margin,
            "cv_total_gain_pct": round(train.score(tr, train.choose(pred, margin))["total_gain_pct"], 3),
            "validation_total_gain_pct": round(on_valid["total_gain_pct"], 3),
            "validation_project_geomean_gain_pct": round(on_valid["project_geomean_gain_pct"], 3),
            "validation_larger": on_valid["larger_units"],
            "validation_left_on_default": int((chosen == 0).sum())}


def clang_seconds(units: set[str]) -> float:
    """opt + code generation seconds of clang's pipeline on `units` (the measurement table)."""
    total = 0.0
    with gzip.open(search.MEASUREMENTS, "rt") as f:
        for line in f:
            row = json.loads(line)
            if row["pipeline"] == search.CLANG_PIPELINE and row["unit"] in units and row.get("seconds"):
                total += float(row["seconds"])
    return total


@click.command()
@click.option("--jobs", default=2, show_default=True)
@click.option("--seeds", default=3, show_default=True)
def main(jobs: int, seeds: int) -> None:
    manifest = json.loads(MANIFEST_FILE.read_text())
    candidates = json.loads(search.CANDIDATES.read_text())["pipelines"]
    tr, va = train.labeled_splits(manifest["units"], candidates, search.Store(),
                                  search.corpus_bitcode(Layout.from_environment()))
    table = probe_table(tr.units + va.units, jobs)
    ok_tr, sets_tr = feature_sets(tr, table)
    ok_va, sets_va = feature_sets(va, table)
    tr, va = tr.subset(ok_tr), va.subset(ok_va)
    probed = {u["id"] for u in tr.units + va.units}
    seconds = {p: sum(table[u, p]["seconds"] for u in probed) for p in PROBES}
    clang = clang_seconds(probed)
    default = train.score(va, np.zeros(len(va.units), dtype=int))
    result = {"family": FAMILY, "probes": PROBES, "train_units": len(tr.units),
              "validation_units": len(va.units), "candidates": tr.candidates,
              "validation_default": {k: round(default[k], 3) for k in
                                     ("total_gain_pct", "project_geomean_gain_pct", "oracle_total_gain_pct")},
              "probe_seconds": {p: round(s, 1) for p, s in seconds.items()},
              "clang_seconds": round(clang, 1),
              "probe_share_of_clang_pct": {p: round(100 * s / clang, 1) for p, s in seconds.items()},
              "sets": {}}
    print(f"{len(tr.units)} training, {len(va.units)} validation units; default "
          f"{default['total_gain_pct']:+.2f} %, oracle {default['oracle_total_gain_pct']:+.2f} %")
    for name in sets_tr:
        runs = [run(sets_tr[name], tr, sets_va[name], va, seed) for seed in range(seeds)]
        mean = {k: round(float(np.mean([r[k] for r in runs])), 3)
                for k in ("validation_total_gain_pct", "validation_project_geomean_gain_pct")}
        result["sets"][name] = {"runs": runs, "mean": mean}
        print(f"  {name:28} validation {mean['validation_total_gain_pct']:+.2f} % "
              f"(geomean {mean['validation_project_geomean_gain_pct']:+.2f} %)", flush=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
