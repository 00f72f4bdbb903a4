"""Every unit of the bench projects through a one-clang route and through opt and clang:
are the objects the same bytes? (issue 26: one process per unit only where the bytes
are proven identical to the three-process route).

The units are those a bench run's mlcc optimized, read from the `mlcc.log` of each
project's x86-64 build in a bench work directory: `mlcc-tool bench --profile cross`
keeps them as <workdir>/cross/<project>/x86_64, `mlcc-tool bench --profile full` as
<workdir>/<project>/mlcc-Oz-single (`--trees` picks the pattern). Each unit's command
runs again in its directory at every level, once by the route checked and once by opt
and clang; the objects go to a directory of their own.

- `--route plugin`: the split route's front end, then the chosen pipeline and code
  generation in one clang with the pass plugin, against `-fmlcc-no-plugin`; the split
  route throughout (`-fmlcc-no-one-process`), without the cache.
- `--route one-process`: the whole unit in one clang from its source (mlcc/one_process.py),
  against `-fmlcc-no-one-process -fmlcc-no-plugin`; each build with a cache of its own
  (the route needs one) and the small-unit rule off unless `--small-unit` sets it: a
  small unit gets clang's pipeline on both routes, the others the default.
- `--route fork-server`: `-fmlcc-trials=3` with clang forked from the compile server's
  fork server, against `-fmlcc-no-fork-server`.
- `--route reuse-builds`: `-fmlcc-trials=3` with builds that optimize a unit to an
  earlier build's module taking its object, against `-fmlcc-no-reuse-builds`; each
  command in its own process (no compile server), so that the CPU of its process and
  children is the build's, summed per side (`cpu_seconds`).

    python scripts/plugin_route_check.py --workdir /work/bench-cross-s39b \
        --out docs/plugin-route-check.json
    python scripts/plugin_route_check.py --route one-process --workdir /work/bench-work-s47 \
        --trees '*/mlcc-Oz-single' --out docs/one-process-route-check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlcc.learn.corpus import derive
from mlcc.learn.evaluate import bench_cross
from mlcc.learn.evaluate.bench_builds import BUILD_TREE
from mlcc.objective import sections

LEVELS = ("z", "s")
CROSS_TREES = f"cross/*/{bench_cross.LOGGED_TREE}"

# route checked -> (its name in the log, its extra flags, the other build's flags and its route)
ROUTES = {
    "plugin": ("plugin", ("-fmlcc-no-one-process",), ("-fmlcc-no-one-process", "-fmlcc-no-plugin"),
               "opt+clang"),
    "one-process": ("one process", (), ("-fmlcc-no-one-process", "-fmlcc-no-plugin"), "opt+clang"),
    # not a route in the log: clang forked from the compile server's fork server, against
    # clang started as a process, with trials (the most clang runs per unit)
    "fork-server": ("fork server", ("-fmlcc-trials=3",), ("-fmlcc-trials=3", "-fmlcc-no-fork-server"),
                    "clang processes"),
    # not a route either: trials whose builds of an earlier build's module take its object
    "reuse-builds": ("reused", ("-fmlcc-trials=3",), ("-fmlcc-trials=3", "-fmlcc-no-reuse-builds"),
                     "none reused"),
}


def units(workdir: Path, trees: str = CROSS_TREES) -> list[tuple[str, bench_cross.Unit]]:
    """(project, unit) for the units of every project's x86-64 build under `workdir`
    matching `trees`, whose objects it left (configure and CMake probes left out, as the
    benches do); the project is the tree's parent directory."""
    found = []
    for tree in sorted(workdir.glob(trees)):
        # a full bench builds in <project>/tree and renames it after the build: the
        # log's directories name the tree it was built in
        built_in = tree.parent / BUILD_TREE
        if tree.name == "x86_64" or built_in.exists():
            found += [(tree.parent.name, u) for u in bench_cross.project_units(tree)]
            continue
        on_disk = bench_cross.find_objects(tree)
        found += [(tree.parent.name, _moved(u, str(built_in), str(tree)))
                  for u in bench_cross.units_from_log(tree / "mlcc.log", built_in)
                  if u.path in on_disk]
    return found


def _moved(unit: bench_cross.Unit, old: str, new: str) -> bench_cross.Unit:
    """`unit` with the directory `old` in its paths and arguments (`-I<old>/include`
    too) read as `new`."""
    def move(text: str) -> str:
        return new if text == old else text.replace(old + "/", new + "/")
    return dataclasses.replace(unit, cwd=move(unit.cwd), source=move(unit.source),
                               argv=tuple(move(t) for t in unit.argv))


def _command(unit: bench_cross.Unit, level: str, out: str) -> list[str]:
    """The unit's command at `level` ("z", "s"), the unit alone, its object into `out`."""
    tokens = derive.one_unit(derive.relevel(list(unit.argv), level), unit.driver, unit.source)
    return ["mlcc++" if unit.driver == "c++" else "mlcc", *tokens, "-o", out]


def _without_symbol_names(data: bytes) -> list[tuple[str, bytes]]:
    """A 64-bit ELF object's sections, in order, by name and contents, without what names
    its symbols: no string table, and each symbol's name offset zeroed in the symbol
    table. Two objects that differ only in their symbols' names (the optimizer's names
    for private constants: the split route's optimizer numbers them from a module read
    from bitcode, clang's and the one-process route's from the front end's) compare equal."""
    found = []
    for name, kind, offset, size in sections(data):
        if name == ".strtab":
            continue
        content = b"" if kind == 8 else data[offset:offset + size]  # SHT_NOBITS: no bytes
        if kind == 2:  # SHT_SYMTAB: 24-byte entries, the name's offset first
            content = b"".join(b"\0\0\0\0" + content[i + 4:i + 24] for i in range(0, len(content), 24))
        found.append((name, content))
    return found


def _run(argv: list[str], cwd: str, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    """`argv` run to its end, and the CPU seconds of it and the children it waited for."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        done = subprocess.CompletedProcess(argv, proc.returncode, "", err.read().decode(errors="replace"))
    return done, usage.ru_utime + usage.ru_stime


def check(route: str, project: str, unit: bench_cross.Unit, level: str, scratch: Path,
          index: int, small_unit: str = "0") -> dict:
    """One unit at one level, both routes: the routes taken, the pipelines and whether
    the bytes agree."""
    result = {"project": project, "source": unit.source, "level": f"-O{level}"}
    objects = {}
    _, checked, apart, _ = ROUTES[route]
    for name, extra in (("checked", checked), ("apart", apart)):
        out = scratch / f"{index}-O{level}.{name}.o"
        log = scratch / f"{index}-O{level}.{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
        env["MLCC_LOG"] = str(log)
        if route == "one-process":
            env.update(MLCC_CACHE=str(scratch / f"{index}-O{level}.{name}.cache"),
                       MLCC_SMALL_UNIT=small_unit)
        else:
            env["MLCC_NO_CACHE"] = "1"
        if route == "reuse-builds":
            env["MLCC_COMPILE_SERVER"] = "0"
        done, cpu = _run([*_command(unit, level, str(out)), *extra], unit.cwd, env)
        if done.returncode != 0 or not log.exists():
            result[name] = f"failed: {done.stderr.strip()[-300:]}"
            return result
        result[f"{name}_cpu"] = cpu
        entry = json.loads(log.read_text().splitlines()[-1])
        result[name] = entry.get("route")
        if route == "fork-server":
            result[name] = "fork server" if entry.get("clang_forked") else "clang processes"
        if route == "reuse-builds":
            result[name] = "reused" if "earlier build's module" in entry.get("decision", "") else "none reused"

        result[f"{name}_pipeline"] = entry.get("pipeline")
        objects[name] = out.read_bytes()
    same_pipeline = result["checked_pipeline"] == result["apart_pipeline"]
    result["same"] = same_pipeline and objects["checked"] == objects["apart"]
    if not result["same"]:
        result["same_but_symbol_names"] = same_pipeline and (
            _without_symbol_names(objects["checked"]) == _without_symbol_names(objects["apart"]))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", choices=sorted(ROUTES), default="plugin")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--trees", default=CROSS_TREES,
                        help="the logged x86-64 builds under the work directory (a glob)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--small-unit", default="0",
                        help="MLCC_SMALL_UNIT for both builds of --route one-process (default 0: "
                             "the rule off, every unit optimized)")
    args = parser.parse_args(argv)
    todo = units(args.workdir, args.trees)
    if not todo:
        print(f"no units under {args.workdir}/{args.trees}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="plugin-check-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(check, args.route, project, u, level, Path(tmp), i, args.small_unit)
                for i, (project, u) in enumerate(todo) for level in LEVELS]
        results = [j.result() for j in jobs]
    compared = [r for r in results if "same" in r]
    logged = ROUTES[args.route][0]
    summary = {
        "command": " ".join(["python scripts/plugin_route_check.py", "--route", args.route,
                             *(["--small-unit", args.small_unit] if args.small_unit != "0" else []),
                             "--workdir", str(args.workdir), "--trees", repr(args.trees),
                             "--out", str(args.out)]),
        "route": args.route,
        "units": len(todo), "levels": [f"-O{level}" for level in LEVELS], "builds_compared": len(compared),
        "identical": sum(r["same"] for r in compared),
        "identical_but_symbol_names": sum(r.get("same_but_symbol_names", False) for r in compared),
        "different": [r for r in compared if not r["same"] and not r["same_but_symbol_names"]],
        "symbol_names_differ": [r for r in compared if r.get("same_but_symbol_names")],
        "failed": [r for r in results if "same" not in r],
        "checked_route_taken": sum(r["checked"] == logged for r in compared),
        "checked_routes": Counter(str(r["checked"]) for r in compared),
        "checked_by_another_route": [
            {k: r[k] for k in ("project", "source", "level", "checked", "checked_pipeline")}
            for r in compared if r["checked"] != logged],
        "other_route_taken": sum(r["apart"] == ROUTES[args.route][3] for r in compared),
        "projects": sorted({r["project"] for r in results}),
        "cpu_seconds": {level: {side: round(sum(r.get(f"{side}_cpu", 0.0) for r in compared
                                                if r["level"] == level), 1)
                                for side in ("checked", "apart")}
                        for level in sorted({r["level"] for r in compared})},
        "checked_taken_per_level": {level: sum(r["checked"] == logged for r in compared if r["level"] == level)
                                    for level in sorted({r["level"] for r in compared})},
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("different", "failed", "symbol_names_differ",
                                                       "checked_by_another_route")}, indent=1))
    print(f"different: {len(summary['different'])}, failed: {len(summary['failed'])}")
    return 0 if not summary["different"] and not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
