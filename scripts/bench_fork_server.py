"""CPU of clang runs started as processes against the same runs forked from mlcc's clang
fork server (mlcc/fork_server.py): what the fork server saves per clang run.

Each round compiles a one-function unit's bitcode (`-Oz -c`, what a trial build does),
N times as clang processes and N times through a fork server started for the round;
the fork server's CPU, its start-up included, counts. Rounds interleave; medians.

    python scripts/bench_fork_server.py --runs 20 --rounds 5 --json docs/bench-fork-server.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from mlcc import fork_server, process
from mlcc.compile_server import process_cpu
from mlcc.toolchain import find

UNIT = "int scale(int x) { return x * 3 + 1; }\n"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def as_processes(clang: str, argv: list[str], runs: int) -> float:
    """CPU seconds per run, each clang a process of its own."""
    before = _children_cpu()
    for _ in range(runs):
        process.run_tool([clang, *argv], capture_stdout=True)
    return (_children_cpu() - before) / runs


def forked(clang: str, argv: list[str], runs: int, directory: str) -> tuple[float, float]:
    """(CPU seconds per run, the fork server's start-up in seconds of CPU), the runs
    forked from a fork server started here."""
    path = os.path.join(directory, "fork.sock")
    server = fork_server.start(clang, path)
    if server is None:
        sys.exit("no fork server built for this clang: python -m mlcc.fork_server_build")
    while not os.path.exists(path):
        time.sleep(0.005)
    time.sleep(0.2)  # listening: the start-up is done
    start_up = process_cpu(server.pid)
    client = fork_server.Client(path, clang)
    process.fork_server = client
    try:
        for _ in range(runs):
            process.run_tool([clang, *argv])
    finally:
        process.fork_server = None
    total = process_cpu(server.pid)  # its reaped children included
    server.terminate()
    server.wait()
    if client.forked != runs:
        sys.exit(f"the fork server ran {client.forked} of {runs} runs")
    return (total - start_up) / runs, start_up


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    clang = find("clang")
    directory = tempfile.mkdtemp(prefix="mlcc-fsb-", dir="/tmp")
    try:
        unit = os.path.join(directory, "unit.c")
        with open(unit, "w") as f:
            f.write(UNIT)
        bitcode = os.path.join(directory, "unit.bc")
        subprocess.run([clang, "-Oz", "-emit-llvm", "-c", unit, "-o", bitcode], check=True)
        compile_ = ["-Oz", "-c", bitcode, "-o", os.path.join(directory, "unit.o")]
        rounds = []
        for _ in range(args.rounds):
            alone = as_processes(clang, compile_, args.runs)
            per_fork, start_up = forked(clang, compile_, args.runs, directory)
            version = as_processes(clang, ["--version"], args.runs)
            rounds.append({"process_ms": alone * 1000, "forked_ms": per_fork * 1000,
                           "fork_server_start_ms": start_up * 1000, "clang_version_ms": version * 1000})
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    median = {k: round(statistics.median(r[k] for r in rounds), 1) for k in rounds[0]}
    result = {
        "command": f"python scripts/bench_fork_server.py --runs {args.runs} --rounds {args.rounds}"
                   + (f" --json {args.json}" if args.json else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "clang": clang, "unit": UNIT.strip(), "runs_per_round": args.runs,
        "median_per_run": median,
        "saved_per_run_ms": round(median["process_ms"] - median["forked_ms"], 1),
        "rounds": [{k: round(v, 1) for k, v in r.items()} for r in rounds],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
