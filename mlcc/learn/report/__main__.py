"""`python -m mlcc.learn.report STEP`: write the model report.

    python -m mlcc.learn.report model [--model models/size-Oz.onnx]    # docs/MODEL-REPORT.md
    MLCC_LEARN_LEVEL=s python -m mlcc.learn.report model --model models/size-Os.onnx
    python -m mlcc.learn.report targets                                # docs/TARGETS.md's table
"""

from __future__ import annotations

import click

from mlcc.learn.report import report, targets_report


@click.group()
def main() -> None:
    """Write the model report (`make report`) and the targets table."""


main.add_command(report.main, "model")
main.add_command(targets_report.main, "targets")

if __name__ == "__main__":
    main()
