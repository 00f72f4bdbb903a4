"""Every unit of the bench projects through the plugin route and through opt and clang:
are the objects the same bytes? (issue 26: one process per unit only where the bytes
are proven identical to the three-process route).

The units are those a bench run's mlcc optimized, read from the `mlcc.log` of each
project's x86-64 build in a bench work directory (`mlcc-tool bench --profile cross`
keeps them as <workdir>/cross/<project>/x86_64, with their trees). Each unit's command
runs again in its directory at every level asked, once as it is and once with
`-fmlcc-no-plugin`, both without the cache; the objects go to a directory of their own.

    python scripts/plugin_route_check.py --workdir /work/bench-cross-s39b \
        --out docs/plugin-route-check.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlcc.learn.corpus import derive
from mlcc.learn.evaluate import bench_cross

LEVELS = ("z", "s")


def units(workdir: Path) -> list[tuple[str, bench_cross.Unit]]:
    """(project, unit) for the units of every project's x86-64 build under `workdir`
    whose objects it left (configure and CMake probes left out, as the benches do)."""
    return [(tree.parent.name, u) for tree in sorted(workdir.glob(f"cross/*/{bench_cross.LOGGED_TREE}"))
            for u in bench_cross.project_units(tree)]


def _command(unit: bench_cross.Unit, level: str, out: str) -> list[str]:
    """The unit's command at `level` ("z", "s"), the unit alone, its object into `out`."""
    tokens = derive.one_unit(derive.relevel(list(unit.argv), level), unit.driver, unit.source)
    return ["mlcc++" if unit.driver == "c++" else "mlcc", *tokens, "-o", out]


def check(project: str, unit: bench_cross.Unit, level: str, scratch: Path, index: int) -> dict:
    """One unit at one level, both routes: its routes and whether the bytes agree."""
    result = {"project": project, "source": unit.source, "level": f"-O{level}"}
    objects = {}
    for name, extra in (("plugin", ()), ("apart", ("-fmlcc-no-plugin",))):
        out = scratch / f"{index}-O{level}.{name}.o"
        log = scratch / f"{index}-O{level}.{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
        env.update(MLCC_NO_CACHE="1", MLCC_LOG=str(log))
        done = subprocess.run([*_command(unit, level, str(out)), *extra], cwd=unit.cwd, env=env,
                              capture_output=True, text=True, timeout=1200)
        if done.returncode != 0 or not log.exists():
            result[name] = f"failed: {done.stderr.strip()[-300:]}"
            return result
        entry = json.loads(log.read_text().splitlines()[-1])
        result[name] = entry.get("route")
        result[f"{name}_pipeline"] = entry.get("pipeline")
        objects[name] = out.read_bytes()
    result["same"] = objects["plugin"] == objects["apart"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    todo = units(args.workdir)
    if not todo:
        print(f"no units under {args.workdir}/cross/*/{bench_cross.LOGGED_TREE}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="plugin-check-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(check, project, u, level, Path(tmp), i)
                for i, (project, u) in enumerate(todo) for level in LEVELS]
        results = [j.result() for j in jobs]
    compared = [r for r in results if "same" in r]
    summary = {
        "command": "python scripts/plugin_route_check.py --workdir " + str(args.workdir)
                   + " --out " + str(args.out),
        "units": len(todo), "levels": [f"-O{level}" for level in LEVELS], "builds_compared": len(compared),
        "identical": sum(r["same"] for r in compared),
        "different": [r for r in compared if not r["same"]],
        "failed": [r for r in results if "same" not in r],
        "plugin_route_taken": sum(r["plugin"] == "plugin" for r in compared),
        "three_process_route_taken": sum(r["apart"] == "opt+clang" for r in compared),
        "projects": sorted({r["project"] for r in results}),
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("different", "failed")}, indent=1))
    print(f"different: {len(summary['different'])}, failed: {len(summary['failed'])}")
    return 0 if not summary["different"] and not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
