"""Measure the objective of one pipeline on one collected translation unit.

The same steps as the driver: `opt` with the target options clang would give
it, then code generation through clang with the unit's own flags, then
`mlcc.objective.object_size`. Debug info is stripped once per unit first: it
does not change the code, only the time code generation takes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlcc import codegen
from mlcc.errors import ToolFailed
from mlcc.objective import object_size
from mlcc.pipeline import codegen_args, resolve
from mlcc.plan import FRONTEND_NO_PASSES
from mlcc.process import run_tool
from mlcc.toolchain import find


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


def prepare(unit: Unit, workdir: str) -> Prepared:
    """Strip debug info and ask clang for the unit's target options (once per unit)."""
    clang = find("clang++" if unit.driver == "c++" else "clang")
    opt = find("opt")
    stripped = os.path.join(workdir, f"{unit.id}.bc")
    run_tool([opt, "--strip-debug", unit.bitcode, "-o", stripped], capture_stderr=True)
    flags = codegen.optimizer_target_flags(clang, unit.codegen_args, stripped)
    text = codegen.clang_pipeline_text(clang, unit.codegen_args, stripped)
    return Prepared(unit, stripped, flags, clang, opt, text)


class Measurer:
    """Measures pipelines on one prepared unit, files under `workdir`. Pipelines whose
    opt part is the same (they differ in `codegen` knobs only) share one opt run, as
    in the driver's trials (`mlcc/trials.py`)."""

    def __init__(self, prep: Prepared, workdir: str):
        self.prep, self.workdir = prep, workdir
        self._optimized: dict[str, str | None] = {}  # opt's -passes= text -> output (None: failed)

    def size(self, pipeline: str, *, timeout: float = 300) -> int | None:
        """The objective after `pipeline`; None when opt or code generation fails."""
        passes = resolve(pipeline, self.prep.clang_pipeline)
        if passes not in self._optimized:
            optimized = os.path.join(self.workdir, f"opt-{len(self._optimized)}.bc")
            self._optimized[passes] = optimized if optimize(self.prep, pipeline, optimized,
                                                            timeout=timeout) else None
        if self._optimized[passes] is None:
            return None
        return generate(self.prep, self._optimized[passes],
                        codegen_args(pipeline, self.prep.unit.codegen_args),
                        os.path.join(self.workdir, "o.o"), timeout=timeout)


def measure(prep: Prepared, pipeline: str, *, timeout: float = 300) -> int | None:
    """The objective after `pipeline`; None when opt or code generation fails."""
    with tempfile.TemporaryDirectory(prefix="mlcc-eval-") as tmp:
        return Measurer(prep, tmp).size(pipeline, timeout=timeout)


def optimize(prep: Prepared, pipeline: str, optimized: str, *, timeout: float = 300) -> bool:
    """opt with `pipeline` (`clang[...]` resolved for this unit) into `optimized`;
    False when opt fails."""
    try:
        run_tool([prep.opt, *prep.target_flags, f"-passes={resolve(pipeline, prep.clang_pipeline)}",
                  prep.bitcode, "-o", optimized], timeout=timeout, capture_stderr=True)
    except ToolFailed:
        return False
    return True


def generate(prep: Prepared, optimized: str, extra_args, obj: str, *,
             timeout: float = 300) -> int | None:
    """Code generation of `optimized` with the unit's flags plus `extra_args`; the
    objective of the object, None when code generation fails."""
    try:
        run_tool([prep.clang, *prep.unit.codegen_args, *FRONTEND_NO_PASSES, *extra_args, "-w",
                  "-c", optimized, "-o", obj], timeout=timeout, capture_stderr=True)
    except ToolFailed:
        return None
    return object_size(obj)
