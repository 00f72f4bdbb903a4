"""Could trials generate code only for the functions a candidate changed? A study on the
units of `scripts/trial_prune_study.py` (issue 26, docs/DESIGN.md).

Code generation works function by function (at -Os on x86-64 nothing outlines across
functions), so a function whose optimized IR an earlier trial build of the unit already
had would get the same machine code. For the units with the most code generation seconds
in the prune study's data, each trial build in trial order (clang's pipeline first) is
optimized with opt and disassembled; a function counts as seen when an earlier build had
one of the same name and the same text (attribute group and metadata numbers, which are
module-wide, left out). The share of each build's lines in unseen functions is what its
code generation could not skip; weighted by each build's code generation seconds (from
the study), it bounds what such a reuse could save.

    MLCC_LEARN_LEVEL=s python scripts/function_reuse_study.py --units 60 \\
        --out models/data/function-reuse-study-Os.json
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

STUDY = Path(__file__).resolve().parents[1] / "models" / "data" / "trial-prune-study-Os.json"
_DEFINE = re.compile(r'^define [^\n]*?@("?[^"( ]+"?)\(.*?^}', re.S | re.M)


def functions(disassembly: str) -> dict[str, tuple[str, int]]:
    """Each defined function: (digest of its text without module-wide numbers, lines)."""
    out = {}
    for m in _DEFINE.finditer(disassembly):
        body = m.group(0)
        text = re.sub(r"!\d+", "!", re.sub(r"#\d+", "#", body))
        out[m.group(1)] = (hashlib.sha1(text.encode()).hexdigest(), body.count("\n"))
    return out


def unseen_shares(args: tuple[str, str, list[str]]) -> tuple[str, list[float | None]]:
    """Per trial build of one unit, the share of its lines in functions no earlier build had."""
    from mlcc.learn import measure

    project_dir, unit_id, pipelines = args
    unit = measure.Unit.load(Path(project_dir), unit_id)
    shares: list[float | None] = []
    with tempfile.TemporaryDirectory(prefix="function-reuse-") as tmp:
        prep = measure.prepare(unit, tmp)
        seen: dict[str, set[str]] = {}
        for i, name in enumerate(pipelines):
            optimized = os.path.join(tmp, f"{i}.bc")
            if not measure.optimize(prep, name, optimized):
                shares.append(None)
                continue
            text = subprocess.run(["llvm-dis-19", optimized, "-o", "-"], capture_output=True,
                                  text=True).stdout
            found = functions(text)
            lines = sum(n for _, n in found.values()) or 1
            same = sum(n for f, (digest, n) in found.items() if digest in seen.get(f, ()))
            shares.append(round(1 - same / lines, 4))
            for f, (digest, _) in found.items():
                seen.setdefault(f, set()).add(digest)
    return unit_id, shares


@click.command()
@click.option("--units", "count", default=60, show_default=True,
              help="The units with the most code generation seconds in the prune study.")
@click.option("--jobs", default=2, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(count: int, jobs: int, out: Path) -> None:
    from mlcc.learn.corpus.layout import Layout
    from mlcc.learn.search import search

    units = json.loads(STUDY.read_text())["units"]
    ids = [u for u, r in units.items() if not r.get("error") and r["pipelines"]]
    ids.sort(key=lambda u: -sum((r or {}).get("codegen_s", 0) for r in units[u]["pipelines"].values()))
    layout = Layout.from_environment()
    tasks = [(str(search.unit_dir(layout, units[u]["project"])), u, list(units[u]["pipelines"]))
             for u in ids[:count]]
    with ProcessPoolExecutor(jobs) as pool:
        shares = dict(pool.map(unseen_shares, tasks))
    codegen = later = in_seen = 0.0
    for unit_id, row in shares.items():
        builds = list(units[unit_id]["pipelines"].values())
        for i, (build, share) in enumerate(zip(builds, row)):
            if build is None or share is None:
                continue
            codegen += build["codegen_s"]
            if i:  # clang's build comes first and has nothing to reuse
                later += build["codegen_s"]
                in_seen += build["codegen_s"] * (1 - share)
    summary = {"units": len(shares), "codegen_seconds": round(codegen, 1),
               "later_builds_codegen_seconds": round(later, 1),
               "in_functions_an_earlier_build_had": round(in_seen, 1),
               "share_of_all_codegen": round(in_seen / codegen, 3) if codegen else None}
    out.write_text(json.dumps({"source": STUDY.name, "summary": summary, "units": shares}, indent=1) + "\n")
    click.echo(summary)


if __name__ == "__main__":
    main()
