"""Can a unit's features say which code generation variants are worth building?

Single-shot builds a target's default and each of its code generation variants and
keeps the smallest object (docs/TARGETS.md, "Code generation variants"); every variant
costs one more code generation. This study asks, offline, whether a gate learned on the
training units (or a plain size threshold) could build fewer variants and keep most of
what they save. It reads only committed data: the code generation sweep of each target
(`models/data/codegen-sweep-<t>-Oz-{label,validation}.json`, every option set's object
size per unit) and the units' features (`models/data/features-v1-<t>-Oz.jsonl.gz`).

For each gate it reports, on the validation units: the share of the variants' saving
(against the default alone) that the gate keeps, and the share of the variants' code
generations it runs, weighted by the unit's instructions (what a code generation's time
follows) and counted. Learned gates: one gradient-boosted classifier per variant, "the
variant is smaller than the default", on log1p of the features: all 184 of the model's,
or the three a lean walk could count (instructions, blocks, functions).

    MLCC_LEARN_TARGET=thumbv7m python scripts/variant_gate_study.py

writes models/data/variant-gate-<t>-Oz.json (docs/MODEL.md, issue 28's table).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcc import features, targets  # noqa: E402
from mlcc.learn.candidates.codegen_sweep import option_sets  # noqa: E402
from mlcc.learn.candidates.codegen_variants import knob_edit  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402

CHEAP = ("TotalInsts", "TotalBlocks", "TotalFuncs")
THRESHOLDS = (0.2, 0.35, 0.5)
SIZE_GATES = (500, 1000, 2000, 4000)


def variant_option_sets(target) -> list[str]:
    """The sweep's option set behind each shipped variant of the target's default."""
    default = target.default("z")
    by_pipeline = {}
    for name, args in option_sets(target.name, default).items():
        by_pipeline.setdefault(knob_edit(default, name, args, target.name), name)
    return [by_pipeline[v] for v in target.variants("z")]


def load(target: str, sample: str, sets: list[str], feats: dict) -> dict:
    data = json.loads((MODELS / "data" / f"codegen-sweep-{target}-Oz-{sample}.json").read_text())
    units = next(iter(data["by_default"].values()))["units"]
    rows = [(feats[u], r["sizes"]["baseline"], [r["sizes"].get(s) for s in sets])
            for u, r in units.items()
            if u in feats and r["sizes"].get("baseline") and all(r["sizes"].get(s) for s in sets)]
    return {"X": np.array([x for x, _, _ in rows]), "base": np.array([b for _, b, _ in rows], float),
            "sizes": np.array([s for _, _, s in rows], float)}


def score(run: np.ndarray, d: dict) -> dict:
    """What building the variants in `run` (units x variants) keeps and costs."""
    base, sizes = d["base"], d["sizes"]
    kept = np.minimum(base, np.where(run, sizes, np.inf).min(axis=1))
    every = np.minimum(base, sizes.min(axis=1))
    saving = (base - every).sum()
    insts = d["X"][:, features.FEATURE_NAMES.index("TotalInsts")][:, None]
    return {"kept_pct": round(100 * float((base - kept).sum() / saving), 1) if saving else 100.0,
            "runs_weighted_pct": round(100 * float((run * insts).sum() / (insts.sum() * run.shape[1])), 1),
            "runs_pct": round(100 * float(run.mean()), 1),
            "saved_pct": round(100 * float((base - kept).sum() / base.sum()), 3)}


def learned(train: dict, validation: dict, columns: list[int], threshold: float) -> np.ndarray:
    from sklearn.ensemble import GradientBoostingClassifier

    def prepare(x):
        return np.log1p(np.maximum(x[:, columns], 0))

    run = np.zeros(validation["sizes"].shape, bool)
    for j in range(run.shape[1]):
        wins = (train["sizes"][:, j] < train["base"]).astype(int)
        if wins.min() == wins.max():
            run[:, j] = bool(wins[0])
            continue
        model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
        model.fit(prepare(train["X"]), wins)
        run[:, j] = model.predict_proba(prepare(validation["X"]))[:, 1] >= threshold
    return run


def main() -> int:
    name = os.environ.get("MLCC_LEARN_TARGET", "thumbv7m")
    target = targets.named(name)
    sets = variant_option_sets(target)
    feats = {}
    with gzip.open(MODELS / "data" / f"features-v1-{name}-Oz.jsonl.gz", "rt") as f:
        for line in f:
            entry = json.loads(line)
            feats[entry["unit"]] = np.array(entry["features"], float)
    train, validation = (load(name, s, sets, feats) for s in ("label", "validation"))
    n = validation["sizes"].shape
    insts = validation["X"][:, features.FEATURE_NAMES.index("TotalInsts")]
    gates = {"every variant (shipped)": np.ones(n, bool),
             "only the variants that win (oracle)": validation["sizes"] < validation["base"][:, None]}
    for floor in SIZE_GATES:
        gates[f"units of {floor}+ instructions"] = np.repeat((insts >= floor)[:, None], n[1], 1)
    every = list(range(len(features.FEATURE_NAMES)))
    cheap = [features.FEATURE_NAMES.index(c) for c in CHEAP]
    for label, columns in (("all features", every), ("instructions, blocks, functions", cheap)):
        for threshold in THRESHOLDS:
            gates[f"learned on {label}, p >= {threshold}"] = learned(train, validation, columns, threshold)
    result = {"target": name, "variants": list(target.variants("z")), "option_sets": sets,
              "train_units": len(train["base"]), "validation_units": n[0],
              "gates": {g: score(run, validation) for g, run in gates.items()}}
    out = MODELS / "data" / f"variant-gate-{name}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{name}: {n[0]} validation units, variants {', '.join(sets)}")
    print(f"{'gate':50} {'kept':>6} {'runs (insts)':>13} {'runs':>6}")
    for g, s in result["gates"].items():
        print(f"{g:50} {s['kept_pct']:5.1f}% {s['runs_weighted_pct']:12.1f}% {s['runs_pct']:5.1f}%")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
