"""Could trials skip the code generation of a candidate whose optimized module is clearly
larger than the best build so far? A study on training projects (issue 26, docs/DESIGN.md).

For each collected unit of the given training projects, at the level's derived corpus
(`python -m mlcc.learn.corpus derive --level s` after `collect`): clang's pipeline and the
shipped model's trial set for K, as `-fmlcc-trials=K` builds them (`passes.bounded` for
the unit's size), each optimized with opt, two estimates of its optimized module's size
(its instruction count, `ir_reader.shape`; the sum of the target's code size costs,
`opt -passes='print<cost-model>' -cost-kind=code-size`), then code generation and
the object's size; opt's and code generation's seconds (wall, one build at a time per
worker). Then, for each margin m, trials that run every candidate's opt part but generate
code only when its estimate is at most (1 + m) times that of the best build so far (smallest
object; clang's pipeline is always built whole, so trials stay never larger than clang):
the code generation seconds that skips, and the bytes it loses against full trials.

    MLCC_LEARN_LEVEL=s python scripts/trial_prune_study.py --project libtommath \\
        --project pixman --out models/data/trial-prune-study-Os.json

Resumable: units already in --out are not measured again.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

MARGINS = (0.0, 0.01, 0.02, 0.05, 0.10, 0.20)


def measure_unit(args: tuple[str, str, str, int]) -> tuple[str, dict]:
    """Every trial pipeline on one unit: count, seconds and size per pipeline."""
    from mlcc import ir_reader, model, passes, pipeline
    from mlcc.errors import MlccError
    from mlcc.learn import measure
    from mlcc.learn.search import search

    project_dir, unit_id, model_path, k = args
    unit = measure.Unit.load(Path(project_dir), unit_id)
    out: dict = {"project": unit.project, "pipelines": {}}
    with tempfile.TemporaryDirectory(prefix="prune-study-") as tmp:
        try:
            prep = measure.prepare(unit, tmp)
            shape = ir_reader.shape(prep.bitcode)
        except MlccError as exc:
            return unit_id, {**out, "error": str(exc)}
        bound = passes.slow_pass_size(shape.instructions, shape.largest_function, search.OPT_LEVEL)
        chosen = model.load(model_path)
        trial_set = chosen.trial_sets[min(k, len(chosen.trial_sets)) - 1]
        names = list(dict.fromkeys([pipeline.CLANG, *(passes.bounded(p, bound) for p in trial_set)]))
        out["instructions"] = shape.instructions
        for i, name in enumerate(names):
            optimized = os.path.join(tmp, f"{i}.opt.bc")
            start = time.perf_counter()
            if not measure.optimize(prep, name, optimized):
                out["pipelines"][name] = None
                continue
            opt_s = time.perf_counter() - start
            try:
                count = ir_reader.shape(optimized).instructions
            except MlccError:
                count = None
            cost = code_size_cost(prep, optimized)
            start = time.perf_counter()
            extra = pipeline.parse(name, prep.clang_pipeline).codegen_args  # its `codegen` knobs
            size = measure.generate(prep, optimized, extra, os.path.join(tmp, f"{i}.o"))
            out["pipelines"][name] = {"count": count, "cost": cost, "opt_s": round(opt_s, 4),
                                      "codegen_s": round(time.perf_counter() - start, 4), "size": size}
    return unit_id, out


def code_size_cost(prep, optimized: str) -> int | None:
    """The sum of the target's code size cost (TargetTransformInfo, `-cost-kind=code-size`,
    what the inliner and the IR outliner weigh) over the optimized module's instructions."""
    import re
    import subprocess

    proc = subprocess.run([prep.opt, *prep.target_flags, "-passes=instnamer,print<cost-model>",
                           "-cost-kind=code-size", "-disable-output", optimized],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return sum(int(n) for n in re.findall(r"estimated cost of (\d+)", proc.stdout + proc.stderr))


def pruned(unit: dict, margin: float, estimate: str = "count") -> tuple[int, int, float, float]:
    """(full trials' size, pruned trials' size, code generation seconds skipped, all
    seconds) for one unit: pipelines in trial order, clang's first and always built."""
    rows = [r for r in unit["pipelines"].values() if r and r["size"] is not None]
    full = min(r["size"] for r in rows)
    best = rows[0]
    skipped = 0.0
    for r in rows[1:]:
        if r.get(estimate) is not None and best.get(estimate) and r[estimate] > (1 + margin) * best[estimate]:
            skipped += r["codegen_s"]
            continue
        if r["size"] < best["size"]:
            best = r
    seconds = sum(r["opt_s"] + r["codegen_s"] for r in rows)
    return full, best["size"], skipped, seconds


def summarize(units: dict) -> list[dict]:
    usable = [u for u in units.values() if not u.get("error") and u["pipelines"]
              and next(iter(u["pipelines"].values()))]
    clang = sum(next(iter(u["pipelines"].values()))["size"] for u in usable)
    rows = []
    for estimate, m in ((e, m) for e in ("count", "cost") for m in MARGINS):
        if not all(r.get(estimate) is not None for u in usable for r in u["pipelines"].values() if r):
            continue
        full = prune = skipped = seconds = 0.0
        worse = 0
        for u in usable:
            f, p, s, t = pruned(u, m, estimate)
            full, prune, skipped, seconds = full + f, prune + p, skipped + s, seconds + t
            worse += p > f
        rows.append({"estimate": estimate, "margin": m, "units": len(usable),
                     "full_trials_gain_pct": round(100 * (1 - full / clang), 3),
                     "pruned_trials_gain_pct": round(100 * (1 - prune / clang), 3),
                     "units_worse_than_full": worse,
                     "codegen_skipped_share_of_build_seconds": round(skipped / seconds, 4)})
    codegen = sum(r["codegen_s"] for u in usable for r in u["pipelines"].values() if r)
    total = sum(r["opt_s"] + r["codegen_s"] for u in usable for r in u["pipelines"].values() if r)
    rows.append({"codegen_share_of_build_seconds": round(codegen / total, 4) if total else None})
    return rows


@click.command()
@click.option("--project", "projects", multiple=True, required=True, help="A training project (repeatable).")
@click.option("--k", default=3, show_default=True, help="The trial set's size.")
@click.option("--jobs", default=2, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(projects, k, jobs, out) -> None:
    from mlcc.learn.corpus.layout import Layout
    from mlcc.learn.corpus.manifest import MANIFEST_FILE
    from mlcc.learn.paths import REPO
    from mlcc.learn.search import search

    manifest = json.loads(MANIFEST_FILE.read_text())
    split = {p["name"]: p["split"] for p in manifest["projects"]}
    for p in projects:
        if split.get(p) != "train":
            raise click.UsageError(f"{p} is not a training project of the corpus")
    model_path = str(REPO / "mlcc" / "models" / f"size-O{search.OPT_LEVEL}.onnx")
    layout = Layout.from_environment()
    done = json.loads(out.read_text())["units"] if out.exists() else {}
    todo = [(str(search.unit_dir(layout, u["project"])), u["id"], model_path, k)
            for u in manifest["units"] if u["project"] in projects and u["id"] not in done
            and (search.unit_dir(layout, u["project"]) / f"{u['id']}.bc").exists()]
    click.echo(f"{len(todo)} units to measure, {len(done)} done")

    def save() -> None:
        out.write_text(json.dumps({"level": search.OPT_LEVEL, "k": k, "projects": sorted(projects),
                                   "summary": summarize(done), "units": dict(sorted(done.items()))},
                                  indent=1) + "\n")

    with ProcessPoolExecutor(jobs) as pool:
        for n, (unit_id, result) in enumerate(pool.map(measure_unit, todo, chunksize=1), 1):
            done[unit_id] = result
            if n % 20 == 0:
                save()
    save()
    for row in summarize(done):
        click.echo(row)


if __name__ == "__main__":
    main()
