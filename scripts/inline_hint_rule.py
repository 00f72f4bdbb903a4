"""Does a fixed hint rule keep what the random hints found? (issue 28, idea 3)

`inline_hint_reduce.py` found that most hints carrying the saving on C++ units are
`alwaysinline` on a `linkonce_odr` function with one call site in the unit: LLVM's
inliner gives its bonus for the last call only to functions of local linkage, while
a `linkonce_odr` function the unit no longer calls is dropped from its object too.
This study builds each unit's default with rules of that kind (one opt run each,
`-forceattrs-csv-path`) and scores them against the default and clang. The objective
is each object's bytes; but a `linkonce_odr` function's out-of-line copy sits in a
COMDAT group that other units of the program may emit too, and the linker keeps one
copy, so a saving per object can be less, or a loss, once linked. The study also
estimates that: per project, each COMDAT section counted once across its units.

    python scripts/inline_hint_rule.py [--language c++] [--jobs 2]

writes models/data/inline-hint-rule-<target>-<language>-Oz.json (docs/MODEL.md).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inline_hint_room import bounded_defaults, function_facts, gains  # noqa: E402
from mlcc import knobs, targets  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.measure import Unit, generate, optimize, prepare  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.search import search  # noqa: E402
from mlcc.objective import counts, section_sizes  # noqa: E402

# name -> which functions get `alwaysinline`, from function_facts' record
RULES = {
    "linkonce-one-call": lambda f: f["linkage"] == "linkonce_odr" and f["calls"] == 1,
    "linkonce-one-call-small": lambda f: f["linkage"] == "linkonce_odr" and f["calls"] == 1
                                         and f["instructions"] <= 60,
    "linkonce-two-calls-small": lambda f: f["linkage"] == "linkonce_odr" and 1 <= f["calls"] <= 2
                                          and f["instructions"] <= 30,
}


def comdat_split(path: str) -> tuple[int, dict[str, int]]:
    """The object's counted bytes (`objective.counts`) outside COMDAT groups, and each
    counted section inside one by name: the copies a linker keeps once per program."""
    data = Path(path).read_bytes()
    sizes = section_sizes(data)
    is64, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(endian + ("Q" if is64 else "I"), data, 0x28 if is64 else 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A if is64 else 0x2E)
    entry = endian + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    headers = [struct.unpack_from(entry, data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]

    def name(h) -> str:
        start = names_at + h[0]
        return data[start:data.index(b"\0", start)].decode("ascii", errors="replace")

    grouped = set()
    for h in headers:
        if h[1] == 17:  # SHT_GROUP: a flags word, then the member sections' indices
            words = struct.unpack_from(endian + "I" * (h[5] // 4), data, h[4])
            if words and words[0] & 1:  # GRP_COMDAT
                grouped |= {name(headers[i]) for i in words[1:]}
    comdat = {n: sizes[n] for n in grouped if counts(n)}
    return sum(v for n, v in sizes.items() if counts(n)) - sum(comdat.values()), comdat


def _unit_row(args) -> dict | None:
    unit_dir, unit_id, project, default, clang_size = args
    unit = Unit.load(Path(unit_dir), unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-hints-") as tmp:
        try:
            prep = prepare(unit, tmp)
            facts = function_facts(prep.bitcode)
        except Exception:  # a unit whose tools fail is left out
            return None
        codegen_args = knobs.codegen_args(default, unit.codegen_args)

        def size(names: list[str]) -> int | None:
            hinted = prep
            if names:
                csv = os.path.join(tmp, "hints.csv")
                Path(csv).write_text("".join(f"{n},alwaysinline\n" for n in names))
                hinted = replace(prep, target_flags=(*prep.target_flags, f"-forceattrs-csv-path={csv}"))
            optimized = os.path.join(tmp, "o.bc")
            if not optimize(hinted, default, optimized):
                return None
            obj = os.path.join(tmp, "o.o")
            built = generate(prep, optimized, codegen_args, obj)
            if built is not None:
                split[len(split)] = comdat_split(obj)
            return built

        split: dict[int, tuple[int, dict[str, int]]] = {}
        row = {"unit": unit_id, "project": project, "clang": clang_size, "default": size([])}
        if row["default"] is None:
            return None
        sections = {"default": split[0]}
        for name, rule in RULES.items():
            names = [n for n, f in facts.items() if rule(f) and not f.get("decided")]
            row[name] = size(names) if names else row["default"]
            sections[name] = split[len(split) - 1] if names else split[0]
            row[f"{name} functions"] = len(names)
            if row[name] is None:
                return None
    row["sections"] = sections
    return row


def linked_estimate(rows: list[dict], key: str) -> dict:
    """Per project, the bytes of its objects with each COMDAT section counted once (what
    a linker keeps of the copies), for the default and for `key`: the total gain of
    `key` over the default that way and per object."""
    per_project: dict[str, list[int]] = {}
    for project in sorted({r["project"] for r in rows}):
        mine = [r for r in rows if r["project"] == project]
        totals = []
        for build in ("default", key):
            plain, seen = 0, {}
            for r in sorted(mine, key=lambda r: r["unit"]):
                p, comdat = r["sections"][build]
                plain += p
                for n, v in comdat.items():
                    seen.setdefault(n, v)
            totals.append(plain + sum(seen.values()))
        per_project[project] = totals
    default = sum(t[0] for t in per_project.values())
    rule = sum(t[1] for t in per_project.values())
    objects = (sum(r["default"] for r in rows), sum(r[key] for r in rows))
    return {"deduplicated_gain_pct": round(100 * (1 - rule / default), 3),
            "per_object_gain_pct": round(100 * (1 - objects[1] / objects[0]), 3),
            "projects": {p: [t[0], t[1], round(100 * (1 - t[1] / t[0]), 3)] for p, t in per_project.items()}}


@click.command()
@click.option("--language", type=click.Choice(["c++", "c"]), default="c++", show_default=True)
@click.option("--jobs", default=2, show_default=True)
def main(language: str, jobs: int) -> None:
    name = search.TARGET
    default = targets.named(name).default("z")
    store = search.Store(search.MEASUREMENTS).by_unit()
    layout = Layout.from_environment()
    manifest = search.load_manifest()
    result = {"target": name, "language": language, "default": default, "rules": list(RULES), "samples": {}}
    for sample in ("train", "validation"):
        units = [u for u in search.units_of(manifest, sample) if u["language"] == language]
        bounded = bounded_defaults(units, default, layout)
        work = [(str(search.unit_dir(layout, u["project"])), u["id"], u["project"], bounded[u["id"]],
                 store[u["id"]]["clang"])
                for u in units if store.get(u["id"], {}).get("clang") and u["id"] in bounded]
        with ProcessPoolExecutor(jobs) as pool:
            rows = [r for r in pool.map(_unit_row, work, chunksize=1) if r]
        summary = {key: gains(rows, key) for key in ("default", *RULES)}
        summary["units"] = len(rows)
        summary["linked_estimate"] = {key: linked_estimate(rows, key) for key in RULES}
        for r in rows:
            del r["sections"]
        print(f"{name} {language} {sample}: {json.dumps(summary)}", flush=True)
        result["samples"][sample] = {**summary, "rows": rows}
    out = MODELS / "data" / f"inline-hint-rule-{name}-{language.replace('+', 'x')}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
