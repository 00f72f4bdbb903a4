"""Front end: one source to pre-optimization bitcode, with the user's flags.

Diagnostics stream through live; a failing compile raises ToolFailed with
clang's exit code, which the entry point passes on unchanged.
"""

from __future__ import annotations

from mlcc.plan import UnitPlan
from mlcc.process import run_tool


def compile_to_bitcode(clang: str, unit: UnitPlan, bitcode: str) -> None:
    """Run clang's front end for `unit`, writing unoptimized bitcode to `bitcode`."""
    run_tool([clang, *unit.frontend_args, "-o", bitcode, unit.source])


def compile_whole(clang: str, unit: UnitPlan, output: str) -> None:
    """`unit` from its source to `output` by clang alone, exactly as clang would build it."""
    run_tool([clang, *unit.whole_args, "-o", output, unit.source])
