"""`python -m mlcc.learn.report STEP`: write the model report.

    python -m mlcc.learn.report model [--model models/size-Oz.onnx]    # docs/MODEL-REPORT.md
    MLCC_LEARN_LEVEL=s python -m mlcc.learn.report model --model models/size-Os.onnx
"""

from __future__ import annotations

import click

from mlcc.learn.report import report


@click.group()
def main() -> None:
    """Write the model report (`make report`)."""


main.add_command(report.main, "model")

if __name__ == "__main__":
    main()
