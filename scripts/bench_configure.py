"""What a package's `./configure` and `make -j2` cost with mlcc's native client against
clang-19 (issue 26's "configure + make" figure).

    python scripts/bench_configure.py [--package libyaml] [--rounds 3] [--json out.json]
                                      [--warm-server]

The package is a Debian source package with an autotools build (default: libyaml,
one of the benchmark projects, none of them in the model's corpus). Its sources are
fetched once (`apt-get source`; `./bootstrap` runs once if it has no configure script);
each round then builds a fresh copy of the tree with clang-19 and with mlcc at -Oz,
interleaved: `./configure CC=... CFLAGS=-Oz`, then `make -j2`. mlcc starts cold in
every round: a new runtime directory (so a new compile server, whose start-up and CPU,
its children's included, count as mlcc's) and an empty decision cache. The table gives
the median over the rounds of wall seconds and CPU seconds (the build's processes plus
the servers'), and mlcc's ratio to clang's. `--warm-server` starts mlcc's compile
server (one `-c` of an empty file) before each round's configure: what the cold
start costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlcc import model_server  # noqa: E402
from mlcc.learn.evaluate import bench_builds  # noqa: E402
from mlcc.learn.evaluate import projects as pj  # noqa: E402
from mlcc.learn.evaluate.bench_measure import children_cpu  # noqa: E402
from mlcc.toolchain import find  # noqa: E402

STEPS = {"configure": ["./configure", "CFLAGS=-Oz"], "make": ["make", "-j2"]}


def pristine_tree(package: str, workdir: Path) -> Path:
    """The package's sources, extracted once, with a configure script."""
    tree = workdir / "pristine"
    if not (tree / "configure").exists():
        pj.extract_source(pj.fetch_source(package), tree)
        if not (tree / "configure").exists():
            subprocess.run(["./bootstrap"], cwd=tree, check=True, capture_output=True)
    return tree


def build_once(tree: Path, compiler: str, cc: str, workdir: Path, warm_server: bool = False) -> dict:
    """One configure and make of a fresh copy of `tree` with `cc`: seconds per step
    (with mlcc's server started first, `warm_server`)."""
    copy = workdir / compiler
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(tree, copy, symlinks=True)
    runtime = Path(tempfile.mkdtemp(prefix="mlcc-run-", dir="/tmp"))
    env = pj.build_env(cc, cc.replace("mlcc", "mlcc++") if compiler == "mlcc" else find("clang++"))
    env.update(XDG_RUNTIME_DIR=str(runtime), MLCC_CONFIG=os.devnull,
               MLCC_CACHE=str(workdir / "decisions"), MLCC_NO_CACHE="0")
    shutil.rmtree(workdir / "decisions", ignore_errors=True)
    if warm_server and compiler == "mlcc":
        (runtime / "empty.c").write_text("")
        subprocess.run([cc, "-c", str(runtime / "empty.c"), "-o", str(runtime / "empty.o")],
                       env=env, check=True)
    out = {}
    try:
        for step, argv in STEPS.items():
            cpu, wall = children_cpu(), time.monotonic()
            subprocess.run([*argv, f"CC={cc}"] if step == "configure" else argv, cwd=copy,
                           env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[step] = {"wall": time.monotonic() - wall, "cpu": children_cpu() - cpu}
        servers = model_server.stop_all(str(runtime / "mlcc"))
        out["servers"] = {"count": servers["servers"], "cpu": servers["cpu"]}
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="libyaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--warm-server", action="store_true",
                        help="start mlcc's compile server before each configure")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mlcc-bench-configure")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    tree = pristine_tree(args.package, args.workdir)
    compilers = {"clang": find("clang"), "mlcc": bench_builds.native_client()[0]}
    runs: dict[str, list[dict]] = {name: [] for name in compilers}
    for _ in range(args.rounds):
        for name, cc in compilers.items():
            runs[name].append(build_once(tree, name, cc, args.workdir, args.warm_server))

    def median(name: str, step: str, what: str) -> float:
        values = []
        for r in runs[name]:
            value = sum(r[s][what] for s in STEPS) if step == "both" else r[step][what]
            if what == "cpu" and step in ("make", "both"):
                value += r["servers"]["cpu"]  # the compile server serves the whole build
            values.append(value)
        return statistics.median(values)

    table = {}
    print(f"{args.package}: median of {args.rounds} rounds, seconds (mlcc/clang)")
    for step in (*STEPS, "both"):
        row = {}
        for what in ("wall", "cpu"):
            c, m = median("clang", step, what), median("mlcc", step, what)
            row[what] = {"clang": round(c, 2), "mlcc": round(m, 2), "ratio": round(m / c, 3)}
        table[step] = row
        label = "configure + make -j2" if step == "both" else step
        print(f"  {label:22s} wall {row['wall']['clang']:6.2f} {row['wall']['mlcc']:6.2f} "
              f"({row['wall']['ratio']:.2f}x)   CPU {row['cpu']['clang']:6.2f} "
              f"{row['cpu']['mlcc']:6.2f} ({row['cpu']['ratio']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps({"package": args.package, "rounds": args.rounds,
                                         "warm_server": args.warm_server,
                                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                         "table": table, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
