"""Triage: candidates that make a unit far smaller than clang does, checked for what they removed.

A pipeline that leaves a unit at less than `--below` of clang's bytes has found
something clang's pipeline misses, or it has broken the code. Csmith cannot tell
(library units have no `main`; its programs never read constant data through
volatile pointers), and the measurements alone reward the breakage. The one
miscompile of this kind found so far (docs/RELIABILITY.md: the attributor made
a function that reads a constant array with volatile loads `memory(none)`, so
its calls, loads and the array went away) was found by reading an outlier.

For every such (unit, candidate) pair in the measurement table, this builds
the unit with clang's pipeline and with the candidate, and compares:
- external definitions (`llvm-nm`): a symbol clang's object defines and the
  candidate's does not is a broken link for someone;
- volatile loads and stores in the optimized IR: fewer than clang's pipeline
  keeps is suspect (more inlining or unrolling by clang can also explain it);
- initialized data (.data, .rodata, not the constant pools code generation fills
  for its instructions): code shrinks, data should not halve.
A pair that trips none of them is marked `code`: it only shrank code. Results go
to `models/data/triage-O?.json`; docs/RELIABILITY.md says what was found.

    python -m mlcc.learn.check triage [--below 0.6] [--jobs 2] [--engine ray]
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mlcc import model
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Unit, generate, optimize, prepare
from mlcc.learn.search import search
from mlcc.objective import data_size
from mlcc.pipeline import codegen_args

RESULTS = search.DATA / f"triage-{search.TAG}.json"


def external_definitions(obj: str, opt: str) -> set[str]:
    """Global symbols `obj` defines (llvm-nm from the same LLVM as `opt`)."""
    nm = os.path.join(os.path.dirname(os.path.realpath(opt)), "llvm-nm")
    out = subprocess.run([nm, "--defined-only", "--extern-only", "--format=just-symbols", obj],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def volatile_accesses(bitcode: str) -> int:
    """Volatile loads and stores in a module, read with llvmlite."""
    import llvmlite.binding as llvm

    module = llvm.parse_bitcode(Path(bitcode).read_bytes())
    count = 0
    for function in module.functions:
        for block in function.blocks:
            for ins in block.instructions:
                if ins.opcode in ("load", "store") and f"{ins.opcode} volatile " in str(ins):
                    count += 1
    return count


def build(prep, pipeline: str, workdir: str, tag: str) -> dict | None:
    """Optimized bitcode and object of `pipeline`, with what the checks read; None: failed."""
    optimized, obj = os.path.join(workdir, f"{tag}.bc"), os.path.join(workdir, f"{tag}.o")
    if not optimize(prep, pipeline, optimized):
        return None
    size = generate(prep, optimized, codegen_args(pipeline, prep.unit.codegen_args), obj)
    if size is None:
        return None
    return {"bytes": size, "data": data_size(obj, constant_pools=False), "volatile": volatile_accesses(optimized),
            "externals": external_definitions(obj, prep.opt)}


def compare(clang: dict, other: dict) -> list[str]:
    """What looks removed rather than shrunk: empty when `other` only shrank code."""
    reasons = []
    lost = sorted(clang["externals"] - other["externals"])
    if lost:
        reasons.append(f"external definitions gone: {', '.join(lost[:5])}"
                       + (f" and {len(lost) - 5} more" if len(lost) > 5 else ""))
    if other["volatile"] < clang["volatile"]:
        reasons.append(f"volatile loads/stores {clang['volatile']} -> {other['volatile']}")
    if clang["data"] and other["data"] < clang["data"] / 2:
        reasons.append(f"initialized data {clang['data']:,} -> {other['data']:,} bytes")
    return reasons


def triage_unit(job: tuple[Unit, list[tuple[int, str]]], files: dict[str, str]) -> list[dict]:
    """Worker: build one unit with clang's pipeline and each flagged candidate, compare;
    its bitcode where the engine put it (`files`)."""
    unit, flagged = job
    unit = replace(unit, bitcode=files[unit.bitcode])
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlcc-triage-") as tmp:
        prep = prepare(unit, tmp)
        clang = build(prep, search.CLANG_PIPELINE, tmp, "clang")
        for index, pipeline in flagged:
            other = build(prep, pipeline, tmp, f"c{index}") if clang else None
            row = {"unit": unit.id, "project": unit.project, "candidate": index,
                   "clang_bytes": clang and clang["bytes"], "bytes": other and other["bytes"]}
            if clang and other:
                reasons = compare(clang, other)
                row.update(verdict="suspect" if reasons else "code", reasons=reasons)
            else:
                row.update(verdict="failed", reasons=["a build failed"])
            rows.append(row)
    return rows


def flagged_pairs(candidates: list[str], below: float) -> dict[str, list[tuple[int, str]]]:
    """unit id -> [(candidate index, pipeline)] measured below `below` of clang's bytes."""
    out: dict[str, list[tuple[int, str]]] = {}
    for unit, sizes in search.Store().by_unit().items():
        clang = sizes.get(search.CLANG_PIPELINE)
        if not clang:
            continue
        for i, p in enumerate(candidates):
            if sizes.get(p) and sizes[p] < below * clang:
                out.setdefault(unit, []).append((i, p))
    return out


@click.command()
@click.option("--below", default=0.6, show_default=True,
              help="Flag a candidate that leaves a unit under this share of clang's bytes.")
@click.option("--jobs", default=1, show_default=True)
@engine_option
def main(below: float, jobs: int, backend: str) -> None:
    """Build and check every flagged (unit, candidate) pair of the bundled model."""
    console = Console(stderr=True)
    bundled = model.load(str(model.bundled_model_path(search.OPT_LEVEL)))
    pairs = flagged_pairs(list(bundled.candidates), below)
    manifest = {u["id"]: u for u in search.load_manifest()["units"]}
    layout = Layout.from_environment()
    todo = [(str(search.unit_dir(layout, manifest[u]["project"])), u, flagged)
            for u, flagged in sorted(pairs.items()) if u in manifest]
    missing = [job for job in todo if not (Path(job[0]) / f"{job[1]}.bc").exists()]
    if missing:
        console.print(f"{len(missing)} flagged units are not in this machine's corpus "
                      f"({', '.join(sorted({Path(j[0]).name for j in missing}))}): not checked")
        todo = [job for job in todo if job not in missing]
    rows: list[dict] = [{"unit": unit, "project": Path(unit_dir).name, "candidate": index,
                         "clang_bytes": None, "bytes": None, "verdict": "unchecked",
                         "reasons": ["not in this machine's corpus"]}
                        for unit_dir, unit, flagged in missing for index, _ in flagged]
    tasks = [(Unit.load(Path(unit_dir), unit), flagged) for unit_dir, unit, flagged in todo]
    for unit_rows in Engine(backend, jobs).map(triage_unit, tasks, title="triage", count=len,
                                               inputs=lambda task: [task[0].bitcode]):
        rows.extend(unit_rows)
        console.print(f"{unit_rows[0]['project']} {manifest[unit_rows[0]['unit']]['source']}: "
                      + ", ".join(r["verdict"] for r in unit_rows), markup=False)
    rows.sort(key=lambda r: (r["project"], r["unit"], r["candidate"]))
    for r in rows:
        r["source"] = manifest[r["unit"]]["source"]
    RESULTS.write_text(json.dumps({"opt_level": search.OPT_LEVEL, "model": bundled.digest,
                                   "below": below, "rows": rows}, indent=1) + "\n")
    table = Table(title=f"candidates under {below:.0%} of clang's bytes (-O{search.OPT_LEVEL})")
    for column in ("project", "source", "cand.", "clang", "candidate", "verdict"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["project"], r["source"], str(r["candidate"]), str(r["clang_bytes"]),
                      str(r["bytes"]), r["verdict"] + (": " + "; ".join(r["reasons"]) if r["reasons"] else ""))
    console.print(table)
    suspects = sum(r["verdict"] != "code" for r in rows)
    console.print(f"{len(rows)} pairs on {len(todo)} units, {suspects} to read by hand; "
                  f"written to {RESULTS}")
