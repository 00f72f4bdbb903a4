"""How much the model family, the weighting and the seed move the single-shot result.

Each variant goes through what `train` does for the family it picks: out-of-fold
predictions on the training projects (folds grouped by project), the margin
chosen on them (`train.best_margin`), a fit on every training unit, then scored
on the validation projects. The spread over variants is the noise any one change
to the model must clear (docs/MODEL.md). Results go to
`models/data/variants-O?.json`.

    python -m mlcc.learn.variants [--seeds 3]
"""

from __future__ import annotations

import json

import click
import numpy as np
from rich.console import Console

from mlcc.learn import data_share, search, train
from mlcc.learn.corpus import MANIFEST_FILE, Layout

RESULTS = search.DATA / f"variants-O{search.OPT_LEVEL}.json"
WEIGHTINGS = ("",) + train.WEIGHTINGS


def variant_families(with_code: bool) -> list[str]:
    """Every tree family with every weighting (by code bytes only `with_code`, when they are
    measured), and the unweighted others."""
    weightings = [w for w in WEIGHTINGS if with_code or w != train.BY_CODE_BYTES]
    return ([f + w for f in train.TREE_FAMILIES for w in weightings]
            + [f for f in train.FAMILIES if f not in train.TREE_FAMILIES and train.BY_BYTES not in f])


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
    pred, _ = train.cross_validate(tr, family, seed=seed)
    margin = train.best_margin(tr, pred)
    model = train.fit_model(family, tr, seed=seed)
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


@click.command()
@click.option("--seeds", default=3, show_default=True, help="Seeds per family (the estimators' random_state).")
def main(seeds: int) -> None:
    """Score every variant and write the results file."""
    console = Console(stderr=True)
    manifest = json.loads(MANIFEST_FILE.read_text())
    candidates = json.loads(search.CANDIDATES.read_text())["pipelines"]
    tr, va = train.labeled_splits(manifest["units"], candidates, search.Store(),
                                  train.corpus_bitcode(Layout.from_environment()))
    tr.code, unmeasured = code_bytes(tr)
    if tr.code is not None and unmeasured:
        console.print(f"{unmeasured} training units have no data_share measurement: all code for the weights")
    default = train.score(va, np.zeros(len(va.units), dtype=int))["total_gain_pct"]
    rows = []
    for family in variant_families(tr.code is not None):
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


if __name__ == "__main__":
    main()
