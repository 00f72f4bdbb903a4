"""How much would choosing code generation options per function add? (issue 28, idea 3)

Single-shot on a cross target builds the default's one optimized module with the
default's code generation options and with each of its code generation variants,
and keeps the smallest object: the choice is per unit. This study bounds what the
same choice per function could add. For each validation unit it builds those
objects (opt once, one code generation each, as the driver does), reads each
function's size from the symbol table (`llvm-nm --print-size`, text symbols), and
scores:

- the default alone, and today's per-unit choice (the smallest object);
- the per-function oracle: the default's object with each function replaced by its
  smallest build among the objects. Only functions every object defines count
  (functions the machine outliner makes differ between builds), so it is an upper
  bound for a per-function choice of these options, not something LLVM can build
  today: of these options only the jump-table threshold has a function attribute
  (`"no-jump-tables"`).

    MLCC_LEARN_TARGET=thumbv7m python scripts/per_function_room.py [--sample validation] [--jobs 2]

writes models/data/per-function-room-<target>-Oz.json (docs/MODEL.md, issue 28's
table). Needs the target's corpus (`make corpus`, `corpus derive --target`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcc import knobs, passes, targets  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.measure import Unit, generate, optimize, prepare  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.report.targets_report import size_summary  # noqa: E402
from mlcc.learn.search import search  # noqa: E402


def function_sizes(obj: str) -> dict[str, int]:
    """Each defined text symbol's size in the object."""
    out = subprocess.run([shutil.which("llvm-nm-19") or "llvm-nm", "--print-size", "--defined-only", obj],
                         capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tT":
            sizes[fields[3]] = int(fields[1], 16)
    return sizes


def _unit_row(args) -> dict | None:
    """Worker: one unit's objects (the default and each variant), their objective and
    their functions' sizes; None when the unit cannot be built."""
    unit_dir, unit_id, project, default, variants, clang_size = args
    unit = Unit.load(Path(unit_dir), unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-perfunc-") as tmp:
        try:
            prep = prepare(unit, tmp)
        except Exception:  # a unit whose tools fail is left out
            return None
        optimized = os.path.join(tmp, "o.bc")
        if not optimize(prep, default, optimized):
            return None
        builds = []
        for pipeline in (default, *variants):
            obj = os.path.join(tmp, f"{len(builds)}.o")
            size = generate(prep, optimized, knobs.codegen_args(pipeline, unit.codegen_args), obj)
            if size is None:
                return None
            builds.append((size, function_sizes(obj)))
    sizes = [s for s, _ in builds]
    common = set.intersection(*(set(f) for _, f in builds))
    saved = sum(builds[0][1][f] - min(b[1][f] for b in builds) for f in common)
    return {"unit": unit_id, "project": project, "clang": clang_size, "default": sizes[0],
            "per_unit": min(sizes), "per_function": sizes[0] - saved,
            "functions": len(common)}


def gains(rows: list[dict], key: str) -> dict:
    """Total gain, geometric mean of per-project gains and files larger than clang's when
    each unit's size is its `key` (`targets_report.size_summary`)."""
    s = size_summary(rows, lambda r: r[key])
    return {"total_gain_pct": round(s["total"], 3), "project_geomean_gain_pct": round(s["geomean"], 3),
            "larger": s["larger"]}


@click.command()
@click.option("--sample", type=click.Choice(["train", "validation"]), default="validation", show_default=True)
@click.option("--jobs", default=2, show_default=True)
def main(sample: str, jobs: int) -> None:
    name = search.TARGET
    target = targets.named(name)
    variants = target.variants("z")
    if not variants:
        raise click.ClickException(f"{name} ships no code generation variants")
    store = search.Store(MODELS / "data" / f"measurements-{name}-Oz.jsonl.gz").by_unit()
    # the units' instruction counts (the IR outliner's bound); those the committed table
    # lacks are counted into a copy of it, which leaves the table as `train` made it
    with tempfile.TemporaryDirectory(prefix="mlcc-perfunc-") as tmp:
        table = Path(tmp) / "features.jsonl.gz"
        shutil.copyfile(MODELS / "data" / f"features-v1-{name}-Oz.jsonl.gz", table)
        counts = search.slow_pass_sizes(search.units_of(search.load_manifest(), sample),
                                           search.corpus_bitcode(Layout.from_environment()), table)
    layout = Layout.from_environment()
    work = []
    for u in search.units_of(search.load_manifest(), sample):
        clang = store.get(u["id"], {}).get("clang")
        directory = search.unit_dir(layout, u["project"])
        if clang and u["id"] in counts and (directory / f"{u['id']}.bc").exists():
            n = counts[u["id"]]
            work.append((str(directory), u["id"], u["project"], passes.bounded(target.default("z"), n),
                         tuple(passes.bounded(v, n) for v in variants), clang))
    print(f"{name}: {len(work)} {sample} units", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        rows = [r for r in pool.map(_unit_row, work, chunksize=2) if r]
    result = {"target": name, "sample": sample, "default": target.default("z"), "variants": list(variants),
              "units": len(rows), "functions": sum(r["functions"] for r in rows),
              **{key: gains(rows, key) for key in ("default", "per_unit", "per_function")},
              "rows": rows}
    for key in ("default", "per_unit", "per_function"):
        print(f"  {key:13} {result[key]}")
    out = MODELS / "data" / f"per-function-room-{name}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
