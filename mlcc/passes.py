"""Pass pipelines as lists of passes, and their opt spelling.

A pipeline is a tuple of `Pass(level, name)`. `to_opt` nests consecutive
passes of a lower level inside their adaptors, as opt's `-passes=` syntax
needs: `function(sroa,loop-mssa(licm)),mergefunc`. The vocabulary is data
(`data/pass-space.toml`). Random pipelines and local edits (insert, delete,
swap, replace) drive the search.
"""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mlcc import knobs
from mlcc.pipeline import CLANG

LEVELS = ("module", "cgscc", "function", "loop", "loop-mssa")
_ADAPTOR = {"cgscc": "cgscc", "function": "function", "loop": "loop", "loop-mssa": "loop-mssa"}
_PARENT = {"cgscc": "module", "function": "module", "loop": "function", "loop-mssa": "function"}


@dataclass(frozen=True, order=True)
class Pass:
    level: str
    name: str


def load_space(path: Path | None = None, trusted_only: bool = True) -> tuple[Pass, ...]:
    """The passes the search may use (module-level default<O*> pipelines excluded, and
    `DISTRUSTED` ones unless `trusted_only` is false)."""
    path = path or Path(__file__).parent / "data" / "pass-space.toml"
    with open(path, "rb") as f:
        table = tomllib.load(f)
    return tuple(Pass(level, name) for level in LEVELS for name in table.get(level, ())
                 if not name.startswith("default<") and not (trusted_only and name in DISTRUSTED))


def to_opt(passes) -> str:
    """The `-passes=` string for a pipeline (a lone `clang[]` is clang's own, `clang`)."""
    text = ",".join(_render_run(list(passes), "module"))
    return CLANG if text == "clang[]" else text


def _render_run(passes: list[Pass], level: str) -> list[str]:
    """Render passes at `level`, opening adaptors for deeper runs."""
    out: list[str] = []
    i = 0
    while i < len(passes):
        p = passes[i]
        if p.level == level:
            out.append(p.name)
            i += 1
            continue
        child = _child_toward(level, p.level)
        j = i
        while j < len(passes) and passes[j].level != level and _child_toward(level, passes[j].level) == child:
            j += 1
        inner = _render_run(passes[i:j], child)
        out.append(f"{_ADAPTOR[child]}({','.join(inner)})")
        i = j
    return out


def _child_toward(level: str, target: str) -> str:
    """The adaptor level directly below `level` on the way to `target`."""
    chain = [target]
    while _PARENT.get(chain[-1]) and _PARENT[chain[-1]] != level:
        chain.append(_PARENT[chain[-1]])
    return chain[-1]


# clang runs the always-inliner even at -O0: a pipeline without it could leave
# `always_inline` functions out of line, which changes what code may rely on.
ALWAYS_INLINE = Pass("module", "always-inline")


def keeps_always_inline(pipeline_text: str) -> bool:
    """True when the pipeline inlines always_inline functions as clang does."""
    return ("default<" in pipeline_text or knobs.names_clang(pipeline_text)
            or pipeline_text.startswith(ALWAYS_INLINE.name))


# Passes no candidate may contain (docs/RELIABILITY.md). NewGVN: LLVM 19 miscompiled with
# it. elim-avail-extern: run before inlining, it turns C++ code's calls to libstdc++'s
# available_externally functions into references libstdc++.so does not export
# (`_M_use_local_data`): muparser's -Os build failed to link. attributor-light and
# attributor-light-cgscc: LLVM 19's attributor marks a function whose only memory accesses
# are volatile loads from a constant array `memory(none)`, and the calls to it are then
# deleted, volatile loads and all (pixman's affine-bench flushes the cache that way).
DISTRUSTED = ("newgvn", "elim-avail-extern", "attributor-light", "attributor-light-cgscc")
# Passes whose compile time grows much faster than the unit: the IR outliner took opt on
# sqlite3.c (267,337 instructions) from 6.2 s to 16.0 s, and up to 1.7x on the corpus's
# largest units (`python -m mlcc.learn.candidates slow-bound --time`). They run only on units of at
# most SLOW_BOUND instructions (the `TotalInsts` feature); on a larger unit `bounded` takes
# them out, in the driver and on the learning side alike (docs/MODEL.md, "Slow passes"). A knob that appends
# one (`clang[...,iroutliner]`) counts as running it.
SLOW = ("iroutliner",)
SLOW_BOUND = 20_000
# ... and only on units whose largest function has at most SLOW_FUNCTION_BOUND
# instructions (the `max_func_insts` feature). LLVM 19's IR outliner builds a
# CodeExtractorAnalysisCache of the whole function for every region it weighs, so its time
# grows with each function's size times its similar regions: on libyaml's scanner.c (19,776
# instructions, one function of 3,547) it took 52 % of opt. None is in use: at -Oz 3,000 kept
# the training gain within 0.01 points (2.358 -> 2.354 %; at -Os no bound did), but on the
# bench projects it cost 0.05 points in total and 0.14 in the project geomean single-shot,
# 0.16 and 0.42 with trials (docs/MODEL.md, "Slow passes"): size comes first.
SLOW_FUNCTION_BOUND = {"z": float("inf"), "s": float("inf")}


def slow_pass_size(instructions: float, largest_function: float, opt_level: str) -> float:
    """What `bounded` weighs a unit by: its instructions, or infinity (no slow pass on
    it) when its largest function is over the level's SLOW_FUNCTION_BOUND."""
    bound = SLOW_FUNCTION_BOUND.get(opt_level, float("inf"))
    return instructions if largest_function <= bound else float("inf")


def _names(pipeline_text: str) -> set[str]:
    """The passes a pipeline names, with those its knobs append."""
    names = set(re.split(r"[(),\[\]]", pipeline_text))
    return names | {_appended(k) for k in knobs.used_in([pipeline_text])}


def _appended(knob: str) -> str | None:
    return knobs.table().get(knob, {}).get("append")


def eligible(pipeline_text: str) -> bool:
    """True when a pipeline may become a candidate: it inlines always_inline functions
    as clang does and uses no distrusted pass."""
    return keeps_always_inline(pipeline_text) and not _names(pipeline_text).intersection(DISTRUSTED)


def runs_slow(pipeline_text: str) -> bool:
    """True when the pipeline runs a slow pass (`SLOW`), itself or through a knob."""
    return bool(_names(pipeline_text).intersection(SLOW))


def bounded(pipeline_text: str, size: float | None) -> str:
    """What mlcc runs for `pipeline_text` on a unit of `size` (`slow_pass_size`): the
    pipeline without its slow passes and knobs when that is over SLOW_BOUND, the
    pipeline itself otherwise (or when the size is not known)."""
    if size is None or size <= SLOW_BOUND or not runs_slow(pipeline_text):
        return pipeline_text
    kept = []
    for p in parse_simple(pipeline_text):
        if p.name in SLOW:
            continue
        if knobs.names_clang(p.name):
            tuned = [k for k in knobs.knobs_of(p.name) if _appended(k) not in SLOW]
            p = Pass(p.level, f"clang[{','.join(tuned)}]" if tuned else CLANG)
        kept.append(p)
    return to_opt(kept) if kept else CLANG


def wraps_default(pipeline_text: str, opt_level: str = "") -> bool:
    """True when clang's own pipeline (opt's `default<O{opt_level}>`, any level if not
    given) runs inside this one: free pipelines chosen on small units can blow up large
    ones, and an -Os build should keep -Os's inlining (docs/MODEL.md). A tuned clang
    pipeline (`clang[knob,...]`) is clang's own for the unit's level."""
    return knobs.names_clang(pipeline_text) or f"default<O{opt_level}" in pipeline_text


def relevel(pipeline_text: str, opt_level: str) -> str:
    """The pipeline with every `default<O?>` in it made `default<O{opt_level}>`."""
    if pipeline_text == CLANG:
        return CLANG
    return to_opt(base(opt_level) if p.name.startswith("default<") else p
                  for p in parse_simple(pipeline_text))


def editable(pipeline_text: str, opt_level: str) -> tuple[Pass, ...]:
    """A pipeline as passes to edit; clang's own stands as opt's `default<O?>`."""
    if pipeline_text == CLANG:
        return (base(opt_level),)
    return parse_simple(pipeline_text)


def _fixed(p: Pass) -> bool:
    return p.name.startswith("default<") or knobs.names_clang(p.name) or p == ALWAYS_INLINE


def base(opt_level: str) -> Pass:
    """clang's own pipeline for -O`opt_level`, as one module pass."""
    return Pass("module", f"default<O{opt_level}>")


def random_pipeline(rng: random.Random, space, opt_level: str) -> tuple[Pass, ...]:
    """A random pipeline: a few passes after or before clang's, or a free sequence."""
    family = rng.choice(("suffix", "suffix", "prefix", "free"))
    if family == "suffix":
        return (base(opt_level),) + tuple(rng.choices(space, k=rng.randint(1, 6)))
    if family == "prefix":
        return tuple(rng.choices(space, k=rng.randint(1, 6))) + (base(opt_level),)
    return (ALWAYS_INLINE,) + tuple(rng.choices(space, k=rng.randint(8, 30)))


def mutate(rng: random.Random, pipeline, space, opt_level: str,
           target: str = "x86_64") -> tuple[Pass, ...]:
    """One local edit: insert, delete, swap or replace a pass (clang's pipeline and
    the leading always-inline stay); with a tuned clang pipeline in it (`clang[...]`),
    also toggle one of its knobs, the knobs of `target` included."""
    items = list(pipeline)
    editable = [i for i, p in enumerate(items) if not _fixed(p)]
    tuned = [i for i, p in enumerate(items) if knobs.names_clang(p.name)]
    op = rng.choice(("insert", "delete", "swap", "replace") + (("knob",) if tuned else ()))
    if op == "knob":
        i = rng.choice(tuned)
        toggled = rng.choice(knobs.toggles(items[i].name, opt_level, target))
        items[i] = Pass("module", toggled if toggled != CLANG else "clang[]")
        return tuple(items)
    first = 1 if items and items[0] == ALWAYS_INLINE else 0
    if op == "insert" or not editable:
        items.insert(rng.randint(first, len(items)), rng.choice(space))
    elif op == "delete" and len(items) > 1:
        del items[rng.choice(editable)]
    elif op == "swap" and len(items) - first > 1:
        i = rng.randrange(first, len(items) - 1)
        items[i], items[i + 1] = items[i + 1], items[i]
    else:
        items[rng.choice(editable)] = rng.choice(space)
    return tuple(items)


def parse_simple(text: str) -> tuple[Pass, ...]:
    """Inverse of `to_opt` for pipelines it produced (used to mutate stored pipelines)."""
    out: list[Pass] = []
    _parse_into(text, "module", out)
    return tuple(out)


def _parse_into(text: str, level: str, out: list[Pass]) -> None:
    for item in _split_top(text):
        for child in ("cgscc", "function", "loop-mssa", "loop"):
            prefix = _ADAPTOR[child] + "("
            if item.startswith(prefix) and item.endswith(")"):
                _parse_into(item[len(prefix):-1], child, out)
                break
        else:
            out.append(Pass(level, item))


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return parts
