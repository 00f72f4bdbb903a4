"""Code generation: optimized bitcode to an object or assembly file.

Runs through the clang driver with the user's own flags (minus preprocessor
flags) and LLVM passes disabled, so the target options are exactly the ones
clang derives itself: relocation model and the default PIE, function and
data sections, code model, CPU and features, debug info, -Wa options.
"""

from __future__ import annotations

import sys

from mlcc.plan import FRONTEND_NO_PASSES, UnitPlan
from mlcc.process import run_tool


def _color(args) -> list[str]:
    """Keep coloured diagnostics when stderr is a terminal (it is captured here)."""
    if sys.stderr.isatty() and not any("color-diagnostics" in a for a in args):
        return ["-fcolor-diagnostics"]
    return []


def generate(clang: str, unit: UnitPlan, bitcode: str, out: str, *,
             clang_passes: bool = False, timeout=None) -> str:
    """Generate `out` from `bitcode`; return the tool's stderr (diagnostics) for the caller.

    With `clang_passes`, clang runs its own optimization pipeline first (the
    fallback when mlcc's pipeline could not run).
    """
    args = [*unit.codegen_args, *(() if clang_passes else FRONTEND_NO_PASSES)]
    argv = [clang, *args, *_color(args), "-S" if unit.emit_assembly else "-c", bitcode, "-o", out]
    proc = run_tool(argv, timeout=timeout, capture_stderr=True)
    return proc.stderr.decode(errors="replace") if proc.stderr else ""
