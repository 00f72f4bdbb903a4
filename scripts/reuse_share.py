"""How much of trials' build time could an earlier build's object save? On the training
units, by the unit's instruction count: the share of the seconds of the model's trial
set (clang's pipeline first, then the set for K = 3) spent on builds whose object came
out the same size as an earlier build's of the unit. Only those can be builds of the
same module (`trials.UnitBuilder._once`); this bounds what reusing them saves, and set
`trials.REUSE_LIMIT` (docs/DESIGN.md, "Builds of the same module").

    MLCC_LEARN_LEVEL=s python scripts/reuse_share.py
"""

from __future__ import annotations

import json

import numpy as np

from mlcc import model
from mlcc.features import FEATURE_NAMES
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import search
from mlcc.learn.train import train

BUCKETS = ((0, 500), (500, 2_000), (2_000, 5_000), (5_000, 20_000), (20_000, float("inf")))


def main() -> None:
    manifest = json.loads(MANIFEST_FILE.read_text())
    chosen = json.loads(search.CANDIDATES.read_text())
    data, _ = train.labeled_splits(manifest["units"], chosen["pipelines"], search.Store(),
                                   search.corpus_bitcode(Layout.from_environment()),
                                   default=chosen.get("default"))
    bundled = model.load(str(model.bundled_model_path(search.OPT_LEVEL)))
    trial_set = bundled.trial_sets[2]  # K = 3
    order = [data.candidates.index(search.CLANG_PIPELINE), *(data.candidates.index(p) for p in trial_set)]
    timed = ~np.isnan(data.T[:, order]).any(axis=1)
    earlier_size = np.zeros((len(data.R), len(order)), bool)
    for i, j in enumerate(order[1:], 1):
        earlier_size[:, i] = (data.R[:, [j]] == data.R[:, order[:i]]).any(axis=1)
    instructions = data.X[:, FEATURE_NAMES.index("TotalInsts")]
    print(f"-O{search.OPT_LEVEL}, clang's pipeline and candidates {order[1:]}, training units")
    for low, high in BUCKETS:
        rows = timed & (instructions >= low) & (instructions < high)
        seconds = data.T[rows][:, order]
        same = (seconds * earlier_size[rows]).sum()
        print(f"  {low:>6} to {high:>6} instructions: {rows.sum():5} units, {seconds.sum():7.1f} s of "
              f"builds, {100 * same / max(seconds.sum(), 1e-9):5.1f} % in builds the same size as an earlier one")


if __name__ == "__main__":
    main()
