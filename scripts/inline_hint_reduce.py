"""Which hints made the hinted builds smaller? (issue 28, idea 3, after inline_hint_room.py)

`inline_hint_room.py` found C++ units where one of 16 random sets of per-function
inlining hints beats the default, but a set hints dozens of functions. This study
takes each such unit, rebuilds its trials (the same seeded sets), and reduces the
best set: it keeps whichever half of the set is still at least as small as the set
itself, until neither half is, then drops single hints that do not matter. What is
left are the hints that carry the saving, each with what the unoptimized IR says
about its function: linkage, instructions, call sites in the unit, whether the
source asked for inlining (`inlinehint`). A rule a pass could apply would show here.

    python scripts/inline_hint_reduce.py [--language c++] [--jobs 2]

reads and writes models/data/inline-hint-room-<target>-<language>-Oz.json (each
reduced unit gains `kept`); docs/MODEL.md, issue 28's table.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inline_hint_room import bounded_defaults, function_facts, hint_sets, hintable  # noqa: E402
from mlcc import knobs  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.measure import Unit, generate, optimize, prepare  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.search import search  # noqa: E402

def _reduce(args) -> dict | None:
    unit_dir, unit_id, default, trials, seed, target_size = args
    unit = Unit.load(Path(unit_dir), unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-hints-") as tmp:
        prep = prepare(unit, tmp)
        facts = function_facts(prep.bitcode)
        names = hintable(facts)
        codegen_args = knobs.codegen_args(default, unit.codegen_args)
        builds = 0

        def size(hints) -> int | None:
            nonlocal builds
            builds += 1
            csv = os.path.join(tmp, "hints.csv")
            Path(csv).write_text("".join(f"{n},{h}\n" for n, h in hints))
            optimized = os.path.join(tmp, "o.bc")
            if not optimize(replace(prep, target_flags=(*prep.target_flags, f"-forceattrs-csv-path={csv}")),
                            default, optimized):
                return None
            return generate(prep, optimized, codegen_args, os.path.join(tmp, "o.o"))

        sets = hint_sets(names, trials, random.Random(f"{seed}:{unit_id}"))
        sized = [(s, h) for h in sets if (s := size(h)) is not None]
        best, kept = min(sized, key=lambda sh: sh[0])
        if best != target_size:  # the trials did not come out as the room study's
            return {"unit": unit_id, "reproduced": False}
        while len(kept) > 1:
            half = len(kept) // 2
            for part in (kept[:half], kept[half:]):
                s = size(part)
                if s is not None and s <= best:
                    kept, best = part, s
                    break
            else:
                break
        for hint in list(kept):
            if len(kept) > 1:
                rest = [h for h in kept if h != hint]
                s = size(rest)
                if s is not None and s <= best:
                    kept, best = rest, s
    return {"unit": unit_id, "reproduced": True, "reduced_size": best, "builds": builds,
            "kept": [{"function": n, "hint": h, **facts.get(n, {})} for n, h in kept]}


@click.command()
@click.option("--language", type=click.Choice(["c++", "c"]), default="c++", show_default=True)
@click.option("--jobs", default=2, show_default=True)
def main(language: str, jobs: int) -> None:
    path = MODELS / "data" / f"inline-hint-room-{search.TARGET}-{language.replace('+', 'x')}-Oz.json"
    data = json.loads(path.read_text())
    layout = Layout.from_environment()
    manifest = {u["id"]: u for s in ("train", "validation") for u in search.units_of(search.load_manifest(), s)}
    rows = {r["unit"]: r for v in data["samples"].values() for r in v["rows"]}
    todo = [r for r in rows.values() if r["best"] < r["default"]]
    bounded = bounded_defaults([manifest[r["unit"]] for r in todo], data["default"], layout)
    work = [(str(search.unit_dir(layout, manifest[r["unit"]]["project"])), r["unit"], bounded[r["unit"]],
             data["trials"], data["seed"], r["best"]) for r in todo if r["unit"] in bounded]
    print(f"{len(work)} units to reduce", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        for out in pool.map(_reduce, work, chunksize=1):
            if out:
                rows[out["unit"]].update({k: v for k, v in out.items() if k != "unit"})
    hints = [h for r in rows.values() for h in r.get("kept", [])]
    summary = {"units_reduced": sum(bool(r.get("kept")) for r in rows.values()),
               "not_reproduced": sum(r.get("reproduced") is False for r in rows.values()),
               "hints_kept": len(hints),
               "by_hint_and_linkage": Counter(f"{h['hint']} {h.get('linkage')}" for h in hints),
               "inlinehint": Counter(f"{h['hint']} inlinehint={h.get('inlinehint')}" for h in hints)}
    data["reduced"] = summary
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
