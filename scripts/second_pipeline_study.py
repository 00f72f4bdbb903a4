"""Is a second opt pipeline worth running after single-shot, and can the unit say when?

Single-shot on a cross target runs the target's default and its code generation
variants from one opt run, and keeps the smallest object. On the validation units
that leaves much of the room the driver's own search finds (docs/TARGETS.md). This
study asks, offline, what one more opt pipeline per unit would add (clang's own, or
one of the largest trial set's), built always, built where an oracle says it wins,
and built where a classifier learned on the training units says so. The classifier
reads what single-shot already knows when it would decide (issue 28's two-stage idea):
the sizes of the objects it just built (the default's, the smallest, each variant's
against the default's), beside the unit's features before optimization; or the
features alone. It reads only committed data: the code generation sweeps
(`models/data/codegen-sweep-<t>-Oz-{label,validation}.json`), the measurement table
(`measurements-<t>-Oz.jsonl.gz`) and the features (`features-v1-<t>-Oz.jsonl.gz`).

For each rule, on the validation units: the total gain against clang's pipeline,
the files larger than clang's, and the share of units that run the second pipeline
(counted and weighted by instructions, which an opt run's time follows).

    MLCC_LEARN_TARGET=thumbv7m python scripts/second_pipeline_study.py

writes models/data/second-pipeline-<t>-Oz.json (docs/MODEL.md, issue 28's table).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcc import features, targets  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from variant_gate_study import variant_option_sets  # noqa: E402

THRESHOLDS = (0.2, 0.35, 0.5)


def measured(name: str) -> dict[str, dict[str, int]]:
    """unit -> pipeline -> object size, from the target's measurement table."""
    out: dict[str, dict[str, int]] = {}
    with gzip.open(MODELS / "data" / f"measurements-{name}-Oz.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if int(r["size"]) > 0:
                out.setdefault(r["unit"], {})[r["pipeline"]] = int(r["size"])
    return out


def sample_units(name: str, sample: str, default: str, sizes: dict) -> dict:
    """The sample's units as the code generation sweep has them ({unit: {"project",
    "sizes"}}); for a target without a sweep (no variants), the manifest's units of the
    split with the default's size from the measurement table."""
    sweep = MODELS / "data" / f"codegen-sweep-{name}-Oz-{sample}.json"
    if sweep.exists():
        return next(iter(json.loads(sweep.read_text())["by_default"].values()))["units"]
    split = "train" if sample == "label" else sample
    manifest = json.loads((MODELS / "corpus-manifest.json").read_text())
    return {u["id"]: {"project": u["project"], "sizes": {"baseline": sizes[u["id"]].get(default)}}
            for u in manifest["units"] if u["split"] == split and u["id"] in sizes}


def load(name: str, sample: str, sets: list[str], seconds: list[str], feats: dict, sizes: dict) -> dict:
    """Per unit of the sample: features, clang's size, the default's, each variant's,
    and each candidate second pipeline's."""
    units = sample_units(name, sample, targets.named(name).default("z"), sizes)
    rows = []
    for unit, r in units.items():
        s, m = r["sizes"], sizes.get(unit, {})
        if unit not in feats or not s.get("baseline") or not all(s.get(v) for v in sets):
            continue
        if "clang" not in m or not all(p in m for p in seconds):
            continue
        rows.append((feats[unit], r["project"], m["clang"], s["baseline"], [s[v] for v in sets],
                     [m[p] for p in seconds]))
    return {"X": np.array([x for x, *_ in rows]), "project": [p for _, p, *_ in rows],
            "clang": np.array([c for _, _, c, *_ in rows], float),
            "default": np.array([d for *_, d, _, _ in rows], float),
            "variants": np.array([v for *_, v, _ in rows], float).reshape(len(rows), len(sets)),
            "second": np.array([s for *_, s in rows], float)}


def smallest(d: dict) -> np.ndarray:
    """What single-shot keeps today: the smallest of the default and its variants."""
    return np.min(np.column_stack([d["default"], d["variants"]]), axis=1)


def after_single_shot(d: dict) -> np.ndarray:
    """What single-shot knows once it has built its objects: their sizes."""
    single = smallest(d)
    return np.column_stack([np.log1p(d["default"]), np.log1p(single),
                            d["variants"] / d["default"][:, None], single / d["default"]])


def score(run: np.ndarray, j: int, d: dict) -> dict:
    """Single-shot, then the second pipeline `j` on the units where `run` says so."""
    single = smallest(d)
    final = np.where(run, np.minimum(single, d["second"][:, j]), single)
    insts = d["X"][:, features.FEATURE_NAMES.index("TotalInsts")]
    clang = d["clang"]
    gains = {}
    for project, c, f in zip(d["project"], clang, final):
        gains.setdefault(project, [0.0, 0.0])
        gains[project][0] += c
        gains[project][1] += f
    geomean = 100 * (np.exp(np.mean([np.log(c / f) for c, f in gains.values()])) - 1)
    return {"total_gain_pct": round(100 * float((clang.sum() - final.sum()) / clang.sum()), 3),
            "project_geomean_gain_pct": round(float(geomean), 3),
            "larger_than_clang": int((final > clang).sum()),
            "runs_pct": round(100 * float(run.mean()), 1),
            "runs_weighted_pct": round(100 * float((run * insts).sum() / insts.sum()), 1)}


def learned(train: dict, validation: dict, j: int, inputs: str, threshold: float) -> np.ndarray:
    from sklearn.ensemble import GradientBoostingClassifier

    def prepare(d):
        pre = np.log1p(np.maximum(d["X"], 0))
        if inputs == "features":
            return pre
        if inputs == "sizes":
            return after_single_shot(d)
        return np.column_stack([pre, after_single_shot(d)])

    single = smallest(train)
    wins = (train["second"][:, j] < single).astype(int)
    if wins.min() == wins.max():
        return np.full(len(validation["clang"]), bool(wins[0]))
    model = GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0)
    model.fit(prepare(train), wins)
    return model.predict_proba(prepare(validation))[:, 1] >= threshold


def main() -> int:
    name = os.environ.get("MLCC_LEARN_TARGET", "thumbv7m")
    target = targets.named(name)
    sets = variant_option_sets(target) if target.variants("z") else []
    default = target.default("z")
    trial = [p for p in (target.trial_sets("z") or ((),))[-1] if p != default]
    seconds = ["clang", *trial]
    feats = {}
    with gzip.open(MODELS / "data" / f"features-v1-{name}-Oz.jsonl.gz", "rt") as f:
        for line in f:
            entry = json.loads(line)
            feats[entry["unit"]] = np.array(entry["features"], float)
    sizes = measured(name)
    train, validation = (load(name, s, sets, seconds, feats, sizes) for s in ("label", "validation"))
    n = len(validation["clang"])
    none = np.zeros(n, bool)
    result = {"target": name, "default": default, "variants": list(target.variants("z")),
              "second_pipelines": seconds, "train_units": len(train["clang"]), "validation_units": n,
              "single_shot": score(none, 0, validation),
              "single_shot_train": score(np.zeros(len(train["clang"]), bool), 0, train), "rules": {}}
    print(f"{name}: {len(train['clang'])} training units, {n} validation units")
    print(f"  single-shot today: validation {result['single_shot']}")
    print(f"                     training {result['single_shot_train']}")
    for j, second in enumerate(seconds):
        label = "clang's own" if second == "clang" else f"trial pipeline {trial.index(second) + 1}"
        wins = smallest(validation) > validation["second"][:, j]
        rules = {"always": np.ones(n, bool), "oracle": wins}
        for inputs in ("features", "sizes", "features and sizes"):
            for threshold in THRESHOLDS:
                rules[f"learned on {inputs}, p >= {threshold}"] = learned(train, validation, j, inputs, threshold)
        scored = {rule: score(run, j, validation) for rule, run in rules.items()}
        on_train = score(np.ones(len(train["clang"]), bool), j, train)
        result["rules"][second] = {"validation": scored, "train_always": on_train}
        print(f"  + {label}: {second}")
        print(f"    {'always, on the training units':42} total {on_train['total_gain_pct']:+.2f} %  "
              f"geomean {on_train['project_geomean_gain_pct']:+.2f} %  larger {on_train['larger_than_clang']:3}")
        for rule, s in scored.items():
            print(f"    {rule:42} total {s['total_gain_pct']:+.2f} %  geomean {s['project_geomean_gain_pct']:+.2f} %"
                  f"  larger {s['larger_than_clang']:3}  runs {s['runs_pct']:5.1f} % ({s['runs_weighted_pct']:5.1f} % of instructions)")
    out = MODELS / "data" / f"second-pipeline-{name}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
