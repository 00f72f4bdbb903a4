"""How much the model family, the weighting and the seed move the single-shot result.

Each variant goes through what `train` does for the family it picks: out-of-fold
predictions on the training projects (folds grouped by project), the margin
chosen on them (`train.best_margin`), a fit on every training unit, then scored
on the validation projects. The spread over variants is the noise any one change
to the model must clear (docs/MODEL.md). Beside the families that predict each
candidate's size, two other formulations of the same choice are scored
(`FORMULATIONS`). Results go to `models/data/variants-O?.json`.

    python -m mlcc.learn.train variants [--seeds 3]
"""

from __future__ import annotations

import json

import click
import numpy as np
from rich.console import Console

from mlcc.learn.train import train
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import data_share, search

RESULTS = search.DATA / f"variants-{search.TAG}.json"
WEIGHTINGS = ("",) + train.WEIGHTINGS

# Other ways to learn the choice than predicting each candidate's size, with extra trees
# weighted by bytes:
# - "difference": predict each candidate's size minus the default's (what choosing it changes);
# - "regret-classifier": classify which candidate is best (the default when it is within 0.1 %),
#   each unit weighted by the bytes the default loses to the best, plus 1 % of its bytes;
#   candidate j scores 1 - P(j), so the margin is in probability.
FORMULATIONS = ("extra-trees-by-bytes/difference", "extra-trees-by-bytes/regret-classifier")
TIE = 0.001


class Formulated:
    """An extra-trees model of one of `FORMULATIONS`, predicting one score per candidate
    (smallest best, candidate 0 the default) as the size regressors do."""

    def __init__(self, formulation: str, seed: int):
        self.formulation = formulation
        self.seed = seed

    def fit(self, X: np.ndarray, R: np.ndarray, clang: np.ndarray) -> "Formulated":
        from sklearn.ensemble import ExtraTreesClassifier

        self.k = R.shape[1]
        if self.formulation.endswith("/difference"):
            self.model = train.make_model("extra-trees", self.seed)
            self.model.fit(X, R[:, 1:] - R[:, :1], sample_weight=clang / clang.mean())
            return self
        best = np.where(R[:, 0] - R.min(axis=1) <= TIE, 0, R.argmin(axis=1))
        weights = clang * (R[:, 0] - R.min(axis=1)) + 0.01 * clang
        self.model = ExtraTreesClassifier(n_estimators=96, max_depth=10, min_samples_leaf=3,
                                          max_features=0.5, random_state=self.seed, n_jobs=2)
        self.model.fit(X, best, sample_weight=weights / weights.mean())
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.formulation.endswith("/difference"):
            return np.hstack([np.zeros((len(X), 1)), self.model.predict(X).reshape(len(X), -1)])
        probability = np.zeros((len(X), self.k))
        probability[:, self.model.classes_] = self.model.predict_proba(X)
        return 1.0 - probability


def fit_variant(family: str, data: train.Dataset, rows=slice(None), seed: int = 0):
    """`family`'s model (a size regressor, or one of `FORMULATIONS`) fitted on `data`'s `rows`."""
    if family in FORMULATIONS:
        return Formulated(family, seed).fit(train.transform(data.X[rows]), data.R[rows], data.clang[rows])
    return train.fit_model(family, data, rows, seed)


def variant_families(with_code: bool) -> list[str]:
    """Every tree family with every weighting (by code bytes only `with_code`, when they are
    measured), and the unweighted others."""
    weightings = [w for w in WEIGHTINGS if with_code or w != train.BY_CODE_BYTES]
    return ([f + w for f in train.TREE_FAMILIES for w in weightings]
            + [f for f in train.FAMILIES if f not in train.TREE_FAMILIES and train.BY_BYTES not in f]
            + list(FORMULATIONS))


def code_bytes(data: train.Dataset) -> tuple[np.ndarray | None, int]:
    """Each unit's bytes under clang's pipeline less its initialized data (`data_share`; a
    unit it has not measured counts as all code), and how many were not measured. None
    when `data_share` has measured none."""
    measured = data_share.load()
    if not measured:
        return None, len(data.units)
    missing = sum(u["id"] not in measured for u in data.units)
    return np.array([clang - measured.get(u["id"], (0, 0))[1]
                     for u, clang in zip(data.units, data.clang)]), missing


def run_variant(family: str, seed: int, tr: train.Dataset, va: train.Dataset) -> dict:
    """Out of fold on `tr`, the margin chosen there, refitted on `tr`, scored on `va`."""
    pred, _ = train.cross_validate(tr, family, seed=seed, fit=fit_variant)
    margin = train.best_margin(tr, pred)
    model = fit_variant(family, tr, seed=seed)
    chosen = train.choose(model.predict(train.transform(va.X)), margin)
    out_of_fold = train.score(tr, train.choose(pred, margin))
    on_valid = train.score(va, chosen)
    return {"family": family, "seed": seed, "margin": margin,
            "cv_total_gain_pct": round(out_of_fold["total_gain_pct"], 3),
            "cv_larger_than_default": out_of_fold["larger_than_default_units"],
            "validation_total_gain_pct": round(on_valid["total_gain_pct"], 3),
            "validation_geomean_gain_pct": round(on_valid["geomean_gain_pct"], 3),
            "validation_larger": on_valid["larger_units"],
            "validation_left_on_default": int((chosen == 0).sum())}


def previous_rows() -> list[dict]:
    """The rows of the results file, if there is one."""
    try:
        return json.loads(RESULTS.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return []


@click.command()
@click.option("--seeds", default=3, show_default=True, help="Seeds per family (the estimators' random_state).")
@click.option("--only", "only", multiple=True, help="Score these variants only; rows of the others stay in "
              "the results file.")
def main(seeds: int, only: tuple[str, ...]) -> None:
    """Score every variant and write the results file."""
    console = Console(stderr=True)
    manifest = json.loads(MANIFEST_FILE.read_text())
    candidates = json.loads(search.CANDIDATES.read_text())["pipelines"]
    tr, va = train.labeled_splits(manifest["units"], candidates, search.Store(),
                                  search.corpus_bitcode(Layout.from_environment()))
    tr.code, unmeasured = code_bytes(tr)
    if tr.code is not None and unmeasured:
        console.print(f"{unmeasured} training units have no data_share measurement: all code for the weights")
    default = train.score(va, np.zeros(len(va.units), dtype=int))["total_gain_pct"]
    families = variant_families(tr.code is not None)
    unknown = set(only) - set(families)
    if unknown:
        raise click.BadParameter(f"unknown variant {', '.join(sorted(unknown))}; choose from {', '.join(families)}")
    rows = [r for r in previous_rows() if r["family"] not in only] if only else []
    for family in only or families:
        for seed in range(seeds if family.startswith(train.TREE_FAMILIES) else 1):
            rows.append(run_variant(family, seed, tr, va))
            r = rows[-1]
            console.print(f"{family:28} seed {seed}  margin {r['margin']:.3f}  cv {r['cv_total_gain_pct']:.2f}%  "
                          f"validation {r['validation_total_gain_pct']:.2f}%  "
                          f"(default on {r['validation_left_on_default']} units)")
    gains = [r["validation_total_gain_pct"] for r in rows]
    RESULTS.write_text(json.dumps({
        "opt_level": search.OPT_LEVEL, "candidates": tr.candidates,
        "train_units": len(tr.units), "validation_units": len(va.units),
        "code_bytes_unmeasured_units": unmeasured,
        "validation_default_alone_pct": round(default, 3),
        "validation_range_pct": [min(gains), max(gains)], "rows": rows}, indent=1) + "\n")
    console.print(f"validation: {min(gains):.2f} to {max(gains):.2f}% over {len(rows)} variants; "
                  f"the default alone {default:.2f}%; written to {RESULTS}")
