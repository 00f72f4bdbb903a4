"""A pass pipeline as one unit runs it, and the optimization step: `opt -passes=...`.

A pipeline has a name: what the model's candidates, the decision cache, the log
and `-fmlcc-pipeline` call it (`clang`, `clang[no-licm,machine-outliner]`,
`function(sroa),default<Oz>`). `parse` reads a name once per unit into a
`Pipeline`: opt's text for the unit's flags and the arguments code generation
adds; the builds hand that value on.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlcc.errors import ToolFailed
from mlcc.process import run_tool


# Stands for clang's own pipeline, exactly as clang would run it for the unit's
# flags (`codegen.clang_pipeline_text`). opt's `default<Oz>` is close but not the
# same: clang adds declare-to-assign and, at -Oz, the SLP vectorizer.
CLANG = "clang"


@dataclass(frozen=True)
class Pipeline:
    """One pipeline resolved for one unit."""

    name: str                       # as the model, the caches and the log know it
    passes: str                     # opt's -passes= text for this unit
    codegen_args: tuple[str, ...]   # what its `codegen` knobs add to this unit's code generation


def parse(name: str, clang_text: str, unit_args=()) -> Pipeline:
    """The pipeline `name` for a unit whose own clang pipeline is `clang_text` (opt's
    syntax) and whose code generation arguments are `unit_args`."""
    return Pipeline(name, resolve(name, clang_text), codegen_args(name, unit_args))


def resolve(pipeline_text: str, clang_text: str) -> str:
    """A pipeline in opt's syntax, given this unit's clang pipeline text: a `clang` element
    is that text, a `clang[knob,...]` element that text with knobs applied (`mlcc/knobs.py`)."""
    if pipeline_text == CLANG:
        return clang_text
    if CLANG in pipeline_text:
        from mlcc import knobs  # only units whose pipeline names knobs need the table
        return knobs.expand(pipeline_text, clang_text)
    return pipeline_text


def codegen_args(pipeline_text: str, unit_args=()) -> tuple[str, ...]:
    """Arguments code generation adds for this pipeline, for a unit compiled with
    `unit_args`: those of its `codegen` knobs (`knobs.codegen_args`)."""
    if CLANG not in pipeline_text:
        return ()
    from mlcc import knobs
    return knobs.codegen_args(pipeline_text, unit_args)


# Passes that read a profile file named on clang's command line: opt cannot be given the
# file the same way, and their printed pipeline does not rebuild the IR they match
# the profile against (-fprofile-use of an IR profile reports "function control flow
# change detected" through opt)
PROFILE_READERS = ("pgo-instr-use", "sample-profile")


def reads_profile(clang_text: str) -> bool:
    """True when clang's pipeline for a unit reads a profile file in a pass."""
    return any(name in clang_text.replace("(", ",").split(",") for name in PROFILE_READERS)


# Passes of mlcc's own pass plugin (mlcc/plugin/mlcc-pipeline.cpp) a pipeline may name:
# opt runs them with the plugin loaded, clang with the plugin route.
PLUGIN_PASSES = ("mlcc-inline-linkonce",)


def names_plugin_pass(pipeline: str) -> bool:
    return any(name in pipeline for name in PLUGIN_PASSES)


def plugin_args(opt: str, pipeline: str) -> tuple[str, ...]:
    """opt's arguments to load mlcc's pass plugin when `pipeline` names one of its passes;
    ToolFailed (the pipeline cannot run, as when opt fails) when it is not built."""
    if not names_plugin_pass(pipeline):
        return ()
    from mlcc import plugin_build
    from mlcc.toolchain import find
    found = plugin_build.installed(find("clang"))
    if found is None:
        raise ToolFailed([opt], 1, "mlcc's pass plugin is not built for this LLVM "
                         "(python -m mlcc.plugin_build); the pipeline names one of its passes")
    return (f"-load-pass-plugin={found}",)


def run_opt(opt: str, pipeline: str, bitcode_in: str, bitcode_out: str, *,
            target_flags=(), timeout=None) -> None:
    """Optimize `bitcode_in` with the new-pass-manager `pipeline` (opt's text); stderr is captured."""
    run_tool([opt, *plugin_args(opt, pipeline), *target_flags, f"-passes={pipeline}", bitcode_in,
              "-o", bitcode_out], timeout=timeout, capture_stderr=True)
