"""A profiled -Os build, clang-19 against mlcc: size and the profile's own workload.

    python -m mlcc.learn.evaluate profile

Lua (a bench project, built by its own Makefile) is built instrumented with
`clang-19 -Os -fprofile-instr-generate`, runs its run-time workload
(mlcc/learn/data/run-time-workloads.toml) to collect the profile, and is built
again with `-Os -fprofile-instr-use=lua.profdata` by clang-19 and by mlcc
single-shot. Reported: the `lua` program's .text+.data+.rodata and the
instructions callgrind counts for the same workload on both builds (their
outputs must be the same). Results: docs/bench-profile-results.json and the
table in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import click

from mlcc.learn.evaluate import bench_builds, bench_lto, projects as pj, run_time
from mlcc.learn.evaluate.bench_measure import linked_size
from mlcc.learn.paths import REPO

RESULTS = REPO / "docs" / "bench-profile-results.json"
LEVEL = "-Os"
PROJECT = "lua"
START = "<!-- profile-table: written by `python -m mlcc.learn.evaluate profile`; rerun it, do not edit -->"
END = "<!-- /profile-table -->"


def _workload() -> dict:
    return next(w for w in run_time.load_workloads() if w["project"] == PROJECT)


def _argv(workload: dict, workdir: Path) -> list[str]:
    data = str(run_time.WORKLOADS_FILE.parent)
    return [str(workdir / a) if a.startswith("src/") else a.format(data=data) for a in workload["argv"]]


def _build(compiler: str, opt: str, workdir: Path, jobs: int) -> Path:
    """Lua built with `compiler` ("clang" or "mlcc") and flags `opt`; its program."""
    project = next(p for p in bench_builds.load_projects() if p.name == PROJECT)
    cc, cxx = bench_builds.compilers(bench_builds.Config(compiler, LEVEL, "single" if compiler == "mlcc" else "-"))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pj.extract_source(pj.fetch_source(project.package), workdir / "src")
    env = pj.build_env(cc, cxx)
    if compiler == "mlcc":
        env = bench_builds.mlcc_environment(env, "single", workdir / "mlcc.log", workdir / "decisions")
    b = pj.Build(workdir=workdir, cc=cc, cxx=cxx, opt=opt, jobs=jobs, log=workdir / "build.log", env=env)
    pj.RECIPES[project.recipe].build(b)
    return workdir / pj.RECIPES[project.recipe].artifact


def collect_profile(workdir: Path, jobs: int) -> Path:
    """The workload's profile from clang-19's instrumented build, merged."""
    program = _build("clang", f"{LEVEL} -fprofile-instr-generate", workdir / "instrumented", jobs)
    raw = workdir / "lua.profraw"
    subprocess.run(_argv(_workload(), workdir / "instrumented"), cwd=workdir, check=True, capture_output=True,
                   env=dict(os.environ, LLVM_PROFILE_FILE=str(raw)))
    merged = workdir / "lua.profdata"
    subprocess.run(["llvm-profdata-19", "merge", "-o", str(merged), str(raw)], check=True)
    if not program.exists():
        raise click.ClickException(f"the instrumented build left no {program}")
    return merged


@click.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=REPO / "build" / "bench-profile")
@click.option("--jobs", default=2, show_default=True)
def main(workdir: Path, jobs: int) -> None:
    """Lua at -Os with a profile of its workload: clang-19 against mlcc."""
    workdir = workdir.resolve()
    profile = collect_profile(workdir, jobs)
    workload = _workload()
    results: dict = {"project": PROJECT, "level": LEVEL, "workload": workload["name"],
                     "profile": "clang-19 -fprofile-instr-generate, the same workload", "builds": {}}
    outputs = {}
    for compiler in ("clang", "mlcc"):
        program = _build(compiler, f"{LEVEL} -fprofile-instr-use={profile}", workdir / compiler, jobs)
        count, out = run_time.instructions(_argv(workload, workdir / compiler), workdir, [])
        outputs[compiler] = out
        results["builds"][compiler] = {"bytes": linked_size(program), "instructions": count}
    results["same_output"] = outputs["clang"] == outputs["mlcc"]
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    rows = table(results)
    click.echo("\n".join(rows))
    bench_lto.write_table(rows, start=START, end=END)


def table(results: dict) -> list[str]:
    clang, mlcc = results["builds"]["clang"], results["builds"]["mlcc"]
    return ["| build (lua, -Os, profile of its workload) | bytes | instructions (callgrind) |",
            "| --- | ---: | ---: |",
            f"| clang-19 `-fprofile-instr-use` | {clang['bytes']:,} | {clang['instructions']:,} |",
            f"| mlcc `-fprofile-instr-use` | {mlcc['bytes']:,} | {mlcc['instructions']:,} |",
            f"| mlcc against clang-19 | {100 * (1 - mlcc['bytes'] / clang['bytes']):+.2f} % smaller | "
            f"{mlcc['instructions'] / clang['instructions']:.4f}x |",
            "", f"Outputs the same: {'yes' if results['same_output'] else 'NO'}."]
