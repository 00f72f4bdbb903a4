"""The optimization step: `opt -passes=PIPELINE` on one module's bitcode."""

from __future__ import annotations

from mlcc.process import run_tool


# Stands for clang's own pipeline, exactly as clang would run it for the unit's
# flags (`codegen.clang_pipeline_text`). opt's `default<Oz>` is close but not the
# same: clang adds declare-to-assign and, at -Oz, the SLP vectorizer.
CLANG = "clang"


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


def run_opt(opt: str, pipeline: str, bitcode_in: str, bitcode_out: str, *,
            target_flags=(), timeout=None) -> None:
    """Optimize `bitcode_in` with the new-pass-manager `pipeline`; stderr is captured."""
    run_tool([opt, *target_flags, f"-passes={pipeline}", bitcode_in, "-o", bitcode_out],
             timeout=timeout, capture_stderr=True)
