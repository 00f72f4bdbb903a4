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

    MLCC_LEARN_TARGET=thumbv7m python scripts/second_pipeline_study.py [--optimized] [--knob-builds]

writes models/data/second-pipeline-<t>-Oz.json (docs/MODEL.md, issue 28's table).
`--optimized` also gives the classifier the features of the default's optimized
module (what a second stage reads after the one opt run single-shot does anyway).
`--knob-builds` also scores clang's pipeline with one code generation knob
(`clang[<knob>]`, every `codegen` knob of the target in `mlcc/data/clang-knobs.toml`)
as a third build beside clang's own: it shares clang's opt run and costs one code
generation. The units lacking them are measured first (the corpus is needed; the
rows go into the measurement table, two units at a time).
The optimized features need the target's corpus (`make corpus`, then `python -m mlcc.learn.corpus
derive --target <t>`): each unit's default is run once with opt and its module read,
and the rows are kept in `models/data/features-optimized-v1-<t>-Oz.jsonl.gz` (a rerun
reads them back; units it lacks are computed, two at a time).
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

from mlcc import features, knobs, targets  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.search import search  # noqa: E402
from variant_gate_study import variant_option_sets  # noqa: E402

THRESHOLDS = (0.2, 0.35, 0.5)


def _optimized_row(args) -> dict | None:
    """One unit's features after the target's default (bounded as the driver bounds
    it): a row of the optimized-features table, or None when the unit cannot be read."""
    import tempfile

    from mlcc import passes
    from mlcc.learn import measure

    unit_dir, unit_id, default, instructions = args
    try:
        unit = measure.Unit.load(Path(unit_dir), unit_id)
    except (OSError, ValueError, KeyError):
        return None
    with tempfile.TemporaryDirectory(prefix="mlcc-optfeat-") as tmp:
        try:
            prep = measure.prepare(unit, tmp)
        except Exception:  # a unit whose tools fail has no row
            return None
        out = str(Path(tmp) / "optimized.bc")
        if not measure.optimize(prep, passes.bounded(default, instructions), out):
            return None
        try:
            vector = features.extract_features(out)
        except features.FeatureError:
            return None
    return {"unit": unit_id, "schema": features.schema_hash(), "default": default,
            "features": [float(x) for x in vector]}


def optimized_features(name: str, wanted: dict) -> dict:
    """unit -> features of its default's optimized module, for the units of `wanted`
    ({unit: (project, instructions)}), from the table, computing what it lacks."""
    from concurrent.futures import ProcessPoolExecutor

    from mlcc.learn.corpus.layout import Layout

    table = MODELS / "data" / f"features-optimized-v{features.SCHEMA_VERSION}-{name}-Oz.jsonl.gz"
    default, schema = targets.named(name).default("z"), features.schema_hash()
    out = {}
    if table.exists():
        with gzip.open(table, "rt") as f:
            for line in f:
                row = json.loads(line)
                if row["schema"] == schema and row["default"] == default:
                    out[row["unit"]] = np.array(row["features"], float)
    layout = Layout.from_environment()
    missing = [(str(layout.units(project, "z", name)), unit, default, instructions)
               for unit, (project, instructions) in wanted.items() if unit not in out]
    if missing:
        print(f"  optimizing {len(missing)} units with the default for their features", flush=True)
        with ProcessPoolExecutor(2) as pool:
            rows = [r for r in pool.map(_optimized_row, missing, chunksize=4) if r]
        with open(table, "ab") as f:
            f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode(), mtime=0))
        out.update({r["unit"]: np.array(r["features"], float) for r in rows})
    return out


def measured(name: str) -> dict[str, dict[str, int]]:
    """unit -> pipeline -> object size, from the target's measurement table (failures left out)."""
    table = search.Store(MODELS / "data" / f"measurements-{name}-Oz.jsonl.gz")
    return {unit: {p: size for p, size in sizes.items() if size}
            for unit, sizes in table.by_unit().items()}


def knob_builds(name: str) -> list[str]:
    """clang's pipeline with each code generation knob the target may use."""
    return [f"clang[{k}]" for k, edit in knobs.table().items()
            if edit.get("codegen") and name in edit.get("targets", [name])]


def measure_missing(name: str, pipelines: list[str]) -> None:
    """Measure `pipelines` on the training and validation units of the target's corpus
    that lack them, into its measurement table (resumable: each unit's rows as they come)."""
    from mlcc.learn.corpus.layout import Layout
    from mlcc.learn.engine import Engine

    store = search.Store(MODELS / "data" / f"measurements-{name}-Oz.jsonl.gz")
    have, layout = store.by_unit(), Layout.from_environment()
    manifest = search.load_manifest()
    units = search.units_of(manifest, "train") + search.units_of(manifest, "validation")
    jobs = [search.corpus_job(u, layout, [p for p in pipelines if p not in have.get(u["id"], {})],
                              have.get(u["id"], {}))
            for u in units if "clang" in have.get(u["id"], {})
            and any(p not in have[u["id"]] for p in pipelines)]
    search.run_jobs(jobs, store, Engine("local", 2), f"clang's pipeline with a knob ({name})")


def sample_units(name: str, sample: str, default: str, sizes: dict) -> dict:
    """The sample's units as the code generation sweep has them ({unit: {"project",
    "sizes"}}); for a target without a sweep (no variants), the manifest's units of the
    split with the default's size from the measurement table."""
    sweep = MODELS / "data" / f"codegen-sweep-{name}-Oz-{sample}.json"
    if sweep.exists():
        return next(iter(json.loads(sweep.read_text())["by_default"].values()))["units"]
    split = "train" if sample == "label" else sample
    return {u["id"]: {"project": u["project"], "sizes": {"baseline": sizes[u["id"]].get(default)}}
            for u in search.units_of(search.load_manifest(), split) if u["id"] in sizes}


def load(name: str, sample: str, sets: list[str], seconds: list[str], feats: dict, sizes: dict) -> dict:
    """Per unit of the sample: features, clang's size, the default's, each variant's,
    and each candidate second pipeline's."""
    units = sample_units(name, sample, targets.named(name).default("z"), sizes)
    rows, ids = [], []
    for unit, r in units.items():
        s, m = r["sizes"], sizes.get(unit, {})
        if unit not in feats or not s.get("baseline") or not all(s.get(v) for v in sets):
            continue
        if "clang" not in m or not all(p in m for p in seconds):
            continue
        rows.append((feats[unit], r["project"], m["clang"], s["baseline"], [s[v] for v in sets],
                     [m[p] for p in seconds]))
        ids.append(unit)
    return {"unit": ids, "X": np.array([x for x, *_ in rows]), "project": [p for _, p, *_ in rows],
            "clang": np.array([c for _, _, c, *_ in rows], float),
            "default": np.array([d for *_, d, _, _ in rows], float),
            "variants": np.array([v for *_, v, _ in rows], float).reshape(len(rows), len(sets)),
            "second": np.array([s for *_, s in rows], float)}


def keep(d: dict, mask: list[bool]) -> dict:
    """The rows of `d` where `mask` holds."""
    m = np.array(mask)
    return {k: ([x for x, ok in zip(v, mask) if ok] if isinstance(v, list) else v[m]) for k, v in d.items()}


def smallest(d: dict) -> np.ndarray:
    """What single-shot keeps today: the smallest of the default and its variants."""
    return np.min(np.column_stack([d["default"], d["variants"]]), axis=1)


def after_single_shot(d: dict) -> np.ndarray:
    """What single-shot knows once it has built its objects: their sizes."""
    single = smallest(d)
    return np.column_stack([np.log1p(d["default"]), np.log1p(single),
                            d["variants"] / d["default"][:, None], single / d["default"]])


def score(run: np.ndarray, j: int, d: dict, with_clang: bool = False) -> dict:
    """Single-shot, then the second pipeline `j` on the units where `run` says so (and
    clang's pipeline, column 0, on every unit `with_clang`)."""
    single = smallest(d)
    if with_clang:
        single = np.minimum(single, d["second"][:, 0])
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
        if inputs == "optimized features and sizes":
            return np.column_stack([np.log1p(np.maximum(d["optimized"], 0)), after_single_shot(d)])
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
    knob_pipelines = knob_builds(name) if "--knob-builds" in sys.argv[1:] else []
    if knob_pipelines:
        measure_missing(name, knob_pipelines)
        seconds += knob_pipelines
    feats = {}
    with gzip.open(MODELS / "data" / f"features-v1-{name}-Oz.jsonl.gz", "rt") as f:
        for line in f:
            entry = json.loads(line)
            feats[entry["unit"]] = np.array(entry["features"], float)
    sizes = measured(name)
    train, validation = (load(name, s, sets, seconds, feats, sizes) for s in ("label", "validation"))
    optimized = "--optimized" in sys.argv[1:]
    if optimized:
        insts = features.FEATURE_NAMES.index("TotalInsts")
        wanted = {u: (p, float(x[insts])) for d in (train, validation)
                  for u, p, x in zip(d["unit"], d["project"], d["X"])}
        table = optimized_features(name, wanted)
        train, validation = (keep(d, [u in table for u in d["unit"]]) for d in (train, validation))
        for d in (train, validation):
            d["optimized"] = np.array([table[u] for u in d["unit"]])
    n = len(validation["clang"])
    none = np.zeros(n, bool)
    result = {"target": name, "default": default, "variants": list(target.variants("z")),
              "optimized_features": optimized,
              "second_pipelines": seconds, "train_units": len(train["clang"]), "validation_units": n,
              "single_shot": score(none, 0, validation),
              "single_shot_train": score(np.zeros(len(train["clang"]), bool), 0, train), "rules": {}}
    print(f"{name}: {len(train['clang'])} training units, {n} validation units")
    print(f"  single-shot today: validation {result['single_shot']}")
    print(f"                     training {result['single_shot_train']}")
    for j, second in enumerate(seconds):
        label = ("clang's own" if second == "clang" else "clang's with a knob" if second in knob_pipelines
                 else f"trial pipeline {trial.index(second) + 1}")
        wins = smallest(validation) > validation["second"][:, j]
        rules = {"always": np.ones(n, bool), "oracle": wins}
        for inputs in () if second in knob_pipelines else ("features", "sizes", "features and sizes",
                       *(("optimized features and sizes",) if optimized else ())):
            for threshold in THRESHOLDS:
                rules[f"learned on {inputs}, p >= {threshold}"] = learned(train, validation, j, inputs, threshold)
        scored = {rule: score(run, j, validation) for rule, run in rules.items()}
        on_train = score(np.ones(len(train["clang"]), bool), j, train)
        result["rules"][second] = {"validation": scored, "train_always": on_train}
        print(f"  + {label}: {second}")
        print(f"    {'always, on the training units':42} total {on_train['total_gain_pct']:+.2f} %  "
              f"geomean {on_train['project_geomean_gain_pct']:+.2f} %  larger {on_train['larger_than_clang']:3}")
        if second != "clang":  # a third build: clang's pipeline and this one, always
            third = {sample: score(np.ones(len(d["clang"]), bool), j, d, with_clang=True)
                     for sample, d in (("train", train), ("validation", validation))}
            result["rules"][second]["with_clang_always"] = third
            label3 = "with clang's too, always: training"
            print(f"    {label3:42} total {third['train']['total_gain_pct']:+.2f} %"
                  f"  validation {third['validation']['total_gain_pct']:+.2f} %")
        for rule, s in scored.items():
            print(f"    {rule:42} total {s['total_gain_pct']:+.2f} %  geomean {s['project_geomean_gain_pct']:+.2f} %"
                  f"  larger {s['larger_than_clang']:3}  runs {s['runs_pct']:5.1f} % ({s['runs_weighted_pct']:5.1f} % of instructions)")
    out = MODELS / "data" / f"second-pipeline-{name}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
