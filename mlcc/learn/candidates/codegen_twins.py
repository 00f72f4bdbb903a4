"""Code generation twins: trial candidates that share an opt run with another.

A twin is a candidate with the `codegen` knobs of the target's -Oz default added to its
`clang[...]` element: its opt part (`knobs.opt_part`) is the candidate's own, so trials
build the two from one opt run and two code generations, about 1.5 builds of clang's
pipeline instead of 2 (`train.set_cost` prices them so). At -Oz the candidates have those
knobs already. At -Os the searches may not add them (`levels` in clang-knobs.toml: they
trade run time for bytes), yet on top of the -Os default they save 3.5 % of the bytes
(`codegen-sweep` at -Os, `with-all-Oz-codegen-knobs`); as twins they reach only the
trials (`-fmlcc-trials`, `-fmlcc-search`), which the -Os model serves, and a twin
wins a unit only when its object is the smallest.

The bases: clang's own pipeline (trials always build it, so its twin costs one code
generation), the default (candidate 0) and the candidates of the trial sets for K <= 3
chosen on the training units under the CPU price (`train.best_fixed_set`), from the
candidates without twins. Rewrites `models/data/candidates-O<level>.json` with the twins
after the other pipelines (`codegen_twins` maps each to its base); run `search label`
after it to measure them. Rerunning it gives the same file.

    MLCC_LEARN_LEVEL=s python -m mlcc.learn.candidates codegen-twins
"""

from __future__ import annotations

import json

import click

from mlcc import knobs
from mlcc.learn.candidates import codegen_sweep
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import search

TWINS_UP_TO_K = 3  # the trial sets whose candidates get twins


def twin(pipeline: str, added: tuple[str, ...]) -> str | None:
    """`pipeline` with the knobs `added` in each of its `clang[...]` elements; None when it
    has no such element or already has them all."""
    out = knobs.with_knobs(pipeline, added)
    return None if out == pipeline else out


def bases(pipelines: list[str], default: str | None) -> list[str]:
    """clang's pipeline, the default and the candidates of the priced trial sets for
    K <= TWINS_UP_TO_K, chosen on the training units labeled with every pipeline of
    `pipelines` (`default`: the candidates file's, else `train.default_first`'s)."""
    from mlcc.learn.train import train

    manifest = json.loads(MANIFEST_FILE.read_text())
    data, _ = train.labeled_splits(manifest["units"], pipelines, search.Store(),
                                   search.corpus_bitcode(Layout.from_environment()), default=default)
    if not len(data.units):
        raise click.ClickException("no training unit is labeled with every candidate: run `search label` first")
    chosen = [search.CLANG_PIPELINE, data.candidates[0]]
    for k in range(1, TWINS_UP_TO_K + 1):
        chosen += [data.candidates[i] for i in train.best_fixed_set(data, k)]
    return list(dict.fromkeys(chosen))


@click.command()
def main() -> None:
    """Add the code generation twins of the default and the trial sets' candidates."""
    path = search.CANDIDATES
    chosen = json.loads(path.read_text())
    twins = chosen.get("codegen_twins", {})
    own = [p for p in chosen["pipelines"] if p not in twins]
    added = codegen_sweep.oz_codegen_knobs(search.TARGET)
    if not added:
        raise click.ClickException(f"{search.TARGET}'s -Oz default has no code generation knobs to add")
    twins = {t: b for b in bases(own, chosen.get("default")) if (t := twin(b, added)) and t not in own}
    chosen["pipelines"] = own + list(twins)
    chosen["codegen_twins"] = twins
    chosen["codegen_twin_knobs"] = list(added)
    path.write_text(json.dumps(chosen, indent=1) + "\n")
    for b in twins.values():
        click.echo(f"twin of {b}")
    click.echo(f"{len(twins)} twins with {', '.join(added)} -> {path}; now `search label`")
