#!/usr/bin/env python3
"""Compile the demo sources with clang-19 and with mlcc at -Oz and -Os; print the
sizes, the wall times and the pipeline mlcc ran for each file.

The sources (scripts/demo/*.c: a calculator, a ring buffer with CRC framing, a
protocol state machine, a command shell, string utilities) are each large enough
to take mlcc's route: a unit under 8 KiB of bitcode goes to clang whole.
Sizes are the objective mlcc optimizes: bytes of .text/.data/.rodata in the
object file (mlcc.objective.object_size). `-fmlcc-no-cache` makes every run a
real compile.

    python3 scripts/demo.py [--level Oz|Os ...] [FILE.c ...]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlcc.model import bundled_model_path, load
from mlcc.objective import object_size

SOURCES = sorted((Path(__file__).resolve().parent / "demo").glob("*.c"))

# What -fmlcc-verbose prints for each file: "mlcc: FILE: PIPELINE (DECISION, ...)".
# the decision: up to its first note (", ...") or the line's closing parenthesis; it may
# hold parentheses of its own ("x86_64 default (its model ranks only trials and search)")
VERBOSE_LINE = re.compile(r"^mlcc: (?P<source>.*): (?P<pipeline>\S+) \((?P<decision>[^,\n]*?)(?:,[^\n]*)?\)$",
                          re.M)


def compile_one(argv: list[str]) -> tuple[float, str]:
    """Run one compile; return its wall time and its stderr."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"demo: {' '.join(argv)} failed:\n{done.stderr}")
    return seconds, done.stderr


def pipeline_name(pipeline: str, decision: str, candidates: list[str]) -> str:
    """A short name for the pipeline mlcc ran: its candidate number in the model, and
    what decided it (the model, or single-shot's default: docs/MODEL.md)."""
    if pipeline in candidates:
        index = candidates.index(pipeline)
        who = "the model's choice" if decision.startswith("model") else decision
        return f"candidate {index} ({'the default; ' if index == 0 else ''}{who})"
    if pipeline == "clang":
        return f"clang's own ({decision})"
    return pipeline if len(pipeline) < 40 else pipeline[:37] + "..."


def run_level(level: str, sources: list[str], tmp: Path) -> None:
    candidates = load(str(bundled_model_path(level[1:]))).candidates
    print(f"\n{'-' + level:<14}{'clang bytes':>12}{'mlcc bytes':>12}{'gain':>8}"
          f"{'clang s':>9}{'mlcc s':>8}  pipeline mlcc ran")
    totals = [0, 0, 0.0, 0.0]
    chosen = set()
    for src in sources:
        clang_obj, mlcc_obj = tmp / "clang.o", tmp / "mlcc.o"
        clang_s, _ = compile_one(["clang-19", f"-{level}", "-c", src, "-o", str(clang_obj)])
        mlcc_s, stderr = compile_one(["mlcc", f"-{level}", "-c", src, "-o", str(mlcc_obj),
                                      "-fmlcc-verbose", "-fmlcc-no-cache"])
        match = VERBOSE_LINE.search(stderr)
        pipeline, decision = (match["pipeline"], match["decision"]) if match else ("?", "?")
        name = pipeline_name(pipeline, decision, candidates)
        if name.startswith("candidate"):
            chosen.add((name.split()[1], pipeline))
        sizes = object_size(clang_obj), object_size(mlcc_obj)
        totals = [totals[0] + sizes[0], totals[1] + sizes[1], totals[2] + clang_s, totals[3] + mlcc_s]
        print(f"{Path(src).name:<14}{sizes[0]:>12}{sizes[1]:>12}{gain(*sizes):>8}"
              f"{clang_s:>9.2f}{mlcc_s:>8.2f}  {name}")
    print(f"{'total':<14}{totals[0]:>12}{totals[1]:>12}{gain(totals[0], totals[1]):>8}"
          f"{totals[2]:>9.2f}{totals[3]:>8.2f}")
    for index, pipeline in sorted(chosen):
        print(f"  candidate {index}: {pipeline}")


def gain(clang_bytes: int, mlcc_bytes: int) -> str:
    """How much smaller mlcc's object is (positive: smaller)."""
    return f"{100.0 * (clang_bytes - mlcc_bytes) / clang_bytes:+.1f}%" if clang_bytes else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", action="append", choices=["Oz", "Os"],
                        help="optimization level (default: both)")
    parser.add_argument("sources", nargs="*", default=[str(s) for s in SOURCES])
    args = parser.parse_args()
    print("clang-19 against mlcc, one compile per file and level (-c, no decision cache).")
    print("Bytes: .text + .data + .rodata of the object; gain: how much smaller mlcc's is;")
    print("s: wall seconds of the compile.")
    with tempfile.TemporaryDirectory() as tmp:
        for level in args.level or ["Oz", "Os"]:
            run_level(level, args.sources, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
