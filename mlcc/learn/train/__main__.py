"""`python -m mlcc.learn.train STEP`: train the size model, or measure its variants.

    python -m mlcc.learn.train model [--family auto] [--out models/size-Oz.onnx]
    python -m mlcc.learn.train variants [--seeds 3]
    python -m mlcc.learn.train trial-costs
"""

from __future__ import annotations

import click

from mlcc.learn.train import train, trial_costs, variants


@click.group()
def main() -> None:
    """Train the size model (`make model`), or score its variants."""


main.add_command(train.main, "model")
main.add_command(variants.main, "variants")
main.add_command(trial_costs.main, "trial-costs")

if __name__ == "__main__":
    main()
