"""Sweep LLVM's code generation options on top of the tuned default.

The `codegen` knobs (`mlcc/data/clang-knobs.toml`) are options of LLVM's code
generator that save bytes. This step finds them: on a sample of training
units, opt runs the default's pipeline once per unit (`swept_default`: the
tuned default, or on x86-64 the bundled models' candidate 0 that single-shot runs); code generation
then runs once with the default's own codegen arguments (the baseline) and
once per option set of `OPTION_SETS` on top of them (an option the default
already sets is replaced, so `min-jump-table-entries=12` can be compared with
the default's 16). A knob is what earns its place here and then in
`tune_default` on the units the model is trained on. On another target
(MLCC_LEARN_TARGET) the sets are `option_sets`: the target-neutral ones, each
code generation knob of its default left out, and the target's own options;
`codegen_variants` chooses that target's variants from them. x86-64 sweeps its
own sets and each of its default's code generation knobs left out.

Resumable: a unit already measured with an option set is not redone. Writes
`models/data/codegen-sweep-O<level>-<sample>.json`: for each default swept (an
earlier default's results are kept), every size, and per option set the total
and mean project gain against the baseline.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlcc import knobs, targets
from mlcc.learn.candidates import tune_default
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Unit, generate, optimize, prepare
from mlcc.learn.search import search
from mlcc.learn.train import train

# name -> `-mllvm` options, each a code generation choice that may trade speed for
# bytes. Options that change the ABI, the code's meaning or its hardening are not here.
OPTION_SETS = {
    "split-spill-size": ["-split-spill-mode=size"],
    "early-ifcvt": ["-x86-early-ifcvt"],
    "no-shrink-wrap": ["-enable-shrink-wrap=false"],
    "no-machine-licm": ["-disable-machine-licm"],
    "no-machine-sink": ["-disable-machine-sink"],
    "no-postra-machine-licm": ["-disable-postra-machine-licm"],
    "no-constant-hoisting": ["-disable-constant-hoisting"],
    "no-cgp-branch-opts": ["-disable-cgp-branch-opts"],
    "no-cgp-select2branch": ["-disable-cgp-select2branch"],
    "no-cgp": ["-disable-cgp"],
    "no-complex-addr-modes": ["-disable-complex-addr-modes"],
    "tail-dup-size-1": ["-tail-dup-size=1"],
    "no-branch-fold": ["-disable-branch-fold"],
    "no-machine-combiner": ["-x86-machine-combiner=false"],
    "no-lea-opt": ["-disable-x86-lea-opt"],
    "sched-source": ["-pre-RA-sched=source"],
    "sched-list-burr": ["-pre-RA-sched=list-burr"],
    "outline-linkonceodr": ["-enable-linkonceodr-outlining"],
    "no-avoid-sfb": ["-x86-disable-avoid-SFB"],
    "br-merging-off": ["-x86-br-merging-base-cost=-1"],
    "no-twoaddr-reschedule": ["-twoaddr-reschedule=false"],
    "no-anyext-load-promotion": ["-x86-promote-anyext-load=false"],
    "no-call-frame-opt": ["-no-x86-call-frame-opt"],
    "local-reassign": ["-enable-local-reassign"],
    "no-select-optimize": ["-disable-select-optimize"],
    "no-early-ifcvt": ["-disable-early-ifcvt"],
    "jump-tables-8": ["-min-jump-table-entries=8"],
    "jump-tables-12": ["-min-jump-table-entries=12"],
    "jump-tables-24": ["-min-jump-table-entries=24"],
    "jump-tables-32": ["-min-jump-table-entries=32"],
    "no-outliner": ["-enable-machine-outliner=never"],
    "no-phi-elim-edge-splitting": ["-disable-phi-elim-edge-splitting"],
    "no-machine-sink-split": ["-machine-sink-split=false"],
    "no-tail-duplicate": ["-disable-tail-duplicate"],
    "deferred-spilling": ["-enable-deferred-spilling"],
    "no-postra-machine-sink": ["-disable-postra-machine-sink"],
    "no-cgp-ext-ld-promotion": ["-disable-cgp-ext-ld-promotion"],
    "no-cgp-split-large-offset-gep": ["-cgp-split-large-offset-gep=false"],
    "csr-first-time-cost-10": ["-regalloc-csr-first-time-cost=10"],
    "no-domain-reassignment": ["-disable-x86-domain-reassignment"],
    "fsrm-memcpy": ["-x86-use-fsrm-for-memcpy"],
    "sink-to-avoid-spills": ["-sink-insts-to-avoid-spills"],
    "no-hoist-const-loads": ["-hoist-const-loads=false"],
    "aggressive-machine-cse": ["-aggressive-machine-cse"],
    "no-mergeicmps": ["-disable-mergeicmps"],
}

# The sets for a target other than x86-64 (MLCC_LEARN_TARGET): the target-neutral ones
# above, each of the default's own code generation knobs left out (`without-<knob>`),
# and the options of that target's code generator (none change the ABI).
WITHOUT = "without-"
TARGET_SETS = {
    "outliner-rerun": ["-machine-outliner-reruns=1"],
    "outliner-rerun-2": ["-machine-outliner-reruns=2"],
    "no-global-merge": ["-enable-global-merge=false"],
    "global-merge-const": ["-global-merge-on-const"],
    "global-merge-external-off": ["-global-merge-on-external=false"],
    "ext-tsp-placement": ["-enable-ext-tsp-block-placement"],
}
ARM_SETS = {
    "arm-promote-constant": ["-arm-promote-constant"],
    "no-arm-promote-constant": ["-arm-promote-constant=false"],
    "arm-promote-constant-16": ["-arm-promote-constant-max-size=16"],
    "no-arm-load-store-opt": ["-arm-load-store-opt=false"],
    "no-arm-adjust-jump-tables": ["-arm-adjust-jump-tables=false"],
    "thumb1-tbb": ["-arm-synthesize-thumb-1-tbb"],
}
RISCV_SETS = {
    "riscv-jump-tables-16": ["-riscv-min-jump-table-entries=16"],
    "riscv-jump-tables-4": ["-riscv-min-jump-table-entries=4"],
    "riscv-global-merge": ["-riscv-enable-global-merge"],
    "riscv-no-sink-fold": ["-riscv-enable-sink-fold=false"],
    "riscv-no-copy-propagation": ["-riscv-enable-copy-propagation=false"],
    "riscv-machine-combiner": ["-riscv-enable-machine-combiner"],
}
# x86-64 runs no global merge pass (the outliner's reruns and ext-TSP placement act there too)
_NOT_X86 = ("no-global-merge", "global-merge-const", "global-merge-external-off")
_X86_ONLY = ("early-ifcvt", "no-machine-combiner", "no-lea-opt", "no-avoid-sfb", "br-merging-off",
             "no-anyext-load-promotion", "no-call-frame-opt", "no-domain-reassignment", "fsrm-memcpy")


def option_sets(target: str, default: str, level: str = "z") -> dict[str, list[str]]:
    """The option sets swept on `target`'s units on top of `default`; a set named
    `without-<knob>` (an empty list) leaves that knob of the default out, and one named
    `with-<knob>` adds a `codegen` knob that `level`'s search may not add (`levels`)."""
    table = knobs.table()
    knob_sets = {WITHOUT + k: [] for k in knobs.knobs_of(default) if table[k].get("codegen")}
    knob_sets.update(other_level_knobs(target, default, level))
    if target == targets.HOST:
        return {**OPTION_SETS, **knob_sets, **{k: v for k, v in TARGET_SETS.items() if k not in _NOT_X86}}
    own = {"thumbv7m": ARM_SETS, "thumbv6m": ARM_SETS, "riscv32": RISCV_SETS}.get(target, {})
    neutral = {k: v for k, v in OPTION_SETS.items() if k not in _X86_ONLY}
    return {**neutral, **knob_sets, **TARGET_SETS, **own}


WITH = "with-"
ALL_OF = "with-all-Oz-codegen-knobs"


def other_level_knobs(target: str, default: str, level: str) -> dict[str, list[str]]:
    """`with-<knob>` for each `codegen` knob of `target` that `level`'s search may not add
    and `default` lacks (the -Oz knobs, swept at -Os), and `ALL_OF` for all of them
    together that -Oz's default on `target` has: what they would save at `level`."""
    table = knobs.table()

    def options(knob: str) -> list[str]:
        return [a for a in table[knob]["codegen"] if a != "-mllvm"]

    mine = set(knobs.knobs_of(default))
    barred = [k for k, edit in table.items() if edit.get("codegen") and k not in mine
              and knobs.barred(knobs.name([k]), level) and target in edit.get("targets", (target,))]
    swept = list(OPTION_SETS.values())  # a knob that is one of them is swept under its name
    sets = {WITH + k: options(k) for k in barred if options(k) not in swept}
    oz = [k for k in oz_codegen_knobs(target) if k in barred]
    if len(oz) > 1:
        sets[ALL_OF] = [o for k in oz for o in options(k)]
    return sets


def oz_codegen_knobs(target: str) -> tuple[str, ...]:
    """The `codegen` knobs of `target`'s -Oz default, in the table's order."""
    table = knobs.table()
    used = knobs.used_in([targets.named(target).default("z")])
    return tuple(k for k in table if k in used and table[k].get("codegen"))


def swept_default() -> str | None:
    """The default the sweep builds on: the target's `tune-default` result, whose
    variants `ship-targets` ships with it; on x86-64, where single-shot runs the
    bundled models' candidate 0 and no tuned default ships, that candidate 0 as
    `mlcc/data/targets.toml` names it."""
    if search.TARGET == targets.HOST:
        return targets.named(targets.HOST).default(search.OPT_LEVEL)
    return tune_default.tuned_default()


def merged(base: tuple[str, ...], options: list[str]) -> list[str]:
    """`base` (pairs of `-mllvm`, option) with `options` added as `-mllvm` options;
    one that names an option `base` sets replaces it."""
    def option_name(arg: str) -> str:
        return arg.split("=", 1)[0]

    replaced = {option_name(o) for o in options}
    pairs = [base[i:i + 2] for i in range(0, len(base), 2)]
    kept = [arg for pair in pairs if option_name(pair[-1]) not in replaced for arg in pair]
    return kept + [arg for o in options for arg in ("-mllvm", o)]


def _sweep_unit(job: tuple[Unit, str, dict, list[str]], files: dict[str, str]) -> tuple[str, dict]:
    """Worker: one unit's baseline and option-set sizes (None for a failure), its
    bitcode where the engine put it (`files`)."""
    unit, default, known, names = job
    sets = option_sets(search.TARGET, default, search.OPT_LEVEL)
    unit = replace(unit, bitcode=files[unit.bitcode])
    with tempfile.TemporaryDirectory(prefix="mlcc-sweep-") as tmp:
        try:
            prep = prepare(unit, tmp)
        except Exception:  # a unit that cannot be read is left out, as `search` records it failed
            return unit.id, {}
        optimized = os.path.join(tmp, "o.bc")
        if not optimize(prep, default, optimized):
            return unit.id, {}
        base = knobs.codegen_args(default, unit.codegen_args)
        sizes = dict(known)
        for name in ["baseline", *names]:
            if name not in sizes:
                if name == "baseline":
                    extra = base
                elif name.startswith(WITHOUT):
                    extra = knobs.codegen_args(knobs.without(default, name[len(WITHOUT):]), unit.codegen_args)
                else:
                    extra = merged(base, sets[name])
                sizes[name] = generate(prep, optimized, extra, os.path.join(tmp, "o.o"))
        return unit.id, sizes


def summary(results: dict, names: list[str]) -> dict[str, dict]:
    """Per option set: total gain and mean project gain (percent) against the baseline
    on the units where both built, and how many units got smaller or larger."""
    out = {}
    for name in names:
        rows = [(r["project"], r["sizes"]["baseline"], r["sizes"][name]) for r in results.values()
                if r["sizes"].get("baseline") and r["sizes"].get(name)]
        if not rows:
            continue
        projects, base, size = (np.array(col) for col in zip(*rows))
        base, size = base.astype(np.float64), size.astype(np.float64)
        out[name] = {"total_pct": round(100.0 * (1 - size.sum() / base.sum()), 3),
                     "project_pct": round(100.0 * float(train.mean_project_gain(
                         size[:, None], base, projects)[0]), 3),
                     "smaller": int((size < base).sum()), "larger": int((size > base).sum()),
                     "units": len(rows)}
    return out


@click.command()
@click.option("--sample", type=click.Choice(["walk", "label", "validation"]), default="walk",
              show_default=True, help="walk: small units of every project; label: the training "
              "units `label` measures (--count 0: all); validation: the validation units.")
@click.option("--count", default=120, show_default=True)
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@click.option("--set", "only", multiple=True, help="Sweep only this option set (repeatable; "
              "the others keep what was measured).")
@engine_option
def main(sample: str, count: int, jobs: int, only: tuple[str, ...], backend: str) -> None:
    """Measure every option set of `option_sets` on top of `swept_default()`."""
    default = swept_default()
    if not default:
        raise click.ClickException("no tuned default yet: run `python -m mlcc.learn.candidates tune-default`")
    manifest = search.load_manifest()
    if sample == "validation":
        units = search.units_of(manifest, "validation")
    elif sample == "walk":
        units = search.walk_sample(manifest, count)
    else:
        units = search.label_sample(search.units_of(manifest, "train"), count)
    layout = Layout.from_environment()
    out = search.DATA / f"codegen-sweep-{search.TAG}-{sample}.json"
    saved = json.loads(out.read_text()) if out.exists() else {}
    # each default's measurements are kept: the knobs were chosen on an earlier one
    by_default = saved.get("by_default", {})
    results = by_default.get(default, {}).get("units", {})
    sets = option_sets(search.TARGET, default, search.OPT_LEVEL)
    unknown = set(only) - set(sets)
    if unknown:
        raise click.UsageError(f"no option set {', '.join(sorted(unknown))} here; "
                               f"they are: {', '.join(sets)}")
    names = list(sets)
    wanted = list(only) or names
    jobs_left = []
    for u in units:
        unit_dir = search.unit_dir(layout, u["project"])
        known = results.get(u["id"], {}).get("sizes", {})
        if (unit_dir / f"{u['id']}.json").exists() and any(n not in known for n in ["baseline", *wanted]):
            jobs_left.append((Unit.load(unit_dir, u["id"]), default, known, wanted))
    project_of = {u["id"]: u["project"] for u in units}
    known_of = {job[0].id: job[2] for job in jobs_left}

    def measured(result: tuple[str, dict]) -> int:
        return max(0, len(result[1]) - len(known_of[result[0]]))

    def save() -> None:
        by_default[default] = {"summary": summary(results, names), "units": results}
        out.write_text(json.dumps({"opt_level": search.OPT_LEVEL, "sample": sample,
                                   "option_sets": sets, "by_default": by_default},
                                  indent=1) + "\n")

    swept = Engine(backend, jobs).map(_sweep_unit, jobs_left, title=f"codegen sweep {sample}",
                                      inputs=lambda job: [job[0].bitcode],
                                      count=measured)
    for done, (unit_id, sizes) in enumerate(swept, 1):
        results[unit_id] = {"project": project_of[unit_id], "sizes": sizes}
        if done % 10 == 0:
            save()
    save()
    table = Table(title=f"code generation options on {escape(default)} ({sample}, {len(results)} units)")
    for col in ("option set", "total %", "project mean %", "smaller", "larger"):
        table.add_column(col)
    for name, row in sorted(summary(results, names).items(), key=lambda kv: -kv[1]["total_pct"]):
        table.add_row(name, f"{row['total_pct']:+.3f}", f"{row['project_pct']:+.3f}",
                      str(row["smaller"]), str(row["larger"]))
    Console().print(table)
    click.echo(f"-> {out}")
