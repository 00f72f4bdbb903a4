"""`python -m mlcc.learn.candidates STEP`: choose the candidate pipelines and the default.

    python -m mlcc.learn.candidates choose [--wrapped-only]    # models/data/candidates-O<level>.json
    python -m mlcc.learn.candidates tune-default               # models/data/default-O<level>.json
    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates prune-default  # its knobs, on every training unit
    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates for-target  # candidates-thumbv7m-Oz.json
    python -m mlcc.learn.candidates codegen-sweep --sample walk --count 120
    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates codegen-variants  # from its sweeps
    MLCC_LEARN_LEVEL=s python -m mlcc.learn.candidates codegen-twins  # trial candidates sharing an opt run
    python -m mlcc.learn.candidates slow-bound [--time 20]
    python -m mlcc.learn.candidates ship-targets               # mlcc/data/targets.toml from the targets' searches
"""

from __future__ import annotations

import sys

import click

from mlcc.learn import entry
from mlcc.learn.candidates import (candidates, codegen_sweep, codegen_twins, codegen_variants, for_target,
                                   prune_default, ship_targets, slow_bound, tune_default)


@click.group()
def main() -> None:
    """Choose the candidate pipelines and tune the default (resumable)."""


main.add_command(candidates.main, "choose")
main.add_command(tune_default.main, "tune-default")
main.add_command(prune_default.main, "prune-default")
main.add_command(for_target.main, "for-target")
main.add_command(codegen_sweep.main, "codegen-sweep")
main.add_command(codegen_variants.main, "codegen-variants")
main.add_command(codegen_twins.main, "codegen-twins")
main.add_command(slow_bound.main, "slow-bound")
main.add_command(ship_targets.main, "ship-targets")

if __name__ == "__main__":
    sys.exit(entry.run(main, "mlcc.learn.candidates"))
