"""What each of a unit's trial builds costs and adds (issue 26: trials at 2.5x clang's CPU).

`-fmlcc-trials=K` builds clang's own pipeline and the model's K-th trial set, one
opt and one code generation each (`trials.UnitBuilder.best_of`). This study builds
the same pipelines, one at a time, on every unit the bench projects' x86-64 builds
optimized (the units of `scripts/plugin_route_check.py`, their bitcode collected with
MLCC_COLLECT), and keeps for each build: a hash of opt's output, the code generation
arguments, a hash of the object, its size (mlcc's objective), and opt's and code
generation's seconds. It then answers:

- could a build be skipped because an earlier build of the unit had the same
  optimized module and the same code generation arguments (the same object, proven
  without building it)?
- what does each subset of the builds give: the total gain over clang's pipeline,
  the files larger than clang's, and the seconds the subset costs?

    python scripts/trial_builds_study.py --workdir /work/bench-cross-s39b \
        [--level z] [--trials 3] [--jobs 1] --out models/data/trial-builds-Oz.json

The seconds are wall-clock per tool process; run it on a quiet machine with --jobs 1
for CPU-like figures.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plugin_route_check  # noqa: E402

from mlcc import ir_reader, model, passes, pipeline  # noqa: E402
from mlcc.learn import measure  # noqa: E402


def collect(workdir: Path, level: str, into: Path) -> int:
    """Each bench unit's pre-optimization bitcode, kept in `into`/<project>/ by the
    driver itself (MLCC_COLLECT); returns how many commands failed."""
    failed = 0
    for index, (project, unit) in enumerate(plugin_route_check.units(workdir)):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
        env.update(MLCC_NO_CACHE="1", MLCC_COLLECT=str(into / project))
        out = into / f"unit-{index}.o"
        done = subprocess.run(plugin_route_check._command(unit, level, str(out)), cwd=unit.cwd,
                              env=env, capture_output=True, timeout=1200)
        failed += done.returncode != 0
        out.unlink(missing_ok=True)
    return failed


def build_all(args: tuple[Path, str, list[str]]) -> dict:
    """Every pipeline of `names` on one collected unit, as the driver builds a trial."""
    project_dir, unit_id, names = args
    unit = measure.Unit.load(project_dir, unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-trial-study-") as tmp:
        prep = measure.prepare(unit, tmp)
        builder = measure.Measurer(prep, tmp).builder
        instructions = float(ir_reader.shape(prep.bitcode).instructions)
        builds = []
        for name in names:
            pipe = builder.job.pipeline(passes.bounded(name, instructions))
            started = time.perf_counter()
            try:
                optimized = builder.optimize(pipe)
                opt_done = time.perf_counter()
                built = builder.generate(pipe, optimized, assembly=False)
            except Exception as exc:  # a failed build is kept as such
                builds.append({"pipeline": name, "failed": str(exc)[:200]})
                continue
            builds.append({
                "pipeline": name, "size": built.size,
                "optimized_sha256": hashlib.sha256(Path(optimized).read_bytes()).hexdigest()[:24],
                "codegen_args": list(pipe.codegen_args),
                "object_sha256": hashlib.sha256(Path(built.output).read_bytes()).hexdigest()[:24],
                "opt_seconds": round(opt_done - started, 3),
                "codegen_seconds": round(time.perf_counter() - opt_done, 3)})
    return {"project": project_dir.name, "unit": unit_id, "instructions": instructions, "builds": builds}


def subsets(units: list[dict], labels: list[str]) -> list[dict]:
    """Each subset of the builds (by index) on the units where every build succeeded."""
    complete = [u for u in units if all("size" in b for b in u["builds"])]
    clang = sum(u["builds"][0]["size"] for u in complete)
    rows = []
    for k in range(1, len(labels) + 1):
        for combo in itertools.combinations(range(len(labels)), k):
            best = [min(u["builds"][i]["size"] for i in combo) for u in complete]
            seconds = sum(u["builds"][i]["opt_seconds"] + u["builds"][i]["codegen_seconds"]
                          for u in complete for i in combo)
            rows.append({"builds": [labels[i] for i in combo],
                         "total_gain_pct": round(100 * (1 - sum(best) / clang), 3),
                         "larger_than_clang": sum(b > u["builds"][0]["size"] for b, u in zip(best, complete)),
                         "seconds": round(seconds, 1)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--level", choices=("z", "s"), default="z")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    graph = model.load(str(model.bundled_model_path(args.level)))
    chosen = graph.trial_sets[min(args.trials, len(graph.trial_sets)) - 1]
    names = [pipeline.CLANG, *(p for p in chosen if p != pipeline.CLANG)]
    labels = ["clang", *(f"candidate {graph.candidates.index(p)}" for p in names[1:])]
    with tempfile.TemporaryDirectory(prefix="mlcc-trial-units-") as tmp:
        failed = collect(args.workdir, args.level, Path(tmp))
        todo = [(d, f.stem, names) for d in sorted(Path(tmp).iterdir()) if d.is_dir()
                for f in sorted(d.glob("*.bc"))]
        with ProcessPoolExecutor(args.jobs) as pool:
            units = list(pool.map(build_all, todo))

    skippable = same_object = builds = 0
    seconds = {"opt": 0.0, "codegen": 0.0, "skippable": 0.0}
    for u in units:
        modules, objects = set(), set()
        for b in u["builds"]:
            if "size" not in b:
                continue
            builds += 1
            seconds["opt"] += b["opt_seconds"]
            seconds["codegen"] += b["codegen_seconds"]
            module = (b["optimized_sha256"], tuple(b["codegen_args"]))
            if module in modules:
                skippable += 1
                seconds["skippable"] += b["codegen_seconds"]
            same_object += b["object_sha256"] in objects
            modules.add(module)
            objects.add(b["object_sha256"])
    per_build = {label: {"opt_seconds": round(sum(u["builds"][i].get("opt_seconds", 0) for u in units), 1),
                         "codegen_seconds": round(sum(u["builds"][i].get("codegen_seconds", 0) for u in units), 1)}
                 for i, label in enumerate(labels)}
    result = {
        "command": f"python scripts/trial_builds_study.py --workdir {args.workdir} --level {args.level} "
                   f"--trials {args.trials} --jobs {args.jobs} --out {args.out}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "level": f"-O{args.level}", "trials": args.trials, "model": graph.digest,
        "pipelines": dict(zip(labels, names)), "units": len(units), "commands_failed": failed,
        "builds": builds, "same_module_and_codegen_args_as_an_earlier_build": skippable,
        "same_object_as_an_earlier_build": same_object,
        "seconds": {k: round(v, 1) for k, v in seconds.items()}, "per_build": per_build,
        "subsets": subsets(units, labels), "per_unit": units}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_unit", "subsets")}, indent=1))
    print("| builds | total gain | files larger than clang's | seconds |\n| --- | ---: | ---: | ---: |")
    for row in result["subsets"]:
        print(f"| {', '.join(row['builds'])} | {row['total_gain_pct']:+.2f} % | {row['larger_than_clang']} | "
              f"{row['seconds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
