"""What the bound on slow passes (`passes.SLOW_BOUND`) gains and costs.

For a pipeline with a slow pass and the same pipeline without it (by default
the tuned default with and without the IR outliner):

- sizes, from the measurement table: the total gain over clang's pipeline on
  the training and the validation units when the slow pass runs only on units
  of at most B instructions, for several B, and the best of the two per unit;
- with `--time N`, opt's time for both on N units spread over sizes plus the
  largest ones, with their instruction counts (median of `--repeat` runs);
- the same sizes under a second bound, on the unit's largest function (the
  `max_func_insts` feature, before optimization), the bound in use kept: the IR
  outliner's time grows with each function's size times its similar regions
  (LLVM 19 builds a `CodeExtractorAnalysisCache` of the whole function for every
  region it weighs), so one large function can cost more than a large unit.

docs/MODEL.md, "The bounded IR outliner", quotes both.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time

import click

from mlcc import features, passes
from mlcc.learn.candidates import candidates
from mlcc.learn.candidates.tune_default import tuned_default
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.measure import Unit, optimize, prepare
from mlcc.learn.search import search

BOUNDS = (2_000, 5_000, 10_000, 20_000, 50_000, math.inf)
FUNCTION_BOUNDS = (500, 1_000, 1_500, 2_000, 3_000, 5_000, math.inf)


def default_with_outliner() -> str:
    default = tuned_default()
    if not default:
        raise click.ClickException("no tuned default yet: run `python -m mlcc.learn.candidates tune-default`")
    forms = candidates.slow_forms(default)
    return forms[0] if forms else default


def size_rows(split: str, slow: str, fast: str, counts: dict[str, float], by_unit: dict) -> list[tuple]:
    """(instructions, clang, fast, slow) bytes of every unit measured with all three."""
    return [r for u in search.units_of(search.load_manifest(), split)
            for r in size_rows_of(u, slow, fast, counts, by_unit)]


def print_sizes(split: str, rows: list[tuple]) -> None:
    clang = sum(r[1] for r in rows)
    click.echo(f"{split}: {len(rows)} units, {clang:,} bytes with clang's pipeline; "
               f"without the slow pass {100 * (1 - sum(r[2] for r in rows) / clang):.2f} %")
    for bound in BOUNDS:
        within = [r for r in rows if r[0] <= bound]
        slow = sum(r[3] if r[0] <= bound else r[2] for r in rows)
        best = sum(min(r[2], r[3]) if r[0] <= bound else r[2] for r in rows)
        click.echo(f"  bound {bound:>8,.0f}: {len(rows) - len(within):4d} units over; "
                   f"slow pass within {100 * (1 - slow / clang):.2f} %, "
                   f"best of the two within {100 * (1 - best / clang):.2f} %")


def print_function_bounds(split: str, slow: str, fast: str, counts: dict[str, float],
                          largest: dict[str, float], by_unit: dict) -> None:
    """Sizes when the slow pass also skips units whose largest function is over a bound."""
    rows = [(largest[u["id"]], *r) for u in search.units_of(search.load_manifest(), split)
            if u["id"] in largest
            for r in size_rows_of(u, slow, fast, counts, by_unit)]
    clang = sum(r[2] for r in rows)
    click.echo(f"{split}, with a bound on the largest function too ({passes.SLOW_BOUND:,} instructions "
               f"per unit kept; in use at -O{search.OPT_LEVEL}: "
               f"{passes.SLOW_FUNCTION_BOUND.get(search.OPT_LEVEL, math.inf):,}):")
    for bound in FUNCTION_BOUNDS:
        skipped = [r for r in rows if r[0] > bound or r[1] > passes.SLOW_BOUND]
        size = sum(r[3] if (r[0] > bound or r[1] > passes.SLOW_BOUND) else r[4] for r in rows)
        click.echo(f"  largest function {bound:>8,.0f}: {len(skipped):4d} units without the slow pass "
                   f"({sum(r[1] for r in skipped):,.0f} instructions); {100 * (1 - size / clang):.3f} %")


def size_rows_of(u: dict, slow: str, fast: str, counts: dict[str, float], by_unit: dict) -> list[tuple]:
    """`size_rows`' row of one unit, if it has one."""
    sizes = by_unit.get(u["id"], {})
    if u["id"] in counts and all(sizes.get(p) for p in (search.CLANG_PIPELINE, fast, slow)):
        return [(counts[u["id"]], sizes[search.CLANG_PIPELINE], sizes[fast], sizes[slow])]
    return []


def time_units(units: list[dict], slow: str, fast: str, repeat: int, counts: dict[str, float]) -> None:
    layout = Layout.from_environment()
    for u in units:
        unit = Unit.load(search.unit_dir(layout, u["project"]), u["id"])
        seconds = {}
        with tempfile.TemporaryDirectory(prefix="mlcc-bound-") as tmp:
            prep = prepare(unit, tmp)
            for name, pipeline in (("without", fast), ("with", slow)):
                runs = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    optimize(prep, pipeline, os.path.join(tmp, "o.bc"), timeout=900)
                    runs.append(time.perf_counter() - start)
                seconds[name] = statistics.median(runs)
        click.echo(f"{counts.get(u['id'], float('nan')):>9,.0f} instructions  opt {seconds['without']:6.3f} s "
                   f"-> {seconds['with']:6.3f} s ({seconds['with'] / seconds['without']:.2f}x)  "
                   f"{u['project']}/{u['source']}")


@click.command()
@click.option("--pipeline", "slow", default=None, help="A pipeline with a slow pass (default: the "
              "tuned default with the IR outliner).")
@click.option("--time", "timed", default=0, show_default=True,
              help="Also time opt on this many training units spread over sizes (plus the 6 largest).")
@click.option("--repeat", default=3, show_default=True)
def main(slow: str | None, timed: int, repeat: int) -> None:
    """Gains and compile time of a slow pass under several bounds."""
    slow = slow or default_with_outliner()
    fast = passes.bounded(slow, math.inf)
    if fast == slow:
        raise click.ClickException(f"{slow} runs no slow pass ({', '.join(passes.SLOW)})")
    click.echo(f"with: {slow}\nwithout: {fast}\nthe bound in use: {passes.SLOW_BOUND:,} instructions")
    bitcode_of = search.corpus_bitcode(Layout.from_environment())
    manifest = search.load_manifest()
    by_unit = search.Store().by_unit()  # as measured: the bounds are applied here
    units = [u for u in manifest["units"] if bitcode_of(u).exists()
             and all(p in by_unit.get(u["id"], {}) for p in (search.CLANG_PIPELINE, fast, slow))]
    # the units' instructions (TotalInsts), the bound on the largest function left out:
    # the tables apply each bound themselves
    table = search.feature_table(units, bitcode_of)
    counts = {u: float(row[features.FEATURE_NAMES.index("TotalInsts")]) for u, row in table.items()}
    largest = {u: float(row[features.FEATURE_NAMES.index("max_func_insts")]) for u, row in table.items()}
    for split in ("train", "validation"):
        print_sizes(split, size_rows(split, slow, fast, counts, by_unit))
    for split in ("train", "validation"):
        print_function_bounds(split, slow, fast, counts, largest, by_unit)
    if timed:
        train_units = sorted((u for u in units if u["split"] == "train"),
                             key=lambda u: (counts.get(u["id"], 0), u["id"]))
        step = max(1, len(train_units) // timed)
        picked = list({u["id"]: u for u in train_units[::step][:timed] + train_units[-6:]}.values())
        time_units(picked, slow, fast, repeat, counts)
