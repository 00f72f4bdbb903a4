"""Train the size model: for each candidate pipeline, the unit's size relative
to clang's pipeline, predicted from the IR features; export it to ONNX with
everything needed to trust it in its metadata.

Inputs: the manifest (units and their split), the measurement table and the
candidates (`models/data/`). Features are extracted once per unit and kept in
`models/data/features-v<schema>.jsonl.gz`, committed with the measurements.
Model families are compared by cross-validation grouped by project on the
training projects; validation projects are only used by the report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from rich.console import Console

from mlcc import features, knobs, model_file, passes, targets
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import search

MODEL_FILE = Path(str(model_file.bundled_path(search.OPT_LEVEL, search.TARGET)))
FAILED_RATIO = 1.5   # a pipeline that failed on a unit counts as this much larger


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """Units with a clang size and a size for every candidate."""

    units: list[dict]
    X: np.ndarray          # raw features
    R: np.ndarray          # size / clang's size, per candidate (failures: FAILED_RATIO)
    clang: np.ndarray      # clang's size in bytes
    candidates: list[str]
    code: np.ndarray | None = None  # of clang's bytes, those not initialized data (data_share)
    T: np.ndarray | None = None     # seconds of opt and code generation, per candidate (NaN: none measured)
    C: np.ndarray | None = None     # of those, code generation's alone (NaN: not recorded)

    def subset(self, mask) -> "Dataset":
        idx = np.flatnonzero(mask)
        return Dataset([self.units[i] for i in idx], self.X[idx], self.R[idx],
                       self.clang[idx], self.candidates, None if self.code is None else self.code[idx],
                       None if self.T is None else self.T[idx], None if self.C is None else self.C[idx])

    @property
    def groups(self) -> np.ndarray:
        return np.array([u["project"] for u in self.units])

    def folds(self) -> np.ndarray:
        """Cross-validation groups: projects, but projects that hold the same unit (the
        GNU tools share gnulib's files) are one group, so no unit is ever scored by a
        model that saw its twin."""
        parent = {p: p for p in self.groups}

        def root(p: str) -> str:
            while parent[p] != p:
                p = parent[p]
            return p

        first_seen: dict[bytes, str] = {}
        for project, row in zip(self.groups, self.X):
            twin = first_seen.setdefault(row.tobytes(), project)
            parent[root(project)] = root(twin)
        return np.array([root(p) for p in self.groups])


def build_dataset(units: list[dict], candidates: list[str], store: search.Store,
                  bitcode_of, table: Path = search.FEATURES_TABLE) -> Dataset:
    """The units measured with clang's pipeline and every candidate, with their features."""
    by_unit = store.by_unit()
    # features only for units that can be complete: each candidate measured as itself or
    # without its slow passes
    measured = [u for u in units if by_unit.get(u["id"], {}).get(search.CLANG_PIPELINE)
                and all(p in by_unit[u["id"]] or passes.bounded(p, math.inf) in by_unit[u["id"]]
                        for p in candidates)]
    feats = search.feature_table(measured, bitcode_of, table)
    # the sizes of what mlcc runs for each candidate on each unit (passes.bounded)
    slow_size = {u["id"]: features.slow_pass_size(feats[u["id"]], search.OPT_LEVEL)
                 for u in measured if u["id"] in feats}
    by_unit = {unit: search.as_run(by_unit[unit], size) for unit, size in slow_size.items()}
    seconds = store.seconds_by_unit()
    seconds = {unit: search.as_run(seconds[unit], size) for unit, size in slow_size.items()}
    codegen = store.seconds_by_unit(codegen_only=True)
    codegen = {unit: search.as_run(codegen[unit], size) for unit, size in slow_size.items()}
    labeled = [u for u in measured if u["id"] in by_unit and all(p in by_unit[u["id"]] for p in candidates)]
    X = np.stack([feats[u["id"]] for u in labeled]) if labeled else np.zeros((0, len(features.FEATURE_NAMES)))
    clang = np.array([by_unit[u["id"]][search.CLANG_PIPELINE] for u in labeled], dtype=np.float64)
    R = np.array([[(by_unit[u["id"]][p] / by_unit[u["id"]][search.CLANG_PIPELINE])
                   if by_unit[u["id"]][p] else FAILED_RATIO for p in candidates]
                  for u in labeled], dtype=np.float64).reshape(len(labeled), len(candidates))
    def table(of: dict) -> np.ndarray:
        return np.array([[of[u["id"]].get(p) if of[u["id"]].get(p) is not None else np.nan
                          for p in candidates] for u in labeled],
                        dtype=np.float64).reshape(len(labeled), len(candidates))

    return Dataset(labeled, X, R, clang, candidates, T=table(seconds), C=table(codegen))


def labeled_splits(units: list[dict], candidates: list[str], store: search.Store, bitcode_of,
                   table: Path = search.FEATURES_TABLE, default: str | None = None) -> tuple[Dataset, Dataset]:
    """The training and validation units measured with every candidate, the default moved
    to the front: candidate 0 is what a unit gets unless another is predicted smaller.
    It is `default` when given (a target's shipped default, which its model must beat),
    else the best tuned clang pipeline on the training units (`default_first`)."""
    data = build_dataset(units, candidates, store, bitcode_of, table)
    if default is not None:
        candidates = [default] + [c for c in candidates if c != default]
    else:
        candidates = default_first(candidates, data.subset([u["split"] == "train" for u in data.units]))
    data = build_dataset(units, candidates, store, bitcode_of, table)
    return (data.subset([u["split"] == "train" for u in data.units]),
            data.subset([u["split"] == "validation" for u in data.units]))


# ----------------------------------------------------------------------------- models


def transform(X: np.ndarray) -> np.ndarray:
    """The feature transform the model expects (recorded in its metadata)."""
    return model_file.transform(X)


def make_model(family: str, seed: int = 0):
    """An unfitted estimator of `family` (a weighted family is its base family)."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for weighting in WEIGHTINGS:
        family = family.removesuffix(weighting)
    if family == "extra-trees":
        return ExtraTreesRegressor(n_estimators=48, max_depth=10, min_samples_leaf=3,
                                   max_features=0.5, random_state=seed, n_jobs=2)
    if family == "random-forest":
        return RandomForestRegressor(n_estimators=48, max_depth=10, min_samples_leaf=3,
                                     max_features=0.5, random_state=seed, n_jobs=2)
    if family == "knn":
        return make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=8, weights="distance"))
    if family == "mlp":
        return make_pipeline(StandardScaler(), MLPRegressor(
            hidden_layer_sizes=(64,), alpha=1e-2, max_iter=800, early_stopping=True,
            random_state=seed))
    raise ValueError(family)


# A family ending in BY_BYTES fits each training unit with the weight of its bytes under
# clang's pipeline: the objective is the total of bytes, where one large file counts as much
# as many small ones, while an unweighted fit lets the many small files decide.
BY_BYTES = "-by-bytes"
# The same with each weight capped at the 99th percentile of the fitted units' bytes, so no
# one unit (pixman's 8 MiB affine-bench held half the -Oz weight) decides the fit. Measured
# (`python -m mlcc.learn.train variants`), not among the FAMILIES that `train` compares.
BY_CAPPED_BYTES = "-by-capped-bytes"
CAP_QUANTILE = 0.99
# Weighted by the bytes that are not initialized data in clang's object, the bytes a pipeline
# can change (`Dataset.code`, from `python -m mlcc.learn.search data-share`). Measured, not compared by `train`.
BY_CODE_BYTES = "-by-code-bytes"
WEIGHTINGS = (BY_BYTES, BY_CAPPED_BYTES, BY_CODE_BYTES)
TREE_FAMILIES = ("extra-trees", "random-forest")
FAMILIES = TREE_FAMILIES + ("knn", "mlp") + tuple(f + BY_BYTES for f in TREE_FAMILIES)


def unit_weights(family: str, clang: np.ndarray, code: np.ndarray | None = None) -> np.ndarray | None:
    """The sample weights `family` fits with (None: every unit the same)."""
    if family.endswith(BY_CAPPED_BYTES):
        clang = np.minimum(clang, np.quantile(clang, CAP_QUANTILE))
    elif family.endswith(BY_CODE_BYTES):
        if code is None:
            raise ValueError(f"{family} needs each unit's code bytes (python -m mlcc.learn.search data-share)")
        clang = np.maximum(code, 1.0)
    elif not family.endswith(BY_BYTES):
        return None
    return clang / clang.mean()


def fit_model(family: str, data: "Dataset", rows=slice(None), seed: int = 0):
    """`family`'s estimator fitted on `data`'s `rows`."""
    model = make_model(family, seed)
    X, R = transform(data.X[rows]), data.R[rows]
    weights = unit_weights(family, data.clang[rows], None if data.code is None else data.code[rows])
    return model.fit(X, R) if weights is None else model.fit(X, R, sample_weight=weights)


def choose(pred: np.ndarray, margin: float) -> np.ndarray:
    """Index of the chosen candidate per unit: the predicted smallest, unless it is
    not predicted at least `margin` smaller than the default (candidate 0)."""
    best = pred.argmin(axis=1)
    keep_default = pred[np.arange(len(pred)), best] > pred[:, 0] - margin
    best[keep_default] = 0
    return best


def default_candidate(data: Dataset, tuned_only: bool = False) -> int:
    """The best single fixed candidate: the best mean over training projects of the
    project's total gain. Each project weighs the same: a total over units lets one huge
    unit pick a pipeline that does nothing elsewhere (docs/MODEL.md, "The default").
    `tuned_only`: among clang's own pipeline and its tuned forms (`clang[...]` alone)
    with knobs the level's searches may add (not the trials' code generation twins at
    -Os, mlcc/learn/candidates/codegen_twins.py)."""
    gains = mean_project_gain(data.R * data.clang[:, None], data.clang, data.groups)
    if tuned_only:
        tuned = [i for i, p in enumerate(data.candidates)
                 if knobs.is_element(p) and not knobs.barred(p, search.OPT_LEVEL)]
        return max(tuned, key=lambda i: (gains[i], -i))
    return int(np.argmax(gains))


def mean_project_gain(sizes: np.ndarray, clang: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each column of `sizes` (units x pipelines, bytes): the mean over projects of
    the project's total gain against clang's pipeline (a fraction; each project weighs
    the same)."""
    projects = sorted(set(groups))
    gains = np.zeros(sizes.shape[1])
    for project in projects:
        rows = groups == project
        gains += 1.0 - sizes[rows].sum(axis=0) / clang[rows].sum()
    return gains / max(len(projects), 1)


def default_first(candidates: list[str], train: Dataset) -> list[str]:
    """`candidates` with the default moved to the front: what a unit gets unless the
    model predicts better, so it runs on almost every file. It is the best tuned clang
    pipeline (`default_candidate` on `train`, `tuned_only`): passes around clang's, found
    on small units, cost opt time on every file: with such a default, the benchmark
    projects' -Oz build spent 21 % more time in opt for 0.26 points (docs/MODEL.md,
    "Mined candidates")."""
    default = default_candidate(train, tuned_only=True)
    return [candidates[default]] + [c for i, c in enumerate(candidates) if i != default]


def score(data: Dataset, chosen: np.ndarray) -> dict:
    """Total and geomean gain over clang of a choice, and what the oracle would get.
    `geomean_gain_pct` is over units; `project_geomean_gain_pct` over projects' totals
    (each project weighs the same: what docs/TARGETS.md reports)."""
    sizes = data.R[np.arange(len(chosen)), chosen] * data.clang
    oracle = data.R.min(axis=1) * data.clang
    total_clang = data.clang.sum()
    ratio = sizes / data.clang
    default = data.R[:, 0] * data.clang
    groups = data.groups
    project_ratios = [sizes[groups == p].sum() / data.clang[groups == p].sum() for p in sorted(set(groups))]
    return {
        "units": int(len(chosen)),
        "projects": len(project_ratios),
        "total_gain_pct": float(100.0 * (total_clang - sizes.sum()) / total_clang),
        "geomean_gain_pct": float(100.0 * (1 - np.exp(np.mean(np.log(ratio))))),
        "project_geomean_gain_pct": float(100.0 * (1 - np.exp(np.mean(np.log(project_ratios)))))
        if project_ratios else 0.0,
        "oracle_total_gain_pct": float(100.0 * (total_clang - oracle.sum()) / total_clang),
        "larger_units": int((ratio > 1.0 + 1e-12).sum()),
        "larger_than_default_units": int((sizes > default * (1.0 + 1e-12)).sum()),
        "worst_ratio": float(ratio.max()) if len(ratio) else 1.0,
    }


def fold_splits(data: Dataset, folds: int = 5):
    """(fit rows, held-out rows) of each fold, folds grouped by project (`Dataset.folds`)."""
    from sklearn.model_selection import GroupKFold

    groups = data.folds()
    if len(set(groups)) < 3:  # one project (your own code): folds of units instead
        groups = np.arange(len(data.units)) % folds
    return GroupKFold(n_splits=min(folds, len(set(groups)))).split(data.X, data.R, groups)


def cross_validate(data: Dataset, family: str, folds: int = 5, seed: int = 0,
                   fit=None) -> tuple[np.ndarray, dict]:
    """Out-of-fold predictions (`fold_splits`); `fit` (default `fit_model`) fits a fold."""
    fit = fit or fit_model
    pred = np.zeros_like(data.R)
    for train_idx, test_idx in fold_splits(data, folds):
        model = fit(family, data, train_idx, seed)
        pred[test_idx] = model.predict(transform(data.X[test_idx]))
    return pred, {}


MARGINS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05)
# Single-shot may make a file larger than the default pipeline would; out of fold, at
# most this share of the training units may be. Without the bound, the best total comes from a
# few big wins (one project, pixman, held most of them) bought with a fifth of the
# files made larger.
MAX_LARGER_SHARE = 0.05


def best_margin(data: Dataset, pred: np.ndarray) -> float:
    """The margin with the best total among those within MAX_LARGER_SHARE (else the
    margin that makes the fewest files larger)."""
    scores = {m: score(data, choose(pred, m)) for m in MARGINS}
    bounded = [m for m in MARGINS
               if scores[m]["larger_than_default_units"] <= MAX_LARGER_SHARE * len(data.units)]
    if not bounded:
        return min(MARGINS, key=lambda m: (scores[m]["larger_than_default_units"], m))
    return max(bounded, key=lambda m: (scores[m]["total_gain_pct"], -m))


# What CPU is worth when trial sets are chosen: mean project gain (a fraction) given up
# for one build of clang's own pipeline less per unit (`set_cost`). The sets chosen by
# size alone kept `-fmlcc-trials=3` at 2.56x (-Oz) and 2.75x (-Os) clang's build CPU
# on the bench projects, over issue 26's 2.5x; at this price the -Oz set gives up
# 0.05 points on the training projects for 6 % fewer build seconds, the -Os set 0.31
# points for 24 % fewer (its size-only set ran the IR outliner in all three pipelines).
# docs/MODEL.md, "Trials under a CPU budget", has the sets' sizes and costs.
TRIAL_BUILD_PRICE = 0.005


def set_cost(data: Dataset, cols: tuple[int, ...]) -> float:
    """The seconds of opt and code generation of `cols` on the units of `data` measured
    with them all and with clang's pipeline, per second of clang's pipeline on those
    units: how many builds of clang's pipeline the set costs (0 when nothing is timed).
    Candidates with the same opt part (`knobs.opt_part`) share one opt run, as trials
    build them: each but one costs its code generation alone (`opt_shared_seconds`)."""
    clang = data.candidates.index(search.CLANG_PIPELINE)
    if data.T is None:
        return 0.0
    times = data.T[:, [clang, *cols]]
    whole = ~np.isnan(times).any(axis=1)
    base = times[whole, 0].sum()
    if base <= 0:
        return 0.0
    shared = opt_shared_seconds(data, (clang, *cols))
    return float((times[whole, 1:].sum() - shared[whole].sum()) / base)


def opt_shared_seconds(data: Dataset, cols: tuple[int, ...]) -> np.ndarray:
    """Per unit, the opt seconds trials do not spend on `cols` because candidates with the
    same opt part share one opt run. A member's opt seconds are its seconds less its code
    generation's, where its rows recorded those. In each group of two or more, every
    member with a record saves its opt seconds; a member without one runs the opt (its
    seconds hold it), and when all have records, one opt run of their mean is spent."""
    saved = np.zeros(len(data.units))
    if data.C is None:
        return saved
    groups: dict[str, list[int]] = {}
    for c in cols:
        groups.setdefault(knobs.opt_part(data.candidates[c]), []).append(c)
    for members in groups.values():
        if len(members) < 2:
            continue
        opt = data.T[:, members] - data.C[:, members]  # NaN where code generation's were not recorded
        known = ~np.isnan(opt)
        recorded = np.where(known, opt, 0.0).sum(axis=1)
        everyone = known.all(axis=1)
        saved += recorded - np.where(everyone, recorded / len(members), 0.0)
    return saved


def best_fixed_set(data: Dataset, k: int, price: float = TRIAL_BUILD_PRICE) -> tuple[int, ...]:
    """The `k` candidates besides clang's pipeline whose best, with clang's, has the best
    mean project gain on `data` (`mean_project_gain`) less `price` per build of clang's
    pipeline that they cost (`set_cost`): trials without a model."""
    clang = data.candidates.index(search.CLANG_PIPELINE)
    others = [i for i in range(len(data.candidates)) if i != clang]

    def worth(cols: tuple[int, ...]) -> float:
        gain = float(mean_project_gain(set_sizes(data, cols)[:, None], data.clang, data.groups)[0])
        return gain - price * set_cost(data, cols)

    return max(itertools.combinations(others, min(k, len(others))), key=worth)


def set_sizes(data: Dataset, cols: tuple[int, ...]) -> np.ndarray:
    """Each unit's bytes when it keeps the smallest of clang's pipeline and `cols`."""
    clang = data.candidates.index(search.CLANG_PIPELINE)
    return data.R[:, [clang, *cols]].min(axis=1) * data.clang


def trial_sets(data: Dataset) -> list[list[str]]:
    """For K = 1, 2, ...: the candidates `-fmlcc-trials=K` builds beside clang's pipeline,
    chosen together on the training projects (`best_fixed_set`). A set chosen together
    covers different files; the model's top K are alike, and did worse (docs/MODEL.md)."""
    return [[data.candidates[i] for i in best_fixed_set(data, k)]
            for k in range(1, len(data.candidates))]


def export_onnx(model, n_features: int, n_outputs: int, metadata: dict) -> bytes:
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(model, initial_types=[("features", FloatTensorType([None, n_features]))],
                  final_types=[("ratios", FloatTensorType([None, n_outputs]))],
                  target_opset={"": 17, "ai.onnx.ml": 3})
    for key, value in metadata.items():
        entry = onx.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onx.doc_string = "mlcc code-size model: predicted size / clang's size for each candidate"
    onnx.checker.check_model(onx)
    return onx.SerializeToString()


@dataclass
class Fitted:
    """A trained model and how it was chosen."""

    model: object
    family: str
    margin: float
    cv: dict


def fit(train: Dataset, families: tuple[str, ...], console: Console, seed: int = 0) -> Fitted:
    """Compare `families` by cross-validation on `train`; refit the best on all of it."""
    cv: dict[str, dict] = {}
    for fam in families:
        start = time.perf_counter()
        pred, _ = cross_validate(train, fam, seed=seed)
        margin = best_margin(train, pred)
        cv[fam] = {"margin": margin, **score(train, choose(pred, margin)),
                   "seconds": round(time.perf_counter() - start, 1)}
        console.print(f"  cv {fam:14} margin {margin:.3f}  total {cv[fam]['total_gain_pct']:.2f}%  "
                      f"geomean {cv[fam]['geomean_gain_pct']:.2f}%  "
                      f"larger {cv[fam]['larger_units']}")
    bound = MAX_LARGER_SHARE * len(train.units)
    family = max(cv, key=lambda f: (cv[f]["larger_than_default_units"] <= bound,
                                    cv[f]["total_gain_pct"]))
    model = fit_model(family, train, seed=seed)
    return Fitted(model, family, cv[family]["margin"], cv)


def validate(fitted: Fitted, train: Dataset, valid: Dataset) -> dict:
    """The model and the best single fixed candidate (the default, `default_candidate`,
    chosen on `train`) on `valid`."""
    if not len(valid.units):
        return {}
    return {"model": score(valid, choose(fitted.model.predict(transform(valid.X)), fitted.margin)),
            "best_single_fixed": {"pipeline": train.candidates[0],
                                  "rule": "best mean gain over the training projects",
                                  **score(valid, np.zeros(len(valid.units), dtype=int))}}


# A target other than x86-64 ships its model (mlcc/models/size-<target>-O<level>.onnx,
# where the driver looks) only when it beats the default the target ships without one by
# this many points on the validation projects, in total and in the geometric mean of the
# projects' gains, for every seed trained (issue 25); otherwise the default alone stays,
# and the compile saves the features and the inference.
TARGET_MODEL_MIN_POINTS = 0.5


def beats_default(validation: dict) -> bool:
    """The rule above, for one trained model's `validate` result."""
    model, default = validation["model"], validation["best_single_fixed"]
    return (model["total_gain_pct"] - default["total_gain_pct"] >= TARGET_MODEL_MIN_POINTS
            and model["project_geomean_gain_pct"] - default["project_geomean_gain_pct"] >= TARGET_MODEL_MIN_POINTS)


def model_metadata(fitted: Fitted, train: Dataset, level: str, training_data: dict,
                   validation: dict) -> dict:
    """Everything the driver checks when it loads the model, and what made it."""
    return model_file.metadata(
        opt_level=level, target=search.TARGET, candidates=train.candidates, margin=fitted.margin,
        trial_sets=trial_sets(train),
        objective="bytes of .text/.data/.rodata with subsections (mlcc.objective.object_size)",
        family=fitted.family, training_data=training_data, cv=fitted.cv,
        feature_medians=[float(v) for v in np.median(transform(train.X), axis=0)],
        validation=validation)


def write_model(fitted: Fitted, train: Dataset, metadata: dict, out: Path) -> str:
    """Export to ONNX and write `out` atomically; return the file's short sha256."""
    blob = export_onnx(fitted.model, train.X.shape[1], len(train.candidates), metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _write_model_file(out, blob)


def _write_model_file(out: Path, blob: bytes) -> str:
    """Write `blob` to `out` atomically; return its short sha256."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(out)
    return hashlib.sha256(blob).hexdigest()[:16]


def print_validation(console: Console, validation: dict) -> None:
    if validation:
        m, fixed = validation["model"], validation["best_single_fixed"]
        console.print(f"validation ({m['units']} units): model {m['total_gain_pct']:.2f}% total "
                      f"({m['project_geomean_gain_pct']:.2f}% project geomean), "
                      f"oracle {m['oracle_total_gain_pct']:.2f}%, best fixed "
                      f"{fixed['total_gain_pct']:.2f}% ({fixed['project_geomean_gain_pct']:.2f}%), "
                      f"larger {m['larger_units']} (fixed {fixed['larger_units']})")


def stamp_trial_sets(path: Path, train: Dataset) -> str:
    """Write `trial_sets(train)` into the metadata of the model at `path`, its graph and
    the rest of its metadata untouched, when the tables it was trained from are the ones
    on disk (then its training would compute the same sets); the file's short sha256."""
    import onnx

    onx = onnx.load(str(path))
    meta = {p.key: p.value for p in onx.metadata_props}
    made_from = model_file.get(meta, "training_data", {})
    if (made_from.get("manifest_sha256") != file_sha256(MANIFEST_FILE)
            or made_from.get("measurements_sha256") != file_sha256(search.MEASUREMENTS)
            or model_file.get(meta, "candidates", []) != train.candidates):
        raise click.ClickException(f"{path} was trained from other tables or candidates than "
                                   "these: retrain it (`make model`)")
    key = model_file.PREFIX + "trial_sets"
    kept = [p for p in onx.metadata_props if p.key != key]
    del onx.metadata_props[:]
    onx.metadata_props.extend(kept)
    entry = onx.metadata_props.add()
    entry.key, entry.value = key, json.dumps(trial_sets(train))
    onnx.checker.check_model(onx)
    return _write_model_file(path, onx.SerializeToString())


TARGET_RESULT = search.DATA / f"model-{search.TAG}.json"  # a target's trained models and the rule's verdict


@click.command()
@click.option("--family", type=click.Choice(("auto",) + FAMILIES), default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help=f"Where to write the model [default: {MODEL_FILE}; for a target other than x86-64, "
                   "only when it beats the target's default (TARGET_MODEL_MIN_POINTS)].")
@click.option("--seeds", default=1, show_default=True,
              help="Train with seeds 0..N-1 to see the seed's noise; the model written is seed 0's.")
@click.option("--stamp-trial-sets", "stamp_only", is_flag=True,
              help="Only add the trial sets to the model at --out (made before they existed); no training.")
def main(family: str, out: Path | None, seeds: int, stamp_only: bool) -> None:
    """Train on the training projects, export the model with its metadata."""
    console = Console(stderr=True)
    manifest = json.loads(MANIFEST_FILE.read_text())
    chosen = json.loads(search.CANDIDATES.read_text())
    candidates = chosen["pipelines"]
    assert candidates[0] == search.CLANG_PIPELINE
    # a target's candidates name its shipped default (`candidates for-target`): the model's
    # candidate 0, so that it is measured against what it would replace
    train, valid = labeled_splits(manifest["units"], candidates, search.Store(),
                                  search.corpus_bitcode(Layout.from_environment()),
                                  default=chosen.get("default"))
    candidates = train.candidates
    if stamp_only:
        digest = stamp_trial_sets(out or MODEL_FILE, train)
        console.print(f"[green]trial sets written into {out or MODEL_FILE} (sha256 {digest})")
        return
    console.print(f"default pipeline ({'the target' + chr(39) + 's shipped default' if chosen.get('default') else 'the best tuned clang pipeline by mean gain over training projects'}): "
                  f"{candidates[0]}", markup=False)
    console.print(f"{len(train.units)} training units ({len(set(train.groups))} projects), "
                  f"{len(valid.units)} validation units, {len(candidates)} candidates")
    if len(train.units) < 20:
        raise click.ClickException("too few labeled training units: run `search label` first")

    training_data = {
        "manifest_sha256": file_sha256(MANIFEST_FILE),
        "measurements_sha256": file_sha256(search.MEASUREMENTS),
        "train_units": len(train.units), "train_projects": sorted(set(train.groups)),
        "validation_projects": sorted(set(valid.groups)),
    }
    runs = []
    for seed in range(seeds):
        if seeds > 1:
            console.print(f"seed {seed}")
        fitted = fit(train, FAMILIES if family == "auto" else (family,), console, seed)
        validation = validate(fitted, train, valid)
        print_validation(console, validation)
        runs.append((seed, fitted, validation))
    seed, fitted, validation = runs[0]
    metadata = model_metadata(fitted, train, search.OPT_LEVEL, training_data, validation)
    if search.TARGET != targets.HOST:
        ships = bool(validation) and all(beats_default(v) for _, _, v in runs)
        write_target_result(runs, train, valid, training_data, ships)
        console.print(f"{search.TARGET}: the model {'beats' if ships else 'does not beat'} the target's default "
                      f"by {TARGET_MODEL_MIN_POINTS} points on validation (total and project geomean, "
                      f"every seed) -> {TARGET_RESULT}")
        if out is None and not ships:
            if MODEL_FILE.exists():
                MODEL_FILE.unlink()  # an older model that qualified no longer does
            console.print(f"not shipped: {search.TARGET} keeps its default alone (mlcc/data/targets.toml)")
            return
    out = out or MODEL_FILE
    digest = write_model(fitted, train, metadata, out)
    console.print(f"[green]wrote {out} ({out.stat().st_size // 1024} KiB, {fitted.family}, "
                  f"sha256 {digest})")


def write_target_result(runs: list, train: Dataset, valid: Dataset, training_data: dict, ships: bool) -> None:
    """A target's models, one per seed: how each was chosen (grouped CV on the training
    projects), how it and the default do on validation, and the rule's verdict."""
    default_train = score(train, np.zeros(len(train.units), dtype=int))
    result = {
        "target": search.TARGET, "opt_level": search.OPT_LEVEL, "candidates": train.candidates,
        "rule": f"ships when the model beats candidate 0 (the target's default) by >= {TARGET_MODEL_MIN_POINTS} "
                "points on validation in total and in the geomean of project gains, for every seed",
        "ships_model": ships,
        "training_data": {**training_data, "validation_units": len(valid.units)},
        "seeds": [{"seed": seed, "family": fitted.family, "margin": fitted.margin,
                   "train_cv": {"model": fitted.cv[fitted.family], "default": default_train},
                   "cv_families": fitted.cv,
                   "validation": {"model": validation["model"], "default": validation["best_single_fixed"]}}
                  for seed, fitted, validation in runs],
    }
    TARGET_RESULT.write_text(json.dumps(result, indent=1) + "\n")
