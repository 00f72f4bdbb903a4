"""The model step: which pass pipeline to run on one translation unit.

Until a model for the optimization level is available, the answer is clang's
own pipeline, and the decision says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlcc.pipeline import clang_pipeline


@dataclass(frozen=True)
class Decision:
    """The chosen pipeline, where it came from, and the model's scores if any."""

    pipeline: str
    source: str                                  # "model", "clang-default: <why>", ...
    ranked: tuple[str, ...] = ()                 # candidates, best predicted first
    scores: dict[str, float] = field(default_factory=dict)  # predicted size / clang's


def choose(bitcode: str, opt_level: str, settings) -> Decision:
    """Decide the pipeline for `bitcode` at -O`opt_level`."""
    if settings.pipeline:
        forced = clang_pipeline(opt_level) if settings.pipeline == "clang" else settings.pipeline
        return Decision(pipeline=forced, source="forced")
    return Decision(pipeline=clang_pipeline(opt_level), source="clang-default: no model")


def identity() -> str:
    """A short description of the model in use, for --version."""
    return "model: none, clang's own pipelines"
