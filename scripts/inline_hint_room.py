"""How much could per-function inlining hints add on C++ units? (issue 28, idea 3)

The inliner decides per call site; LLVM takes a decision per function without a new
pass through function attributes: `noinline` keeps every call to the function,
`alwaysinline` inlines every call it can. opt adds them from a list at the start of
clang's pipeline (its `forceattrs` pass, `-forceattrs-csv-path`). This study bounds
what choosing them per function could add to the shipped default at -Oz, as issue 28
asks, on the C++ units first (templates and small methods are where inlining
decisions pile up), with C units beside for comparison.

For each unit (the x86-64 corpus's training and validation units of the chosen
language) it builds the target's default, then `--trials` builds of the default with
hints to its hintable functions (defined, named without quotes, not `noinline`,
`alwaysinline` or `optnone` already): every single hint where there are no more than
`--trials` of them, otherwise random sets, each function hinted with probability p
(cycling over PROBABILITIES), `noinline` or `alwaysinline` with equal odds. The
unit's best is the smallest of the default and its trials: an estimate from below of
what a per-function choice could find, not something a learner would reach.

    python scripts/inline_hint_room.py [--language c++] [--trials 16] [--jobs 2] [--limit 0]

writes models/data/inline-hint-room-<target>-<language>-Oz.json (docs/MODEL.md, issue
28's table). Needs the target's corpus (`make corpus`).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcc import knobs, passes, targets  # noqa: E402
from mlcc.toolchain import find  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.measure import Unit, generate, optimize, prepare  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.search import search  # noqa: E402
from per_function_room import gains  # noqa: E402

PROBABILITIES = (0.02, 0.05, 0.1, 0.2)
HINTS = ("noinline", "alwaysinline")
# attributes that already decide inlining, or forbid the other hint
DECIDED = re.compile(r"\b(noinline|alwaysinline|optnone)\b")
DEFINE = re.compile(r"^define [^@]*@([A-Za-z0-9_.$]+)\(.*?\)[^{]*?((?:#\d+ ?)*)\{?\s*$")
GROUP = re.compile(r"^attributes (#\d+) = \{ (.*) \}$", re.M)
LINKAGE = re.compile(r"^define (internal|private|linkonce_odr|linkonce|weak_odr|weak|available_externally)?")
CALL = re.compile(r"(?:call|invoke) [^@]*@([A-Za-z0-9_.$]+)\(")


def function_facts(bitcode: str) -> dict[str, dict]:
    """Per defined function, in the unit's order: linkage, instructions, call sites naming
    it, inlinehint, and whether an attribute already decides its inlining (`decided`)."""
    text = subprocess.run([find("opt"), "-S", bitcode, "-o", "-"], capture_output=True, text=True,
                          check=True).stdout
    groups = dict(GROUP.findall(text))
    facts, current = {}, None
    for line in text.splitlines():
        m = DEFINE.match(line)
        if m:
            attrs = line + " " + " ".join(groups.get(g, "") for g in m.group(2).split())
            current = m.group(1)
            facts[current] = {"linkage": (LINKAGE.match(line).group(1) or "external"),
                              "instructions": 0, "inlinehint": "inlinehint" in attrs, "calls": 0,
                              "decided": bool(DECIDED.search(attrs))}
        elif line.startswith("}"):
            current = None
        elif current and line.startswith("  ") and not line.lstrip().startswith(";"):
            facts[current]["instructions"] += 1
    for name, n in Counter(CALL.findall(text)).items():
        if name in facts:
            facts[name]["calls"] = n
    return facts


def hintable(facts: dict[str, dict]) -> list[str]:
    """The unit's functions a hint may be given to (`function_facts` of its bitcode)."""
    return [name for name, f in facts.items() if not f["decided"]]


def hint_sets(names: list[str], trials: int, rng: random.Random) -> list[list[tuple[str, str]]]:
    """The hints of each trial: every single hint when there are no more than `trials`
    of them, otherwise random sets, each function hinted with probability p."""
    if len(names) * len(HINTS) <= trials:
        return [[(n, h)] for n in names for h in HINTS]
    sets = []
    for i in range(trials):
        p = PROBABILITIES[i % len(PROBABILITIES)]
        hints = [(n, rng.choice(HINTS)) for n in names if rng.random() < p]
        if not hints:  # a small unit: one random hint instead of none
            hints = [(rng.choice(names), rng.choice(HINTS))]
        sets.append(hints)
    return sets


def _unit_row(args) -> dict | None:
    """Worker: one unit's default and its hinted trials; None when the unit cannot be built."""
    unit_dir, unit_id, project, default, clang_size, trials, seed = args
    unit = Unit.load(Path(unit_dir), unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-hints-") as tmp:
        try:
            prep = prepare(unit, tmp)
            names = hintable(function_facts(prep.bitcode))
        except Exception:  # a unit whose tools fail is left out
            return None
        codegen_args = knobs.codegen_args(default, unit.codegen_args)

        def build(csv: str | None) -> tuple[int | None, float]:
            start = time.perf_counter()
            hinted = prep if csv is None else replace(
                prep, target_flags=(*prep.target_flags, f"-forceattrs-csv-path={csv}"))
            optimized = os.path.join(tmp, "o.bc")
            if not optimize(hinted, default, optimized):
                return None, time.perf_counter() - start
            size = generate(prep, optimized, codegen_args, os.path.join(tmp, "o.o"))
            return size, time.perf_counter() - start

        base, seconds = build(None)
        if base is None:
            return None
        sizes, hints_given, failed = [], [], 0
        for i, hints in enumerate(hint_sets(names, trials, random.Random(f"{seed}:{unit_id}"))):
            csv = os.path.join(tmp, f"hints{i}.csv")
            Path(csv).write_text("".join(f"{n},{h}\n" for n, h in hints))
            size, _ = build(csv)
            if size is None:
                failed += 1
                continue
            sizes.append(size)
            hints_given.append(len(hints))
    return {"unit": unit_id, "project": project, "clang": clang_size, "default": base,
            "best": min([base, *sizes]), "trials": len(sizes), "failed": failed,
            "functions": len(names), "smaller_trials": sum(s < base for s in sizes),
            "changed_trials": sum(s != base for s in sizes),
            "hints": hints_given, "default_seconds": round(seconds, 3)}


def language_sample(manifest: dict, sample: str, language: str, limit: int, seed: int) -> list[dict]:
    """The units of `sample` in `language`: at most `limit` of them, seeded (0: all)."""
    units = [u for u in search.units_of(manifest, sample) if u["language"] == language]
    if limit and len(units) > limit:
        units = sorted(random.Random(seed).sample(units, limit), key=lambda u: u["id"])
    return units


def on_disk(units: list[dict], store: dict, layout: Layout) -> list[tuple[str, dict, int]]:
    """(directory, unit, clang's size) of each unit whose clang size the measurement
    table (`store`, by unit) has and whose bitcode the corpus holds."""
    out = []
    for u in units:
        clang = store.get(u["id"], {}).get("clang")
        directory = search.unit_dir(layout, u["project"])
        if clang and (directory / f"{u['id']}.bc").exists():
            out.append((str(directory), u, clang))
    return out


def bounded_defaults(units: list[dict], default: str, layout: Layout) -> dict[str, str]:
    """Each unit's `default` as the driver runs it, its slow passes bounded by the unit's
    instruction count (from a copy of the committed feature table, which stays as `train`
    made it); units without a count are left out."""
    with tempfile.TemporaryDirectory(prefix="mlcc-hints-") as tmp:
        table = Path(tmp) / "features.jsonl.gz"
        if search.FEATURES_TABLE.exists():
            table.write_bytes(search.FEATURES_TABLE.read_bytes())
        counts = search.slow_pass_sizes(units, search.corpus_bitcode(layout), table)
    return {unit: passes.bounded(default, n) for unit, n in counts.items()}


@click.command()
@click.option("--language", type=click.Choice(["c++", "c"]), default="c++", show_default=True)
@click.option("--trials", default=16, show_default=True, help="hinted builds per unit")
@click.option("--jobs", default=2, show_default=True)
@click.option("--limit", default=0, show_default=True,
              help="at most this many units per sample, seeded (0: all)")
@click.option("--seed", default=0, show_default=True)
def main(language: str, trials: int, jobs: int, limit: int, seed: int) -> None:
    name = search.TARGET
    default = targets.named(name).default("z")
    store = search.Store(search.MEASUREMENTS).by_unit()
    layout = Layout.from_environment()
    manifest = search.load_manifest()
    result = {"target": name, "language": language, "default": default, "trials": trials,
              "probabilities": list(PROBABILITIES), "seed": seed, "samples": {}}
    for sample in ("train", "validation"):
        units = language_sample(manifest, sample, language, limit, seed)
        bounded = bounded_defaults(units, default, layout)
        work = [(directory, u["id"], u["project"], bounded[u["id"]], clang, trials, seed)
                for directory, u, clang in on_disk(units, store, layout) if u["id"] in bounded]
        print(f"{name} {language} {sample}: {len(work)} units", flush=True)
        start = time.perf_counter()
        with ProcessPoolExecutor(jobs) as pool:
            rows = [r for r in pool.map(_unit_row, work, chunksize=1) if r]
        summary = {key: gains(rows, key) for key in ("default", "best")}
        summary.update(units=len(rows), wall_seconds=round(time.perf_counter() - start, 1),
                       units_with_a_smaller_trial=sum(r["best"] < r["default"] for r in rows),
                       failed_trials=sum(r["failed"] for r in rows))
        print(f"  {json.dumps(summary)}", flush=True)
        result["samples"][sample] = {**summary, "rows": rows}
    out = MODELS / "data" / f"inline-hint-room-{name}-{language.replace('+', 'x')}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
