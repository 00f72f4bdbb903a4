"""What the trial sets cost and give: for K = 1 to 4, the set chosen by size alone and
the one chosen under `train.TRIAL_BUILD_PRICE`, with their build cost (in builds of
clang's own pipeline) and their gains on the training and validation projects.

    python -m mlcc.learn.train trial-costs            # -Oz
    MLCC_LEARN_LEVEL=s python -m mlcc.learn.train trial-costs

Writes models/data/trial-costs-<level>.json (docs/MODEL.md, "Trials under a CPU budget").
"""

from __future__ import annotations

import json

import click

from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import search
from mlcc.learn.train import train

OUT = search.DATA / f"trial-costs-{search.TAG}.json"


def describe(data: train.Dataset, valid: train.Dataset, cols: tuple[int, ...]) -> dict:
    """A set's candidates, cost and gains (percent) on both splits."""
    def gains(d: train.Dataset) -> tuple[float, float]:
        sizes = train.set_sizes(d, cols)
        mean = float(train.mean_project_gain(sizes[:, None], d.clang, d.groups)[0])
        return round(100 * mean, 2), round(100 * (1 - sizes.sum() / d.clang.sum()), 2)

    (train_mean, train_total), (valid_mean, valid_total) = gains(data), gains(valid)
    return {"candidates": list(cols), "builds": round(train.set_cost(data, cols), 2),
            "mean_project_gain_train_pct": train_mean, "total_gain_train_pct": train_total,
            "mean_project_gain_validation_pct": valid_mean, "total_gain_validation_pct": valid_total}


@click.command()
@click.option("--k-max", default=4, show_default=True)
def main(k_max: int) -> None:
    """Print and write the trial sets by size and under the CPU price."""
    manifest = json.loads(MANIFEST_FILE.read_text())
    chosen = json.loads(search.CANDIDATES.read_text())
    data, valid = train.labeled_splits(manifest["units"], chosen["pipelines"], search.Store(),
                                       search.corpus_bitcode(Layout.from_environment()),
                                       default=chosen.get("default"))
    rows = []
    for k in range(1, k_max + 1):
        for name, price in (("by size", 0.0), ("priced", train.TRIAL_BUILD_PRICE)):
            row = {"k": k, "choice": name, **describe(data, valid, train.best_fixed_set(data, k, price))}
            rows.append(row)
            click.echo(f"-O{search.OPT_LEVEL} K={k} {name:8} {row['candidates']}: {row['builds']} builds; "
                       f"mean project gain {row['mean_project_gain_train_pct']} % training, "
                       f"{row['mean_project_gain_validation_pct']} % validation; total "
                       f"{row['total_gain_validation_pct']} % validation")
    OUT.write_text(json.dumps({"level": search.OPT_LEVEL, "target": search.TARGET,
                               "price": train.TRIAL_BUILD_PRICE, "candidates": data.candidates,
                               "sets": rows}, indent=1) + "\n")
    click.echo(f"wrote {OUT}")
