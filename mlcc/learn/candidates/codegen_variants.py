"""Choose a target's code generation variants: the second stage of single-shot.

Single-shot runs opt once with the target's default. Code generation is cheap
next to opt, and a unit's best code generation options differ from file to
file, so the driver may generate code from that one optimized module more than
once and keep the smallest object (`codegen_variants` in mlcc/data/targets.toml).
This step picks which variants, from the code generation sweep's sizes
(`codegen-sweep --sample label --count 0`, every training unit): greedily, the
option set that most lowers the training units' total bytes, each unit taking
its smallest of the default and the sets chosen so far. `--rule project` weighs
each training project's saving equally instead (a data-heavy project no longer
decides: docs/TARGETS.md); it writes a file of its own that nothing ships yet.
Only sets that are knob edits of the default can ship (a knob of its own left
out, or another knob added); the others are shown for what they would give.

The validation sweep (`--sample validation`) is read only to report: per number
of variants, the total and per-project gains against clang's pipeline, and the
files larger than clang's (clang's sizes from the 20-evaluation search,
`search-budget-all-<target>-O<level>.json`). Writes
`models/data/codegen-variants-<target>-O<level>.json`.

    MLCC_LEARN_TARGET=thumbv7m python -m mlcc.learn.candidates codegen-variants
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from mlcc import knobs
from mlcc.learn.candidates import codegen_sweep
from mlcc.learn.report.targets_report import size_summary
from mlcc.learn.search import budget, search

MAX_VARIANTS = 3
# A variant ships when it lowers the training units' total bytes by this much (percent
# of the default's), on top of the variants before it: each costs a code generation.
MIN_STEP_PCT = 0.1


def knob_edit(default: str, name: str, option_set: list[str], target: str) -> str | None:
    """The pipeline that is `default` with the sweep's set `name` as a knob edit: one of
    its own code generation knobs left out (`without-<knob>`), or a knob of `target`
    added whose options are exactly the set (in place of a knob of the default that
    sets the same option). None when the set is no knob edit."""
    if name.startswith(codegen_sweep.WITHOUT):
        return knobs.without(default, name[len(codegen_sweep.WITHOUT):])
    own = knobs.knobs_of(default)
    table = knobs.table()
    wanted = [arg for o in option_set for arg in ("-mllvm", o)]

    def options(knob: str) -> set[str]:
        return {arg.split("=", 1)[0] for arg in table[knob].get("codegen", [])[1::2]}

    for k, entry in table.items():
        if k not in own and entry.get("codegen") == wanted and target in entry.get("targets", [target]):
            # in place of the default's knob that sets the same options (jump tables)
            return knobs.name([*(x for x in own if not options(x) & options(k)), k])
    return None


def greedy(units: dict, names: list[str], count: int, rule: str = "total") -> list[str]:
    """Up to `count` option sets, each the one that most raises `RULES[rule]` of the
    units, each taking its smallest of the default and the sets chosen so far (ties: the
    earlier set); stops when none raises it."""
    score = RULES[rule]
    chosen: list[str] = []
    for _ in range(count):
        now = score(units, chosen)
        saved = {name: score(units, [*chosen, name]) - now for name in names if name not in chosen}
        if not saved or max(saved.values()) <= 0:
            break
        chosen.append(max(saved, key=lambda n: (saved[n], -names.index(n))))
    return chosen


def smallest(row: dict, chosen: list[str]) -> int:
    """A unit's smallest size of the default (`baseline`) and the sets `chosen`."""
    return min(row["sizes"][n] for n in ["baseline", *chosen] if row["sizes"].get(n))


def saved_pct(units: dict, chosen: list[str]) -> float:
    """How much smaller (percent) the units are in total, each taking its smallest of the
    default and `chosen`, than with the default alone."""
    base = sum(r["sizes"]["baseline"] for r in units.values())
    return 100.0 * (1 - sum(smallest(r, chosen) for r in units.values()) / base)


def project_saved_pct(units: dict, chosen: list[str]) -> float:
    """`saved_pct` per project, averaged over the projects: a data-heavy project (one
    whose units hold most of the bytes) weighs as much as any other."""
    base: dict[str, int] = {}
    best: dict[str, int] = {}
    for r in units.values():
        base[r["project"]] = base.get(r["project"], 0) + r["sizes"]["baseline"]
        best[r["project"]] = best.get(r["project"], 0) + smallest(r, chosen)
    return 100.0 * sum(1 - best[p] / base[p] for p in base) / len(base) if base else 0.0


# What the greedy choice raises and the shipping step is measured in (`--rule`).
RULES = {"total": saved_pct, "project": project_saved_pct}


def shipped(chosen: list[str], train_units: dict, rule: str = "total") -> list[str]:
    """The first variants of `chosen` (greedy order) that each save MIN_STEP_PCT on
    training, by `RULES[rule]`, on top of those before."""
    score = RULES[rule]
    kept: list[str] = []
    for name in chosen:
        if score(train_units, [*kept, name]) - score(train_units, kept) < MIN_STEP_PCT:
            break
        kept.append(name)
    return kept


def against_clang(units: dict, clang: dict, chosen: list[str]) -> dict:
    """Total gain, geometric mean of per-project gains (percent) and files larger than
    clang's, each unit taking its smallest of the default and `chosen`."""
    rows = [{**r, "clang": clang[u]} for u, r in units.items() if u in clang]
    summary = size_summary(rows, lambda r: smallest(r, chosen))
    return {"total_pct": round(summary["total"], 3), "project_geomean_pct": round(summary["geomean"], 3),
            "larger": summary["larger"], "units": summary["units"]}


def _units(sample: str, default: str) -> dict:
    path = search.DATA / f"codegen-sweep-{search.TAG}-{sample}.json"
    if not path.exists():
        raise click.ClickException(f"{path.name} missing: run `codegen-sweep --sample {sample}"
                                   f"{' --count 0' if sample == 'label' else ''}` first")
    swept = json.loads(path.read_text())["by_default"].get(default)
    if not swept:
        raise click.ClickException(f"{path.name} has no sweep of the current default {default}")
    return {u: r for u, r in swept["units"].items() if r["sizes"].get("baseline")}


@click.command()
@click.option("--count", default=MAX_VARIANTS, show_default=True, help="Variants at most.")
@click.option("--rule", type=click.Choice(sorted(RULES)), default="total", show_default=True,
              help="What the choice weighs: the training units' total bytes, or each training "
                   "project's saving averaged over the projects. `project` writes "
                   "codegen-variants-<target>-O<level>-project.json, which `ship-targets` does not read.")
def main(count: int, rule: str) -> None:
    """Choose the target's code generation variants on the training units' sweep."""
    default = codegen_sweep.swept_default()  # what the sweeps were measured on
    if not default:
        raise click.ClickException("no tuned default yet: run `python -m mlcc.learn.candidates tune-default`")
    sets = codegen_sweep.option_sets(search.TARGET, default)
    edits = {n: knob_edit(default, n, o, search.TARGET) for n, o in sets.items()}
    train_units = _units("label", default)
    valid_units = _units("validation", default)
    clang = {r["unit"]: r["clang"] for r in json.loads(budget.RESULTS_ALL.read_text())["rows"]
             if r.get("clang")}
    rows = []
    ships: list[str] = []
    for label, names in (("knob edits", [n for n in sets if edits[n]]), ("any option set", list(sets))):
        chosen = greedy(train_units, names, count, rule)
        if label == "knob edits":
            ships = shipped(chosen, train_units, rule)
        for k in range(len(chosen) + 1):
            rows.append({"from": label, "variants": chosen[:k],
                         "pipelines": [edits[n] for n in chosen[:k]] if label == "knob edits" else None,
                         "train_saved_pct": round(saved_pct(train_units, chosen[:k]), 3),
                         "train_project_saved_pct": round(project_saved_pct(train_units, chosen[:k]), 3),
                         "validation_saved_pct": round(saved_pct(valid_units, chosen[:k]), 3),
                         "validation": against_clang(valid_units, clang, chosen[:k])})
    out = search.DATA / f"codegen-variants-{search.TAG}{'' if rule == 'total' else '-' + rule}.json"
    out.write_text(json.dumps({"target": search.TARGET, "opt_level": search.OPT_LEVEL, "rule": rule,
                               "default": default, "train_units": len(train_units),
                               "validation_units": len(valid_units), "rows": rows,
                               "ships": [edits[n] for n in ships]}, indent=1) + "\n")
    table = Table(title=f"{search.TARGET} -O{search.OPT_LEVEL}: code generation variants chosen on "
                        f"{len(train_units)} training units, on {len(valid_units)} validation units")
    for col in ("chosen from", "variants", "training: vs default %", "training: project mean %",
                "validation: vs default %", "vs clang %", "project geomean %", "larger than clang"):
        table.add_column(col)
    for r in rows:
        v = r["validation"]
        table.add_row(r["from"], ", ".join(r["variants"]) or "(the default alone)",
                      f"{r['train_saved_pct']:+.2f}", f"{r['train_project_saved_pct']:+.2f}",
                      f"{r['validation_saved_pct']:+.2f}",
                      f"{v['total_pct']:+.2f}", f"{v['project_geomean_pct']:+.2f}",
                      f"{v['larger']} of {v['units']}")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)
    click.echo(f"ships {len(ships)} variant(s): {', '.join(ships) or 'none'} "
               f"(each saves {MIN_STEP_PCT} % on training, rule {rule})"
               + ("; `candidates ship-targets` writes them" if rule == "total" else ""))
    click.echo(f"-> {out}")
