#!/usr/bin/env python3
"""What the model server saves: CPU of compiling Lua 5.4's sources with mlcc -Oz,
the model loaded in every compiler process (MLCC_SERVER=0) against the model
server (its own CPU counted), and clang-19 -Oz for scale.

Each round compiles every `src/*.c` of Lua once per variant, the variants
interleaved so that a change of load hits all of them; the decision cache is
off (every unit asks the model) and small units take the full path. The
server variant starts with no server running, so its start-up (imports and
model loading, once per round) is in the count. Prints per-variant medians over
the rounds of the round's CPU seconds, and the per-unit difference.

Usage: python scripts/bench_model_server.py [--rounds 3] [--cache DIR]
Sources: Debian's lua5.4 (scripts/bench_features.py fetches and caches it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import fetch_lua  # noqa: E402

from mlcc import model_server  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compile_all(compiler: str, sources: list[Path], out: Path, env: dict) -> float:
    """CPU seconds of compiling every source at -Oz -c, one after the other."""
    before = children_cpu()
    for src in sources:
        subprocess.run([compiler, "-Oz", "-w", "-DLUA_USE_LINUX", "-c", str(src),
                        "-o", str(out / (src.stem + ".o"))], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return children_cpu() - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/mlcc/bench-sources")
    args = parser.parse_args()
    sources = sorted(fetch_lua(args.cache).parent.glob("*.c"))
    mlcc, clang = shutil.which("mlcc"), shutil.which("clang-19")
    if not mlcc or not clang:
        raise SystemExit("needs mlcc and clang-19 on PATH")
    runtime = Path(tempfile.mkdtemp(prefix="mlcc-srv-", dir="/tmp"))
    out = Path(tempfile.mkdtemp(prefix="mlcc-srv-out-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
    base.update(MLCC_NO_CACHE="1", MLCC_SMALL_UNIT="0", MLCC_CONFIG=os.devnull,
                XDG_RUNTIME_DIR=str(runtime))
    samples: dict[str, list[float]] = {"clang": [], "mlcc, model in process": [],
                                       "mlcc, model server": []}
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            samples["clang"].append(compile_all(clang, sources, out, base))
            samples["mlcc, model in process"].append(
                compile_all(mlcc, sources, out, {**base, "MLCC_SERVER": "0"}))
            cpu = compile_all(mlcc, sources, out, {**base, "MLCC_SERVER": "1"})
            stopped = model_server.stop_all(str(runtime / "mlcc"))
            samples["mlcc, model server"].append(cpu + stopped["cpu"])
    finally:
        model_server.stop_all(str(runtime / "mlcc"))
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    n = len(sources)
    clang_cpu = statistics.median(samples["clang"])
    print(f"Lua 5.4, {n} files at -Oz, median CPU seconds of {args.rounds} rounds:")
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"  {name:<24} {med:7.2f} s  ({med / n:.3f} s per file, {med / clang_cpu:.2f}x clang)")
    saved = (statistics.median(samples["mlcc, model in process"])
             - statistics.median(samples["mlcc, model server"]))
    print(f"  the server saves {saved:.2f} s, {saved / n:.3f} s per file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
