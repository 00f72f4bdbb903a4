"""Measure the objective of one pipeline on one collected translation unit.

With the driver's own steps: `decide.target_info` for the target options clang
would give opt and for clang's own pipeline, the driver's builder
(`trials.UnitBuilder`: opt, then code generation through clang with the unit's
own flags, then `mlcc.objective.object_size`), so that the model learns from
what the driver builds. Two differences: debug info is stripped once per unit
first (it does not change the code, only the time code generation takes), and
warnings are off; a pipeline that fails measures None.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlcc import codegen, decide
from mlcc.errors import ToolFailed
from mlcc.job import UnitJob
from mlcc.objective import object_size
from mlcc.pipeline import resolve, run_opt
from mlcc.plan import UnitPlan
from mlcc.process import run_tool
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain, find
from mlcc.trials import UnitBuilder


@dataclass(frozen=True)
class Unit:
    """One collected translation unit: its bitcode and how it was compiled."""

    id: str
    project: str
    bitcode: str
    codegen_args: tuple[str, ...]
    driver: str = "c"

    @classmethod
    def load(cls, project_dir: Path, unit_id: str) -> "Unit":
        meta = json.loads((project_dir / f"{unit_id}.json").read_text())
        return cls(id=unit_id, project=project_dir.name,
                   bitcode=str(project_dir / f"{unit_id}.bc"),
                   codegen_args=tuple(meta["codegen_args"]), driver=meta.get("driver", "c"))


@dataclass(frozen=True)
class Prepared:
    """A unit made ready for many measurements."""

    unit: Unit
    bitcode: str                    # debug info stripped
    target_flags: tuple[str, ...]   # for opt
    clang: str
    opt: str
    clang_pipeline: str = ""        # what `pipeline.CLANG` stands for with this unit's flags
    triple: str = ""                # the target clang compiles it for


def prepare(unit: Unit, workdir: str) -> Prepared:
    """Strip debug info and ask clang for the unit's target options (once per unit)."""
    clang = find("clang++" if unit.driver == "c++" else "clang")
    opt = find("opt")
    stripped = os.path.join(workdir, f"{unit.id}.bc")
    run_tool([opt, "--strip-debug", unit.bitcode, "-o", stripped], capture_stderr=True)
    info = decide.target_info(clang, unit.codegen_args, stripped, cache=None)
    return Prepared(unit, stripped, info.flags, clang, opt, info.clang_pipeline, info.triple)


def _plan(unit: Unit) -> UnitPlan:
    """The driver's plan for a unit that is bitcode only, its warnings off."""
    return UnitPlan(source=unit.id, language=unit.driver, frontend_args=(),
                    codegen_args=(*unit.codegen_args, "-w"), output=None, emit_assembly=False)


class Measurer:
    """Measures pipelines on one prepared unit with the driver's builder, files under
    `workdir`. Pipelines whose opt part is the same (they differ in `codegen` knobs only)
    share one opt run, as in the driver's trials."""

    def __init__(self, prep: Prepared, workdir: str):
        self.prep = prep
        job = UnitJob(_plan(prep.unit), "", prep.bitcode, Settings(no_cache=True, server=False),
                      Toolchain(clang=prep.clang), tempfile.mkdtemp(prefix="measure-", dir=workdir),
                      prep.unit.id, target_flags=prep.target_flags, clang_text=prep.clang_pipeline,
                      triple=prep.triple)
        self.builder = UnitBuilder(job)

    def codegen_seconds(self) -> float:
        """The seconds this unit's code generation runs took so far."""
        return self.builder.job.timings.get("codegen")

    def size(self, pipeline: str, *, timeout: float = 300) -> int | None:
        """The objective after `pipeline`; None when opt or code generation fails."""
        self.builder.timeout = timeout
        try:
            return self.builder.build(self.builder.job.pipeline(pipeline)).size
        except ToolFailed:
            return None


def measure(prep: Prepared, pipeline: str, *, timeout: float = 300) -> int | None:
    """The objective after `pipeline`; None when opt or code generation fails."""
    with tempfile.TemporaryDirectory(prefix="mlcc-eval-") as tmp:
        return Measurer(prep, tmp).size(pipeline, timeout=timeout)


def optimize(prep: Prepared, pipeline: str, optimized: str, *, timeout: float = 300) -> bool:
    """opt with `pipeline` (`clang[...]` resolved for this unit) into `optimized`;
    False when opt fails."""
    try:
        run_opt(prep.opt, resolve(pipeline, prep.clang_pipeline), prep.bitcode, optimized,
                target_flags=prep.target_flags, timeout=timeout)
    except ToolFailed:
        return False
    return True


def generate(prep: Prepared, optimized: str, extra_args, obj: str, *,
             timeout: float = 300) -> int | None:
    """Code generation of `optimized` with the unit's flags plus `extra_args`; the
    objective of the object, None when code generation fails."""
    try:
        codegen.generate(prep.clang, _plan(prep.unit), optimized, obj, extra_args=extra_args,
                         timeout=timeout)
    except ToolFailed:
        return None
    return object_size(obj)
