"""A target's candidate set, from its tuned default: what its model chooses among.

For a target other than x86-64 (MLCC_LEARN_TARGET), the candidates are clang's own
pipeline, the target's tuned default and the distinct pipelines of its trial sets,
all from `tune-default`'s result (`models/data/default-<target>-O<level>.json`): the
pipelines the target's search found and measured on its training sample. The
x86-64 walks and mined pipelines are not among them: they were chosen on x86-64
objects and were never measured on the target. Writes
`models/data/candidates-<target>-O<level>.json`, which `search label` and `train`
read; rerunning it rewrites the same file from the same result.
"""

from __future__ import annotations

import json

import click

from mlcc import targets
from mlcc.learn.candidates.tune_default import DEFAULT_FILE
from mlcc.learn.search import search


def target_candidates(result: dict) -> list[str]:
    """clang's pipeline, the tuned default, then the trial sets' other pipelines in the
    order the sets add them."""
    pipelines = [search.CLANG_PIPELINE, result["default"]]
    for trial_set in result["trial_sets"]:
        pipelines += trial_set
    return list(dict.fromkeys(pipelines))


@click.command()
def main() -> None:
    """Write the target's candidates (clang's, its tuned default, its trial sets)."""
    if search.TARGET == targets.HOST:
        raise click.ClickException("for-target is for MLCC_LEARN_TARGET=<a target other than x86-64>; "
                                   "x86-64's candidates come from `candidates choose`")
    if not DEFAULT_FILE.exists():
        raise click.ClickException(f"{DEFAULT_FILE} is missing: run `MLCC_LEARN_TARGET={search.TARGET} "
                                   "python -m mlcc.learn.candidates tune-default` first")
    result = json.loads(DEFAULT_FILE.read_text())
    pipelines = target_candidates(result)
    out = {"opt_level": search.OPT_LEVEL, "target": search.TARGET,
           "source": DEFAULT_FILE.name,
           "rule": "clang's pipeline, the target's tuned default, its trial sets' pipelines",
           # candidate 0 of the target's model: the default the target ships without one,
           # so the model is measured against what it would replace (train.default_first)
           "default": result["default"],
           "pipelines": pipelines}
    search.CANDIDATES.write_text(json.dumps(out, indent=1) + "\n")
    click.echo(f"{len(pipelines)} candidates -> {search.CANDIDATES}")
