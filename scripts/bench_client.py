"""What one command costs: clang-19, mlcc's Python entry point, and mlcc's native
client with a warm compile server (the client exec'ing clang for pass-through
commands, and, to compare, the server's child exec'ing it).

    python scripts/bench_client.py [--rounds 20] [--json out.json] [--cold]

Each round runs every variant of every case once, interleaved; the table gives
the median wall time, its ratio to clang's, and the mean CPU per command (the
command's own processes plus, for the client, the server's CPU spent meanwhile,
its children's included). No decision or output cache (MLCC_NO_CACHE=1): every
command does its whole work. The numbers in docs/DESIGN.md come from this script.

`--cold` measures a build's first commands instead, when no server runs: each
round, in a new runtime directory, the client runs COLD_SEQUENCE one command after
the other (the first starts the server and waits for it), and clang-19 runs the
same commands; the table gives each step's median wall time.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlcc import client_build, compile_server, model_server  # noqa: E402

CASES = {
    "-E small.c (pass-through)": ["-E", "small.c", "-o", "small.i"],
    "-Oz -c empty.c": ["-Oz", "-c", "empty.c", "-o", "empty.o"],
    "-Oz -c empty.c, tiny-source off (front end, then clang on the bitcode)": ["-Oz", "-c", "empty.c", "-o", "empty.o"],
    "-Oz -c calc.c (model)": ["-Oz", "-c", "calc.c", "-o", "calc.o"],
}
# mlcc's settings of a case (clang ignores them)
CASE_ENV = {"-Oz -c empty.c, tiny-source off (front end, then clang on the bitcode)": {"MLCC_TINY_SOURCE": "0"}}
# a build's first commands, as a configure script begins: probes, then a compile
COLD_SEQUENCE = (["-Oz", "-c", "empty.c", "-o", "empty.o"], ["-E", "small.c", "-o", "small.i"],
                 ["-Oz", "small.c", "-o", "small"], ["-Oz", "-c", "calc.c", "-o", "calc.o"])
SMALL_C = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _server_cpu(runtime: Path) -> float:
    found = [s for s in model_server.servers(str(runtime / "mlcc")) if s.get("kind") == "compile"]
    return found[0]["cpu"] if found else 0.0


def _start_server(runtime: Path, env: dict, exec_in_server: bool) -> None:
    (runtime / "mlcc").mkdir(mode=0o700, exist_ok=True)
    sock = runtime / "mlcc" / compile_server.socket_name(str(ROOT))
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "from mlcc.compile_server import main; sys.exit(main())")
    argv = [sys.executable, "-c", code, str(sock)] + (["--exec-in-server"] if exec_in_server else [])
    subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    deadline = time.monotonic() + 60
    while not _server_cpu(runtime):
        if time.monotonic() > deadline:
            raise SystemExit("the compile server did not start")
        time.sleep(0.05)


def _report(rows: list[dict], columns: dict[str, str], json_path: Path | None) -> None:
    """`rows` as a Markdown table of `columns` (key: heading; text columns left-aligned,
    commands in backquotes), and as JSON in `json_path` if given."""
    text = {"command", "case", "variant"}
    print("| " + " | ".join(columns.values()) + " |")
    print("| " + " | ".join("---" if k in text else "---:" for k in columns) + " |")
    for r in rows:
        cells = [f"`{r[k]}`" if k in ("command", "case") else str(r[k]) for k in columns]
        print("| " + " | ".join(cells) + " |")
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2) + "\n")


def cold_rounds(client: str, env: dict, work: Path, rounds: int) -> list[dict]:
    """COLD_SEQUENCE's wall times, median over `rounds`: the client with no server
    running at first, and clang-19."""
    wall: dict[tuple[int, str], list[float]] = {}
    for _ in range(rounds):
        runtime = Path(tempfile.mkdtemp(prefix="mlcc-cold-", dir="/tmp"))
        try:
            for name, prefix, venv in (("clang-19", ["clang-19"], env),
                                       ("mlcc, client, no server at first", [client],
                                        {**env, "XDG_RUNTIME_DIR": str(runtime)})):
                for step, argv in enumerate(COLD_SEQUENCE):
                    start = time.perf_counter()
                    proc = subprocess.run([*prefix, *argv], cwd=work, env=venv,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    wall.setdefault((step, name), []).append(time.perf_counter() - start)
                    if proc.returncode != 0:
                        raise SystemExit(f"{name} {argv}: {proc.stderr.decode()}")
        finally:
            model_server.stop_all(str(runtime / "mlcc"))
            shutil.rmtree(runtime, ignore_errors=True)
    rows = []
    for step, argv in enumerate(COLD_SEQUENCE):
        base = statistics.median(wall[step, "clang-19"])
        for name in ("clang-19", "mlcc, client, no server at first"):
            median = statistics.median(wall[step, name])
            rows.append({"step": step + 1, "command": " ".join(argv), "variant": name,
                         "wall_ms": round(1000 * median, 1), "ratio": round(median / base, 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cold", action="store_true", help="a build's first commands, no server running")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlcc-bench-client-"))
    try:
        bindir = work / "bin"
        client = str(client_build.build(bindir)[0])
        (work / "small.c").write_text(SMALL_C)
        (work / "empty.c").write_text("")
        shutil.copy(ROOT / "scripts" / "demo" / "calc.c", work / "calc.c")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
        env.update(MLCC_NO_CACHE="1", PYTHONPATH=str(ROOT))
        if args.cold:
            print(f"median of {args.rounds} rounds, each with a new runtime directory\n")
            _report(cold_rounds(client, env, work, args.rounds),
                    {"step": "step", "command": "command", "variant": "variant",
                     "wall_ms": "wall (ms)", "ratio": "x clang"}, args.json)
            return 0
        runtimes = {"client": Path(tempfile.mkdtemp(prefix="mlcc-bc-", dir="/tmp")),
                    "client, exec in server": Path(tempfile.mkdtemp(prefix="mlcc-bc-", dir="/tmp"))}
        for name, runtime in runtimes.items():
            _start_server(runtime, {**env, "XDG_RUNTIME_DIR": str(runtime)},
                          exec_in_server=name != "client")
        python_entry = [sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {str(ROOT)!r}); del sys.argv[0]; "
                        "from mlcc.cli import main_c; main_c()", "mlcc"]
        variants = {
            "clang-19": (["clang-19"], env, None),
            "mlcc, Python entry": (python_entry, {**env, "MLCC_SERVER": "0"}, None),
            **{f"mlcc, {name} + server": ([client], {**env, "XDG_RUNTIME_DIR": str(rt)}, rt)
               for name, rt in runtimes.items()},
        }
        wall = {(c, v): [] for c in CASES for v in variants}
        cpu = {(c, v): 0.0 for c in CASES for v in variants}
        for _ in range(args.rounds):
            for case, case_argv in CASES.items():
                for name, (prefix, venv, runtime) in variants.items():
                    server_before = _server_cpu(runtime) if runtime else 0.0
                    cpu_before = _children_cpu()
                    start = time.perf_counter()
                    proc = subprocess.run([*prefix, *case_argv], cwd=work, env={**venv, **CASE_ENV.get(case, {})},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    wall[case, name].append(time.perf_counter() - start)
                    cpu[case, name] += _children_cpu() - cpu_before
                    if runtime:  # the status query's own fork is counted too (about 1 ms)
                        cpu[case, name] += _server_cpu(runtime) - server_before
                    if proc.returncode != 0:
                        raise SystemExit(f"{name} {case_argv}: {proc.stderr.decode()}")
        rows = []
        for case in CASES:
            base = statistics.median(wall[case, "clang-19"])
            for name in variants:
                median = statistics.median(wall[case, name])
                rows.append({"case": case, "variant": name, "wall_ms": round(1000 * median, 1),
                             "ratio": round(median / base, 2),
                             "cpu_ms": round(1000 * cpu[case, name] / args.rounds, 1)})
        print(f"median of {args.rounds} (interleaved); CPU: mean per command\n")
        _report(rows, {"case": "command", "variant": "variant", "wall_ms": "wall (ms)",
                       "ratio": "x clang", "cpu_ms": "CPU (ms)"}, args.json)
        for runtime in runtimes.values():
            model_server.stop_all(str(runtime / "mlcc"))
            shutil.rmtree(runtime, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
