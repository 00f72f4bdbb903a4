"""One translation unit after its front end: the value every later stage is handed.

The driver makes a `UnitJob` once per unit: its plan and bitcode, the settings
and tools, the decision cache (opened once), where its files go, how long one
opt or code generation run may take, and what clang says about its flags (the
target options opt needs and clang's own pipeline, `decide.target_info`). The
decision, the builds (`trials.UnitBuilder`) and the log read it; the stages
add their seconds to its `Timings`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from mlcc.pipeline import Pipeline, parse
from mlcc.plan import UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain

TYPE_CHECKING = False  # not `from typing import ...`: see mlcc/process.py
if TYPE_CHECKING:
    from mlcc.cache import DecisionCache


class Timings:
    """Seconds each stage of one unit took: the log's `seconds`. A stage that raises
    adds nothing."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    @contextmanager
    def stage(self, name: str):
        """Time the block as (one more run of) stage `name`."""
        start = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - start)

    def get(self, stage: str) -> float:
        return self._seconds.get(stage, 0.0)

    def rounded(self) -> dict[str, float]:
        """{stage: seconds} for the stages that ran."""
        return {stage: round(seconds, 4) for stage, seconds in self._seconds.items()}


@dataclass(frozen=True)
class UnitJob:
    """One unit's compile from its bitcode on."""

    plan: UnitPlan
    opt_level: str                    # "z", "s" ("" where nothing is decided or searched)
    bitcode: str                      # the front end's, unoptimized
    settings: Settings
    tools: Toolchain
    tmp: str                          # a private directory for the unit's files ...
    stem: str                         # ... named from this
    cache: DecisionCache | None = None  # the decision cache; None when turned off
    timings: Timings = field(default_factory=Timings)
    timeout: float | None = None      # seconds for one opt or code generation run (None: settings')
    target_flags: tuple[str, ...] = ()  # the target options clang would give its optimizer, for opt
    clang_text: str = ""              # clang's own pipeline for the unit's flags, in opt's syntax
    triple: str = ""                  # the target clang compiles the unit for

    def path(self, suffix: str) -> str:
        """A file of this unit's in the private directory."""
        return os.path.join(self.tmp, self.stem + suffix)

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called `name`, as this unit runs it."""
        return parse(name, self.clang_text, self.plan.codegen_args)
