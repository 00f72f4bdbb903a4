"""Choose the candidate pipelines: a small set that covers most of the per-file best.

The coreset idea (Liang et al., ICML 2023): on the explored training units,
every pipeline measured on all of them is a column; starting from clang's own
pipeline, greedily add the column that most lowers the total of the per-unit
minimum. The curve of that total against the set size is the evidence for K.
The default tuned on the labeled training units (`tune_default`), when there
is one, joins the set.
"""

from __future__ import annotations

import json

import click

from mlcc import knobs, passes
from mlcc.learn.candidates.tune_default import tuned_default
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.search import search


def slow_forms(default: str) -> list[str]:
    """The tuned clang pipeline `default` with each slow pass that is a knob
    (`passes.SLOW`, run only on units under `passes.SLOW_BOUND`)."""
    return [knobs.name([*knobs.knobs_of(default), slow]) for slow in passes.SLOW
            if slow in knobs.table() and slow not in knobs.knobs_of(default)]


def measured_units(store: search.Store, units: list[str]) -> list[str]:
    """The units with a size for clang's pipeline: the rows of `complete_columns`."""
    by_unit = store.by_unit()
    return [u for u in units if by_unit.get(u, {}).get(search.CLANG_PIPELINE)]


def complete_columns(store: search.Store, units: list[str],
                     counts: dict[str, float] | None = None) -> dict[str, list[int]]:
    """Pipelines measured on every unit of `measured_units` (failures count as clang's
    size times 1.5), as mlcc runs them on units of these instruction `counts`
    (`search.as_run`); only eligible pipelines (`passes.eligible`) count."""
    by_unit = store.by_unit(counts)
    units = measured_units(store, units)
    pipelines = set.intersection(*(set(by_unit[u]) for u in units)) if units else set()
    columns = {}
    for p in sorted(p for p in pipelines if passes.eligible(p)):
        columns[p] = [by_unit[u][p] if by_unit[u][p] else int(by_unit[u][search.CLANG_PIPELINE] * 1.5)
                      for u in units]
    return columns


def greedy_cover(columns: dict[str, list[int]], k_max: int, units: list[int] | None = None,
                 relative: bool = False) -> list[tuple[str, int]]:
    """Pipelines in the order the greedy cover picks them, with the total after each pick.
    `units`: the column positions to cover (default: all). `relative`: every unit counts
    the same (sizes divided by clang's), instead of by its bytes."""
    idx = list(range(len(columns[search.CLANG_PIPELINE]))) if units is None else units
    clang = columns[search.CLANG_PIPELINE]
    weight = [1.0 / clang[i] if relative and clang[i] else 1.0 for i in idx]

    def cost(col: list[int]) -> list[float]:
        return [col[i] * w for i, w in zip(idx, weight)]

    chosen = [search.CLANG_PIPELINE]
    best = cost(clang)
    curve = [(search.CLANG_PIPELINE, sum(clang[i] for i in idx))]
    while len(chosen) < k_max:
        pick, pick_total = None, sum(best)
        for p, col in columns.items():
            if p in chosen:
                continue
            total = sum(min(a, b) for a, b in zip(best, cost(col)))
            if total < pick_total:
                pick, pick_total = p, total
        if pick is None:
            break
        chosen.append(pick)
        best = [min(a, b) for a, b in zip(best, cost(columns[pick]))]
        curve.append((pick, sum(min(columns[q][i] for q in chosen) for i in idx)))
    return curve


def held_out_curve(columns: dict[str, list[int]], projects: list[str], k_max: int,
                   relative: bool = False) -> list[float]:
    """Leave one project out: choose on the other projects' units, score the best of the
    first K on the left-out project's units. The total gain against clang (percent) for
    K = 1..k_max: what a set chosen this way holds on code it never saw."""
    clang = columns[search.CLANG_PIPELINE]
    base = sum(clang)
    kept = [0] * k_max
    for project in sorted(set(projects)):
        chosen_on = [i for i, p in enumerate(projects) if p != project]
        scored = [i for i, p in enumerate(projects) if p == project]
        picks = [p for p, _ in greedy_cover(columns, k_max, chosen_on, relative)]
        for k in range(k_max):
            kept[k] += sum(min(columns[q][i] for q in picks[:k + 1]) for i in scored)
    return [round(100.0 * (base - t) / base, 3) for t in kept]


def choose_k(curve: list[tuple[str, int]], clang_total: int, *, k_min: int = 8,
             k_max: int = 64, min_gain_pct: float = 0.05) -> int:
    """The smallest K (at least k_min) after which one more pipeline gains < min_gain_pct."""
    for k in range(max(k_min, 1), min(len(curve), k_max)):
        gain = 100.0 * (curve[k - 1][1] - curve[k][1]) / clang_total
        if gain < min_gain_pct:
            return k
    return min(len(curve), k_max)


def choose_k_held_out(held_out: list[float], *, k_min: int = 8, window: int = 4,
                      min_gain_pct: float = 0.2) -> int:
    """The smallest K (at least k_min) after which `window` more pipelines together
    add less than `min_gain_pct` points to the held-out gain."""
    for k in range(k_min, len(held_out) - window + 1):
        if held_out[k - 1 + window] - held_out[k - 1] < min_gain_pct:
            return k
    return len(held_out)


HELD_OUT_K_MAX = 24  # the held-out curve is computed this far


def select(columns: dict[str, list[int]], *, k_max: int = 64, k_fixed: int = 0,
           k_min: int = 8, projects: list[str] | None = None) -> dict:
    """The candidate set and the evidence for it, from complete measurement columns.
    With the units' `projects` (three or more), K comes from the held-out curve
    (`held_out_curve`); otherwise from the in-sample one."""
    units_used = len(columns[search.CLANG_PIPELINE])
    curve = greedy_cover(columns, k_max)
    clang_total = curve[0][1]
    oracle_all = sum(min(col[i] for col in columns.values()) for i in range(units_used))
    held_out = (held_out_curve(columns, projects, min(k_max, HELD_OUT_K_MAX))
                if projects and len(set(projects)) >= 3 else [])
    if k_fixed:
        k = k_fixed
    elif held_out:
        k = choose_k_held_out(held_out, k_min=k_min)
    else:
        k = choose_k(curve, clang_total, k_min=k_min, k_max=k_max)
    best_single = min(columns, key=lambda p: (sum(columns[p]), p))
    return {
        "objective": "bytes of .text/.data/.rodata (mlcc.objective.object_size)",
        "selection_units": units_used,
        "pipelines_considered": len(columns),
        "k": k,
        "pipelines": [p for p, _ in curve[:k]],
        "curve": [{"k": i + 1, "pipeline": p, "total": t,
                   "gain_pct": round(100.0 * (clang_total - t) / clang_total, 3)}
                  for i, (p, t) in enumerate(curve)],
        "held_out_gain_pct": held_out,
        "selection_projects": len(set(projects or ())),
        "clang_total": clang_total,
        "oracle_all_pct": round(100.0 * (clang_total - oracle_all) / clang_total, 3),
        "best_single": {"pipeline": best_single,
                        "gain_pct": round(100.0 * (clang_total - sum(columns[best_single]))
                                          / clang_total, 3)},
    }


def print_selection(result: dict) -> None:
    k = result["k"]
    click.echo(f"{result['selection_units']} units, {result['pipelines_considered']} pipelines; "
               f"oracle of all: {result['oracle_all_pct']}%; best single: "
               f"{result['best_single']['gain_pct']}%")
    held_out = result.get("held_out_gain_pct") or []
    for row in result["curve"][:max(k, 16)]:
        mark = "*" if row["k"] <= k else " "
        other = f"{held_out[row['k'] - 1]:6.3f}%" if row["k"] <= len(held_out) else "      -"
        click.echo(f"{mark} K={row['k']:2}  {row['gain_pct']:6.3f}%  held out {other}  "
                   f"{row['pipeline'][:80]}")


@click.command()
@click.option("--sample", type=click.Choice(["explore", "walk"]), default="walk", show_default=True,
              help="The units to choose on: the explored or the walked ones (as in search).")
@click.option("--units", "count", default=0, help="Units of the sample (default: 120, as in search).")
@click.option("--k-max", default=64, show_default=True)
@click.option("--k", "k_fixed", default=0, help="Force K instead of choosing it from the curve.")
@click.option("--wrapped-only", is_flag=True,
              help="Only pipelines that run this level's own (default<Oz> or <Os>) inside them: "
                   "free ones chosen on small units can blow up large ones (docs/MODEL.md).")
def main(sample: str, count: int, k_max: int, k_fixed: int, wrapped_only: bool) -> None:
    """Select the candidate pipelines and write models/data/candidates-O<level>.json."""
    manifest = search.load_manifest()
    sampled = search.sample_units(manifest, sample, count)
    explored = [u["id"] for u in sampled]
    store = search.Store()
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    counts = search.slow_pass_sizes([u for u in sampled if bitcode_of(u).exists()], bitcode_of)
    columns = complete_columns(store, explored, counts)
    project_of = {u["id"]: u["project"] for u in manifest["units"]}
    projects = [project_of[u] for u in measured_units(store, explored)]
    # Pipelines LLVM 19 miscompiles under (docs/RELIABILITY.md) never come back.
    removed = json.loads(search.CANDIDATES.read_text()).get("removed", []) if search.CANDIDATES.exists() else []
    for entry in removed:
        columns.pop(entry["pipeline"], None)
    if wrapped_only:
        columns = {p: col for p, col in columns.items() if passes.wraps_default(p, search.OPT_LEVEL)}
    if search.CLANG_PIPELINE not in columns:
        raise click.ClickException("no complete measurements yet: run `search explore` first")
    result = {"opt_level": search.OPT_LEVEL, "sample": sample, "wrapped_only": wrapped_only,
              **select(columns, k_max=k_max, k_fixed=k_fixed, projects=projects),
              "removed": removed}
    # The default tuned on training units (`tune_default`) is always a candidate, and so
    # is its form with each slow pass (bounded per unit): train's rule picks between them.
    default = tuned_default()
    if default and not passes.eligible(default):
        click.echo(f"the tuned default {default} may not be a candidate (passes.eligible): left out "
                   "until `python -m mlcc.learn.candidates tune-default` runs again", err=True)
        default = None
    if default and default not in result["pipelines"]:
        result["pipelines"].append(default)
        result["tuned_default"] = default
    for form in slow_forms(default) if default else []:
        if form not in result["pipelines"]:
            result["pipelines"].append(form)
            result.setdefault("tuned_default_slow", []).append(form)
    search.CANDIDATES.parent.mkdir(parents=True, exist_ok=True)
    search.CANDIDATES.write_text(json.dumps(result, indent=1) + "\n")
    print_selection(result)
    tuned = f" and the tuned default {result['tuned_default']}" if result.get("tuned_default") else ""
    click.echo(f"chose K={result['k']}{tuned} -> {search.CANDIDATES}")
