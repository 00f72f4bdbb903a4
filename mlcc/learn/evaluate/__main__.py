"""`python -m mlcc.learn.evaluate STEP`: what mlcc's builds cost at run time.

    python -m mlcc.learn.evaluate run-time [--bench-dir DIR]    # after `mlcc-tool bench`
    python -m mlcc.learn.evaluate lto                           # LTO builds, clang-19 vs mlcc
    python -m mlcc.learn.evaluate profile                       # a profiled -Os build of lua

The benchmark itself is `mlcc-tool bench` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import click

from mlcc.learn.evaluate import bench_lto, bench_profile, run_time


@click.group()
def main() -> None:
    """Evaluate mlcc's builds of the benchmark projects (the benchmark: `mlcc-tool bench`)."""


main.add_command(run_time.main, "run-time")
main.add_command(bench_lto.main, "lto")
main.add_command(bench_profile.main, "profile")

if __name__ == "__main__":
    main()
