"""What trials did for small units (docs/DESIGN.md, the small-unit rule): from one full
bench run's `mlcc.log` files, the units single-shot gave to clang's pipeline as small
units, against the same units under `-fmlcc-trials=3` (configure probes left out):
how many trials made smaller and by how many bytes, and the seconds of their stages.
Meaningful for a run made before trials kept the small-unit rule (since then trials
give those units clang's pipeline too).

    python scripts/small_units_under_trials.py --workdir /work/bench-work-s50
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlcc.learn.evaluate.bench_measure import parse_log


def optimized(log: Path):
    """(project, source, output) and the log entry of each unit mlcc optimized."""
    project = log.parent.parent.name
    for entry in parse_log(log.read_text().splitlines()):
        if entry.get("path") == "optimize" and "conftest" not in str(entry.get("source")):
            yield (project, entry.get("source"), entry.get("output")), entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    for level in ("Os", "Oz"):
        small: dict = {}  # (project, source, output) -> single-shot's size
        single_seconds = 0.0
        for log in args.workdir.glob(f"*/mlcc-{level}-single/mlcc.log"):
            for key, e in optimized(log):
                if "small unit" in e.get("decision", ""):
                    small[key] = e["size"]
                    single_seconds += sum(e["seconds"].values())
        saved = smaller = 0
        seconds = all_seconds = all_bytes = 0.0
        for log in args.workdir.glob(f"*/mlcc-{level}-trials/mlcc.log"):
            for key, e in optimized(log):
                stages = sum(e["seconds"].values())
                all_seconds += stages
                all_bytes += e["size"] or 0
                if key in small:
                    saved += small[key] - e["size"]
                    smaller += e["size"] < small[key]
                    seconds += stages
        print(f"-{level}: {len(small)} small units; trials made {smaller} smaller, by {saved} bytes "
              f"({100 * saved / all_bytes:.3f} % of the trials' object bytes); their stages "
              f"{seconds:.1f} s of trials' {all_seconds:.1f} s, {single_seconds:.1f} s as small units")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
