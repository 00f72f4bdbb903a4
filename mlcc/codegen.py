"""Code generation: optimized bitcode to an object or assembly file.

Runs through the clang driver with the user's own flags (minus preprocessor
flags) and LLVM passes disabled, so the target options are exactly the ones
clang derives itself: relocation model and the default PIE, function and
data sections, code model, CPU and features, debug info, -Wa options.
"""

from __future__ import annotations

import os
import shlex
import sys

from mlcc.plan import FRONTEND_NO_PASSES, UnitPlan
from mlcc.process import run_tool

# cc1 options that `opt` must share with code generation: the relocation model
# decides, for one, whether switch tables become relative lookup tables, and
# names that passes give to values show up in -S output unless discarded.
_CC1_TO_OPT = {"-mrelocation-model": "--relocation-model", "-mcmodel": "--code-model"}
_CC1_SWITCHES_TO_OPT = {"-discard-value-names": "--discard-value-names"}
# Pipeline tuning that clang sets per level (-Oz keeps the SLP vectorizer on,
# -Os both vectorizers) and opt must be told explicitly.
_CC1_TUNING_TO_OPT = {"-vectorize-loops": "--vectorize-loops", "-vectorize-slp": "--vectorize-slp"}


def cc1_line(clang: str, codegen_args, bitcode: str) -> list[str]:
    """The cc1 command clang makes for code generation of `bitcode` with these flags
    (`-###`): every spelling of -fPIC/-fPIE/-static/-mcmodel/--target and the
    distribution's default PIE come out there exactly as clang decides them."""
    proc = run_tool([clang, "-###", *codegen_args, "-c", bitcode, "-o", bitcode + ".o"],
                    capture_stderr=True)
    lines = proc.stderr.decode(errors="replace").splitlines()
    return next((shlex.split(line) for line in lines if '"-cc1"' in line), [])


def optimizer_target_flags(cc1) -> tuple[str, ...]:
    """The target options clang gives its optimizer in the `cc1` line, as `opt` flags."""
    flags = []
    for i, arg in enumerate(cc1):
        name, _, value = arg.partition("=")
        if arg in _CC1_SWITCHES_TO_OPT:
            flags.append(_CC1_SWITCHES_TO_OPT[arg])
        elif name in _CC1_TO_OPT:
            value = value or (cc1[i + 1] if i + 1 < len(cc1) else "")
            flags.append(f"{_CC1_TO_OPT[name]}={value}")
    for cc1_flag, opt_flag in _CC1_TUNING_TO_OPT.items():
        flags.append(f"{opt_flag}={'true' if cc1_flag in cc1 else 'false'}")
    return tuple(flags)


def triple(cc1) -> str:
    """The target triple of the `cc1` line ("" if it names none)."""
    for i, arg in enumerate(cc1[:-1]):
        if arg == "-triple":
            return cc1[i + 1]
    return ""


def clang_pipeline_text(clang: str, codegen_args, bitcode: str) -> str:
    """The pass pipeline clang would run for these flags, as an opt `-passes=` string.

    clang prints it (`-mllvm -print-pipeline-passes`) instead of optimizing.
    """
    proc = run_tool([clang, *codegen_args, "-c", bitcode, "-o", os.devnull,
                     "-mllvm", "-print-pipeline-passes"], capture_stdout=True, capture_stderr=True)
    text = proc.stdout.decode(errors="replace").strip()
    for tail in (",BitcodeWriterPass", ",ThinLTOBitcodeWriterPass", ",verify"):
        if text.endswith(tail):
            text = text[:-len(tail)]
    return text


def terminal_args(args) -> list[str]:
    """What clang gives itself when its stderr is a terminal, for a clang whose stderr is
    captured here: coloured diagnostics, and lines wrapped at the terminal's width
    (`COLUMNS` first, as LLVM's `Process::StandardErrColumns` reads it)."""
    if not sys.stderr.isatty():
        return []
    out = [] if any("color-diagnostics" in a for a in args) else ["-fcolor-diagnostics"]
    if not any(a.startswith("-fmessage-length") for a in args):
        columns = os.environ.get("COLUMNS", "")
        columns = int(columns) if columns.isdigit() else 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.stderr.fileno()).columns
            except OSError:
                columns = 0
        if columns > 0:
            out.append(f"-fmessage-length={columns}")
    return out


def generate(clang: str, unit: UnitPlan, bitcode: str, out: str, *,
             clang_passes: bool = False, extra_args=(), timeout=None) -> str:
    """Generate `out` from `bitcode`; return the tool's stderr (diagnostics) for the caller.

    With `clang_passes`, clang runs its own optimization pipeline first (the
    fallback when mlcc's pipeline could not run). `extra_args` are the chosen
    pipeline's code generation knobs (`pipeline.codegen_args`).
    """
    if unit.lto and not clang_passes:
        # the LTO object clang writes (summary, module flags) from the optimized module:
        # -O0 runs only the passes that prepare it for the link (mlcc/lto.py); code
        # generation, and its knobs, come at the link
        args = [*unit.codegen_args, "-O0"]
    else:
        args = [*unit.codegen_args, *(() if clang_passes else FRONTEND_NO_PASSES), *extra_args]
    argv = [clang, *args, *terminal_args(args), "-S" if unit.emit_assembly else "-c", bitcode, "-o", out]
    proc = run_tool(argv, timeout=timeout, capture_stderr=True)
    return proc.stderr.decode(errors="replace") if proc.stderr else ""


# What clang's pipeline runs before its pipeline-start extension point, where mlcc's
# pass plugin runs the chosen pipeline: not again in it.
_BEFORE_PIPELINE_START = ("annotation2metadata", "forceattrs")


def optimize_and_generate(clang: str, plugin: str, unit: UnitPlan, bitcode: str, passes: str,
                          out: str, *, extra_args=(), timeout=None, plugin_env=None) -> str:
    """`passes` (opt's syntax) on `bitcode`, then code generation into `out`, in one clang
    process through mlcc's pass plugin (mlcc/plugin/mlcc-pipeline.cpp): the object opt
    and `generate` make, without opt's process and a bitcode round trip. Objects only,
    not LTO. `plugin_env` adds the plugin's other variables. Returns clang's stderr;
    raises ToolFailed, also when the plugin refuses."""
    args = [*unit.codegen_args, *extra_args, f"-fpass-plugin={plugin}"]
    argv = [clang, *args, *terminal_args(args), "-c", bitcode, "-o", out]
    env = dict(os.environ, **(plugin_env or {}), MLCC_PLUGIN_PASSES=plugin_passes(passes))
    proc = run_tool(argv, timeout=timeout, capture_stderr=True, env=env)
    return proc.stderr.decode(errors="replace") if proc.stderr else ""


def plugin_report(path: str) -> dict[str, str]:
    """The `name=value` lines the pass plugin wrote to `path` (MLCC_PLUGIN_REPORT,
    MLCC_PLUGIN_OPTIMIZED); raises OSError, ValueError."""
    with open(path) as f:
        return dict(line.split("=", 1) for line in f.read().split())


def plugin_passes(passes: str) -> str:
    """`passes` (opt's syntax) as the plugin runs them at clang's pipeline start: without
    what clang ran before it, as one module pipeline (the parser takes a bare list for
    a pipeline of its first pass's kind)."""
    head = passes.split(",", len(_BEFORE_PIPELINE_START))
    if tuple(head[:len(_BEFORE_PIPELINE_START)]) == _BEFORE_PIPELINE_START:
        passes = head[-1] if len(head) > len(_BEFORE_PIPELINE_START) else ""
    return f"module({passes})"
