"""The units a collection left, and the manifest that lists them.

A corpus directory holds one `<id>.bc` and `<id>.json` per compile; build-system
probes and second compiles of the same file (libtool's PIC copy) are left out.
`index` writes `models/corpus-manifest.json`, one line per unit, whose sha256 is
the training-data hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from rich.table import Table

from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.projects import OPT_LEVEL, SPLITS, Project
from mlcc.learn.paths import MODELS

MANIFEST_FILE = MODELS / "corpus-manifest.json"
MANIFEST_FORMAT = 1

# Paths of units that are build-system probes, not project code (kept out of the manifest).
PROBE_MARKERS = ("/CMakeFiles/CMakeTmp/", "/CMakeFiles/CMakeScratch/", "/CompilerIdC/",
                 "/CompilerIdCXX/", "/conftest")


# ----------------------------------------------------------------------------- the units


def is_probe(source: str) -> bool:
    """True for a unit compiled by a build system's feature test rather than the project."""
    return any(marker in source for marker in PROBE_MARKERS)


def read_units(directory: Path) -> list[dict]:
    """The compile descriptions of a corpus directory's units (probes left out)."""
    units = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (directory / f"{meta.get('id', path.stem)}.bc").is_file() and not is_probe(meta.get("source", "")):
            units.append(meta)
    return units


# Flags that make a second compile of the same file (libtool's PIC copy, a
# shared and a static library from one source list) without making new code.
_VARIANT_FLAGS = frozenset({"-fPIC", "-fpic", "-fPIE", "-fpie", "-DPIC", "-MD", "-MMD", "-MP"})
_VARIANT_FLAGS_WITH_VALUE = frozenset({"-o", "-MF", "-MT", "-MQ"})


def variant_key(meta: dict) -> tuple:
    """What makes a unit a different compile of its source: the source and the
    command line without output names, dependency files and PIC flags."""
    kept, skip = [], False
    for arg in meta.get("argv", []):
        if skip:
            skip = False
        elif arg in _VARIANT_FLAGS_WITH_VALUE:
            skip = True
        elif arg not in _VARIANT_FLAGS and not arg.startswith(("-MF", "-MT", "-MQ", "-o")):
            kept.append(arg)
    return meta.get("source", ""), meta.get("language", ""), tuple(kept)


def distinct_units(units: list[dict]) -> list[dict]:
    """One unit per variant key (the smallest id), in id order."""
    chosen: dict[tuple, dict] = {}
    for meta in sorted(units, key=lambda m: m["id"]):
        chosen.setdefault(variant_key(meta), meta)
    return sorted(chosen.values(), key=lambda m: m["id"])


def count_units(directory: Path) -> int:
    """Units collected so far (cheap: counts bitcode files)."""
    try:
        return sum(1 for e in os.scandir(directory) if e.name.endswith(".bc") and e.name[0] != ".")
    except FileNotFoundError:
        return 0


# ----------------------------------------------------------------------------- the manifest


def instruction_count(bitcode: Path) -> int | None:
    """LLVM IR instructions in a bitcode file (None if llvmlite cannot read it)."""
    import llvmlite.binding as llvm

    try:
        module = llvm.parse_bitcode(bitcode.read_bytes())
    except (RuntimeError, OSError):
        return None
    return sum(1 for f in module.functions for b in f.blocks for _ in b.instructions)


def relative_source(source: str, workdir: Path) -> str:
    """A unit's source relative to the project's source tree (`build/...` for generated files)."""
    path = Path(source)
    for base in (workdir / "src", workdir):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return source


def build_manifest(projects: list[Project], layout: Layout, previous: dict | None = None) -> dict:
    """Describe every collected unit of the listed projects (deterministic: no times, sorted)."""
    known = {(u["project"], u["id"]): u.get("instructions")
             for u in (previous or {}).get("units", [])}
    entries, units = [], []
    for project in projects:
        directory = layout.corpus(project)
        if not layout.marker(project).exists():
            continue
        marker = json.loads(layout.marker(project).read_text())
        collected = read_units(directory)
        metas = distinct_units(collected)
        for meta in metas:
            bitcode = directory / f"{meta['id']}.bc"
            count = known.get((project.name, meta["id"]))
            if count is None:
                count = instruction_count(bitcode)
            units.append({
                "project": project.name, "split": project.split, "id": meta["id"],
                "source": relative_source(meta.get("source", ""), layout.workdir(project)),
                "language": meta.get("language", "?"), "bitcode_bytes": bitcode.stat().st_size,
                "instructions": count})
        entries.append({"name": project.name, "package": project.package, "split": project.split,
                        "tarball": marker.get("tarball", ""), "status": marker.get("status", ""),
                        "units": len(metas), "copies_dropped": len(collected) - len(metas)})
    return {"format": MANIFEST_FORMAT, "opt_level": OPT_LEVEL,
            "bitcode": "clang-19 -Oz -Xclang -disable-llvm-passes -emit-llvm",
            "projects": entries, "units": units}


def write_manifest(manifest: dict, path: Path) -> str:
    """Write the manifest (one unit per line, stable bytes); return its sha256."""
    head = {k: v for k, v in manifest.items() if k != "units"}
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}," for k, v in head.items()),
             ' "units": [']
    rows = [json.dumps(u, sort_keys=True) for u in manifest["units"]]
    lines += [f"  {row}," for row in rows[:-1]] + ([f"  {rows[-1]}"] if rows else [])
    lines += [" ]", "}"]
    data = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def summary_table(manifest: dict) -> Table:
    """Per-project counts with totals per split."""
    table = Table(title="mlcc corpus", show_footer=False)
    for name, justify in (("project", "left"), ("split", "left"), ("units", "right"),
                          ("C", "right"), ("C++", "right"), ("bitcode KiB", "right"),
                          ("instructions", "right")):
        table.add_column(name, justify=justify)
    per: dict[str, Counter] = {}
    for unit in manifest["units"]:
        c = per.setdefault(unit["project"], Counter())
        c["units"] += 1
        c["c++" if unit["language"] in ("c++", "cxx", "c++-cpp-output") else "c"] += 1
        c["bytes"] += unit["bitcode_bytes"]
        c["instructions"] += unit["instructions"] or 0
    totals = {s: Counter() for s in SPLITS}
    for entry in manifest["projects"]:
        c = per.get(entry["name"], Counter())
        totals[entry["split"]].update(c)
        totals[entry["split"]]["projects"] += 1
        table.add_row(entry["name"], entry["split"], str(c["units"]), str(c["c"]), str(c["c++"]),
                      f"{c['bytes'] / 1024:.0f}", str(c["instructions"]))
    table.add_section()
    for split in SPLITS:
        c = totals[split]
        table.add_row(f"{split} ({c['projects']} projects)", split, str(c["units"]), str(c["c"]),
                      str(c["c++"]), f"{c['bytes'] / 1024:.0f}", str(c["instructions"]))
    every = totals["train"] + totals["validation"]
    table.add_row(f"total ({every['projects']} projects)", "", str(every["units"]), str(every["c"]),
                  str(every["c++"]), f"{every['bytes'] / 1024:.0f}", str(every["instructions"]))
    return table
