"""What mlcc's smaller code costs at run time: instructions executed, clang against mlcc.

`mlcc-tool bench` leaves each project built with clang and with mlcc in its
work directory (`<bench dir>/<project>/<build>`). This runs the workloads of
`mlcc/learn/data/run-time-workloads.toml` in each build under valgrind's callgrind, which
counts executed instructions repeatably (wall time on a shared two-core machine
does not), checks that every mlcc build gives the clang build's output, and
writes `docs/RUN-TIME.md` and `docs/run-time.json`.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import click
import numpy as np

from mlcc.learn.evaluate.bench import git_revision
from mlcc.learn.paths import DOCS, LEARN_DATA

WORKLOADS_FILE = LEARN_DATA / "run-time-workloads.toml"
# The builds compared: clang's at each level, then mlcc's single-shot and trials builds.
BUILDS = {"z": ["clang-Oz", "mlcc-Oz-single", "mlcc-Oz-trials"],
          "s": ["clang-Os", "mlcc-Os-single", "mlcc-Os-trials"]}
INPUT_BYTES = 1_000_000
_COLLECTED = re.compile(r"Collected : (\d+)")


def load_workloads(path: Path = WORKLOADS_FILE) -> list[dict]:
    with open(path, "rb") as f:
        return tomllib.load(f)["workload"]


def write_inputs(directory: Path) -> dict[str, str]:
    """A seeded text of INPUT_BYTES (words of varied frequency, like source code and
    prose), and the same compressed by Python's bz2 and gzip (fixed mtime)."""
    rng = random.Random(20261129)
    vocabulary = [''.join(rng.choice("etaoinshrdlucmfwypvbgkqjxz_") for _ in range(rng.randint(1, 9)))
                  for _ in range(3000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    out, size = [], 0
    while size < INPUT_BYTES:
        line = " ".join(rng.choices(vocabulary, weights, k=rng.randint(3, 14))) + "\n"
        out.append(line)
        size += len(line)
    text = "".join(out).encode()
    paths = {"input": directory / "input.txt", "input_bz2": directory / "input.txt.bz2",
             "input_gz": directory / "input.txt.gz"}
    paths["input"].write_bytes(text)
    paths["input_bz2"].write_bytes(bz2.compress(text, 9))
    paths["input_gz"].write_bytes(gzip.compress(text, 9, mtime=0))
    return {k: str(v) for k, v in paths.items()}


def instructions(argv: list[str], cwd: Path, libs: list[Path]) -> tuple[int, bytes]:
    """Instructions callgrind counts for `argv`, and what it wrote to stdout."""
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(str(p) for p in libs))
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          cwd=cwd, env=env, capture_output=True, timeout=1800)
    found = _COLLECTED.search(done.stderr.decode(errors="replace"))
    if done.returncode != 0 or not found:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise click.ClickException(f"{' '.join(argv)} in {cwd} failed: {' / '.join(tail)}")
    return int(found.group(1)), done.stdout


def same_output(check: str, reference: bytes, output: bytes) -> bool:
    if check == "last-line":
        return reference.strip().splitlines()[-1:] == output.strip().splitlines()[-1:]
    return reference == output


def stripped_copy(program: Path, libs: list[Path], into: Path) -> tuple[Path, list[Path]]:
    """`program` and the shared libraries in `libs`, copied into `into` without debug
    info: valgrind 3.19 cannot read clang 19's DWARF 5, and the code is the same."""
    into.mkdir()
    copies = []
    for number, lib in enumerate(libs):
        (into / f"lib{number}").mkdir()
        for so in lib.glob("*.so*"):
            if so.is_file() and not so.is_symlink():
                subprocess.run(["objcopy", "--strip-debug", str(so), str(into / f"lib{number}" / so.name)],
                               check=True)
            elif so.is_symlink():
                (into / f"lib{number}" / so.name).symlink_to(os.readlink(so))
        copies.append(into / f"lib{number}")
    subprocess.run(["objcopy", "--strip-debug", str(program), str(into / program.name)], check=True)
    return into / program.name, copies


def run_workload(workload: dict, bench_dir: Path, builds: list[str], inputs: dict[str, str],
                 scratch: Path) -> dict:
    """The workload in each of `builds` that exists; the first is the reference."""
    row = {"project": workload["project"], "name": workload["name"], "builds": {}}
    reference = None
    for build in builds:
        root = bench_dir / workload["project"] / build
        if not root.is_dir():
            continue
        argv = [a.format(data=LEARN_DATA, **inputs) for a in workload["argv"]]
        program, libs = stripped_copy(root / argv[0], [root / lib for lib in workload.get("libs", [])],
                                      Path(tempfile.mkdtemp(dir=scratch)) / "bin")
        count, output = instructions([str(program), *argv[1:]], root / workload.get("cwd", "."), libs)
        if reference is None:
            reference = output
        row["builds"][build] = {"instructions": count,
                                "output_sha256": hashlib.sha256(output).hexdigest()[:16],
                                "same_output": same_output(workload["check"], reference, output)}
    return row


def ratios(rows: list[dict], clang: str, build: str) -> list[float]:
    return [r["builds"][build]["instructions"] / r["builds"][clang]["instructions"]
            for r in rows if clang in r["builds"] and build in r["builds"]]


def render(results: dict) -> str:
    lines = ["# Run-time cost: instructions executed", "",
             "Generated by `python -m mlcc.learn.evaluate run-time` (`make run-time`) from the builds "
             "`mlcc-tool bench` leaves in its work directory; do not edit by hand.", "",
             "mlcc's code generation knobs trade speed for size (an outlined call, a compare tree "
             "instead of a jump table, no loop strength reduction, no loop-invariant code motion in "
             "code generation): this measures what that costs. Each workload runs under valgrind's "
             "callgrind, which counts the instructions a program executes (the same count run after "
             "run, unlike wall time on a shared machine). A ratio above 1.00 means mlcc's build "
             "executes more instructions than clang's. Every mlcc build must print what clang's "
             "build prints (the `output` column).", "",
             f"Input: {INPUT_BYTES:,} bytes of seeded text (`write_inputs`). "
             f"Measured {results['date']} at mlcc {results['revision']}.", ""]
    for level, builds in BUILDS.items():
        rows = [r for r in results["workloads"] if builds[0] in r["builds"]]
        if not rows:
            continue
        clang, *mlcc = builds
        lines += [f"## -O{level}", "",
                  "| workload | clang instructions | " + " | ".join(mlcc) + " | output |",
                  "| --- | ---: | " + " | ".join("---:" for _ in mlcc) + " | --- |"]
        for r in rows:
            cells = []
            for b in mlcc:
                got = r["builds"].get(b)
                cells.append(f"{got['instructions'] / r['builds'][clang]['instructions']:.3f}"
                             if got else "not built")
            same = all(v["same_output"] for v in r["builds"].values())
            lines.append(f"| {r['name']} | {r['builds'][clang]['instructions']:,} | "
                         + " | ".join(cells) + f" | {'same' if same else '**DIFFERENT**'} |")
        geo = []
        for b in mlcc:
            values = ratios(rows, clang, b)
            geo.append(f"**{float(np.exp(np.mean(np.log(values)))):.3f}**" if values else "")
        lines += ["| geometric mean | | " + " | ".join(geo) + " | |", ""]
    return "\n".join(lines)


@click.command()
@click.option("--bench-dir", type=click.Path(path_type=Path),
              default=lambda: Path(os.environ.get("MLCC_DATA") or Path.home() / ".cache" / "mlcc") / "bench",
              show_default="$MLCC_DATA/bench", help="The work directory of `mlcc-tool bench`.")
@click.option("--levels", default="zs", show_default=True)
def main(bench_dir: Path, levels: str) -> None:
    """Run the workloads in every build `mlcc-tool bench` made and write docs/RUN-TIME.md."""
    if shutil.which("valgrind") is None:
        raise click.ClickException("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="mlcc-run-time-") as tmp:
        inputs = write_inputs(Path(tmp))
        rows = []
        for workload in load_workloads():
            builds = [b for level in levels for b in BUILDS[level]]
            row = run_workload(workload, bench_dir, builds, inputs, Path(tmp))
            if not row["builds"]:
                click.echo(f"{workload['name']}: no build of {workload['project']} in {bench_dir}: "
                           "run `mlcc-tool bench --profile full` first")
                continue
            rows.append(row)
            click.echo(f"{workload['name']}: " + ", ".join(
                f"{b} {v['instructions']:,}{'' if v['same_output'] else ' DIFFERENT OUTPUT'}"
                for b, v in row["builds"].items()))
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "revision": git_revision(), "workloads": rows}
    (DOCS / "run-time.json").write_text(json.dumps(results, indent=1) + "\n")
    (DOCS / "RUN-TIME.md").write_text(render(results))
    click.echo(f"-> {DOCS / 'RUN-TIME.md'}")
    if any(not v["same_output"] for r in rows for v in r["builds"].values()):
        raise SystemExit(1)
