"""Tuned variants of clang's own pipeline: `clang[knob,knob]`.

A knob (`data/clang-knobs.toml`) is a small edit of the pass pipeline clang
runs for a unit's flags: a pass parameter changed, a pass dropped, a pass run
after it. A pipeline
may name clang's pipeline, with knobs or without, as one element:
`clang[gvn-no-pre]`, `function(jump-threading),clang[no-indvars]`,
`clang,iroutliner`; `expand` turns it into opt's syntax using the unit's own
clang pipeline text, which the driver asks clang for anyway. A `codegen` knob
leaves opt's text alone and adds arguments to code generation instead
(`codegen_args`).
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

from mlcc.errors import MlccError

KNOBS_FILE = Path(__file__).parent / "data" / "clang-knobs.toml"
# `clang` or `clang[knobs]` as an element of a pipeline (not part of a longer name)
_ELEMENT = re.compile(r"(?<![\w<>-])clang(?:\[([a-z0-9,-]*)\])?(?![\w\[-])")


@lru_cache(maxsize=1)
def table() -> dict[str, dict]:
    """Knob name -> its edit, in the file's order (the order edits are applied in)."""
    with open(KNOBS_FILE, "rb") as f:
        return tomllib.load(f)["knobs"]


def name(knobs) -> str:
    """The canonical element for clang's pipeline with `knobs`: sorted in the table's
    order, no duplicates; no knobs is plain `clang`."""
    order = list(table())
    unknown = set(knobs) - set(order)
    if unknown:
        raise MlccError(f"unknown clang pipeline knob(s): {', '.join(sorted(unknown))}")
    chosen = [k for k in order if k in set(knobs)]
    return f"clang[{','.join(chosen)}]" if chosen else "clang"


def without(element: str, knob: str) -> str:
    """The `clang[...]` element with one of its knobs left out."""
    return name(set(knobs_of(element)) - {knob})


def knobs_of(element: str) -> tuple[str, ...]:
    """The knobs of a `clang[...]` element (empty for plain `clang`)."""
    match = _ELEMENT.fullmatch(element)
    return tuple(k for k in (match.group(1) or "").split(",") if k) if match else ()


def is_element(pipeline_text: str) -> bool:
    """True when the whole pipeline is clang's own, plain or tuned, and nothing else."""
    return _ELEMENT.fullmatch(pipeline_text) is not None


def names_clang(pipeline_text: str) -> bool:
    """True when the pipeline runs clang's own, plain or tuned, as one of its elements."""
    return _ELEMENT.search(pipeline_text) is not None


def used_in(pipelines) -> set[str]:
    """Every knob the `clang[...]` elements of `pipelines` name."""
    return {k for p in pipelines for m in _ELEMENT.finditer(p) for k in knobs_of(m.group(0))}


def definitions(pipelines) -> dict[str, dict]:
    """The knobs `pipelines` use, with their edits: what a model records, and what it
    needs this mlcc's table to say unchanged (`levels` and `targets` are left out: they
    say where the learning side may add a knob, not what the knob does)."""
    used = used_in(pipelines)
    return {k: _edit(edit) for k, edit in table().items() if k in used}


def _edit(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if key not in ("levels", "targets", "acts_on")}


# The fewest cases a switch needs before any jump-table threshold can make it a table
# (LLVM's default minimum; the knobs only raise it, RISC-V's own is 5).
SWITCH_TABLE_CASES = 4


def may_differ(element: str, other: str, shape) -> bool:
    """False when the `clang[...]` elements `element` and `other` differ only in knobs that
    act on what a module of this `shape` (`ir_reader.Shape`) does not have (`acts_on`:
    loops, switches of SWITCH_TABLE_CASES or more): both then give the same object."""
    present = {"loops": shape.has_cycle, "switches": shape.largest_switch >= SWITCH_TABLE_CASES}
    differing = set(knobs_of(element)) ^ set(knobs_of(other))
    if not differing or not (is_element(element) and is_element(other)):
        return element != other
    return any(present.get(table().get(k, {}).get("acts_on"), True) for k in differing)


def unknown_in(pipeline_text: str) -> list[str]:
    """Knobs `pipeline_text` names that this mlcc's table does not have."""
    return sorted(used_in([pipeline_text]) - set(table()))


def mismatched(recorded: dict, pipelines) -> list[str]:
    """Knobs `pipelines` use whose edit in this mlcc's table is not the `recorded` one."""
    return sorted(k for k in used_in(pipelines)
                  if k not in table() or recorded.get(k) != _edit(table()[k]))


def expand(pipeline_text: str, clang_text: str) -> str:
    """`pipeline_text` in opt's syntax: each `clang[...]` element becomes `clang_text`
    with those knobs applied."""
    return _ELEMENT.sub(lambda m: apply(clang_text, knobs_of(m.group(0))), pipeline_text)


def barred(pipeline_text: str, level: str) -> list[str]:
    """The knobs of `pipeline_text` whose `levels` leave `level` out: the searches at that
    level may not add them (at -Os, the code generation twins' knobs)."""
    return [k for k in used_in([pipeline_text])
            if level not in table().get(k, {}).get("levels", level)]


def with_knobs(pipeline_text: str, added) -> str:
    """`pipeline_text` with the knobs `added` in each of its `clang[...]` elements."""
    return _ELEMENT.sub(lambda m: name([*knobs_of(m.group(0)), *added]), pipeline_text)


def opt_part(pipeline_text: str) -> str:
    """`pipeline_text` without its `codegen` knobs: two pipelines with the same opt part
    differ in code generation only, and trials build them from one opt run."""
    table_ = table()

    def kept(m) -> str:
        return name([k for k in knobs_of(m.group(0)) if not table_.get(k, {}).get("codegen")])

    return _ELEMENT.sub(kept, pipeline_text)


def codegen_args(pipeline_text: str, unit_args=()) -> tuple[str, ...]:
    """The code generation arguments the `codegen` knobs of `pipeline_text` add, in the
    table's order (none for a pipeline without such knobs). A knob whose `unless`
    prefixes start one of the unit's own arguments `unit_args` adds nothing."""
    used = used_in([pipeline_text])

    def allowed(edit) -> bool:
        return not any(arg.startswith(tuple(edit.get("unless", ()))) for arg in unit_args)

    return tuple(arg for knob, edit in table().items() if knob in used and allowed(edit)
                 for arg in edit.get("codegen", ()))


def apply(clang_text: str, knobs) -> str:
    """clang's pipeline text with `knobs` applied in the table's order (`codegen` knobs
    change nothing here)."""
    text = clang_text
    for knob, edit in table().items():
        if knob not in knobs:
            continue
        if "replace" in edit:
            old, new = edit["replace"]
            text = text.replace(old, new)
        elif "drop" in edit:
            text = _render(_drop(_parse(text), edit["drop"]))
        elif "append" in edit:
            text = f"{text},{edit['append']}"
    return text


# ------------------------------------------------------------------ pipeline text as a tree
# An element is (name with its <params>, children or None): `loop-mssa(licm<x>)` is
# ("loop-mssa", [("licm<x>", None)]). Only `drop` needs the tree; params may hold
# commas nowhere in LLVM 19's printed pipelines, but may hold `;` and `=`.

def _parse(text: str) -> list:
    elements, stack, token = [], [], ""
    current = elements
    depth_angle = 0
    for ch in text:
        if ch == "<":
            depth_angle += 1
        elif ch == ">":
            depth_angle -= 1
        if depth_angle:
            token += ch
        elif ch == "(":
            node = (token, [])
            current.append(node)
            stack.append(current)
            current, token = node[1], ""
        elif ch == ")":
            if token:
                current.append((token, None))
            current, token = stack.pop(), ""
        elif ch == ",":
            if token:
                current.append((token, None))
            token = ""
        else:
            token += ch
    if token:
        current.append((token, None))
    return elements


def _render(elements: list) -> str:
    return ",".join(e[0] if e[1] is None else f"{e[0]}({_render(e[1])})" for e in elements)


def _drop(elements: list, pass_name: str) -> list:
    out = []
    for label, children in elements:
        if children is None:
            if label.split("<", 1)[0] != pass_name:
                out.append((label, None))
            continue
        kept = _drop(children, pass_name)
        if kept:
            out.append((label, kept))
    return out


def toggles(pipeline_text: str, opt_level: str = "", target: str = "x86_64") -> list[str]:
    """The tuned clang pipelines one knob away from `pipeline_text` (`clang` or a lone
    `clang[...]`): each knob added or removed. A knob whose `levels` leave `opt_level`
    out (when given), or whose `targets` leave `target` out, may be removed but is not added."""
    have = set(knobs_of(pipeline_text))
    return [name(have ^ {k}) for k, edit in table().items()
            if k in have or ((not opt_level or opt_level in edit.get("levels", opt_level))
                             and target in edit.get("targets", (target,)))]
