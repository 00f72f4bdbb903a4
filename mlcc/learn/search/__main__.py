"""`python -m mlcc.learn.search STEP`: measure pass pipelines on the corpus (resumable).

    python -m mlcc.learn.search explore | crosscheck | walk | knobs | label
    python -m mlcc.learn.search mine | mine-crosscheck
    python -m mlcc.learn.search budget | data-share | pipeline-time PIPELINE...

`STEP --help` says what each does; `make model` runs them in order.
"""

from __future__ import annotations

import sys

import click

from mlcc.learn import entry
from mlcc.learn.search import budget, data_share, mine, pipeline_time, search


@click.group()
def main() -> None:
    """Measure pass pipelines on the corpus (resumable)."""


for command in (search.explore, search.crosscheck, search.walk, search.knob_walk, search.label,
                mine.search_command, mine.crosscheck):
    main.add_command(command)
main.add_command(budget.main, "budget")
main.add_command(data_share.main, "data-share")
main.add_command(pipeline_time.main, "pipeline-time")

if __name__ == "__main__":
    sys.exit(entry.run(main, "mlcc.learn.search"))
