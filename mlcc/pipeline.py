"""The optimization step: `opt -passes=PIPELINE` on one module's bitcode."""

from __future__ import annotations

from mlcc.process import run_tool


def clang_pipeline(opt_level: str) -> str:
    """clang's own pass pipeline for an optimization level ("s" -> "default<Os>")."""
    return f"default<O{opt_level}>"


def run_opt(opt: str, pipeline: str, bitcode_in: str, bitcode_out: str, *,
            target_flags=(), timeout=None) -> None:
    """Optimize `bitcode_in` with the new-pass-manager `pipeline`; stderr is captured."""
    run_tool([opt, *target_flags, f"-passes={pipeline}", bitcode_in, "-o", bitcode_out],
             timeout=timeout, capture_stderr=True)
