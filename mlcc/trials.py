"""Building one unit with one or more pipelines: opt, code generation, size.

`UnitBuilder.build` runs one pipeline; `best_of` builds several and keeps the
smallest object (`-fmlcc-trials`); `search` spends a budget of builds on the
model's candidates and then local edits of the best (`-fmlcc-search`). Pipelines
whose opt part is the same (they differ in `codegen` knobs only) share one opt run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from mlcc import codegen, pipeline
from mlcc.errors import ToolFailed
from mlcc.objective import object_size
from mlcc.plan import UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain


@dataclass
class Built:
    """One pipeline's result for a unit: optimized bitcode, output file, its size."""

    pipeline: str
    optimized: str
    output: str
    diagnostics: str
    size: int | None


class UnitBuilder:
    """Runs opt and code generation for one unit, under names private to it."""

    def __init__(self, unit: UnitPlan, tools: Toolchain, settings: Settings, tmp: str,
                 stem: str, bitcode: str, target_flags, opt_level: str, clang_text: str,
                 timeout: float | None = None):
        self.unit, self.tools, self.settings = unit, tools, settings
        self.timeout = settings.timeout if timeout is None else timeout  # per opt or codegen run
        self.unit_opt_level = opt_level
        self.clang_text = clang_text
        self.tmp, self.stem, self.bitcode, self.target_flags = tmp, stem, bitcode, target_flags
        self.times: dict[str, float] = {"opt": 0.0, "codegen": 0.0}
        self._count = 0
        self._optimized: dict[str, str] = {}  # opt's -passes= text -> its output

    def build(self, pipeline_text: str, *, assembly: bool | None = None) -> Built:
        """opt with `pipeline_text`, then code generation; raises ToolFailed. Pipelines
        that differ only in code generation (their `codegen` knobs) share one opt run."""
        passes = pipeline.resolve(pipeline_text, self.clang_text)
        optimized = self._optimized.get(passes)
        if optimized is None:
            optimized = self._path(".opt.bc")
            start = time.perf_counter()
            pipeline.run_opt(self.tools.opt, passes, self.bitcode, optimized,
                             target_flags=self.target_flags, timeout=self.timeout)
            self.times["opt"] += time.perf_counter() - start
            self._optimized[passes] = optimized
        return self.generate(pipeline_text, optimized, assembly=assembly)

    def _path(self, suffix: str) -> str:
        """A new file name private to this unit."""
        self._count += 1
        return os.path.join(self.tmp, f"{self.stem}-{self._count}{suffix}")

    def generate(self, pipeline_text: str, optimized: str, *, assembly: bool | None = None) -> Built:
        assembly = self.unit.emit_assembly if assembly is None else assembly
        out = self._path(".s" if assembly else ".o")
        unit = self.unit if assembly == self.unit.emit_assembly else replace(self.unit, emit_assembly=assembly)
        start = time.perf_counter()
        diagnostics = codegen.generate(self.tools.clang, unit, optimized, out, timeout=self.timeout,
                                       extra_args=pipeline.codegen_args(pipeline_text, unit.codegen_args))
        self.times["codegen"] += time.perf_counter() - start
        return Built(pipeline_text, optimized, out, diagnostics,
                      None if assembly else object_size(out))

    def best_of(self, pipelines: list[str]) -> tuple[Built, dict[str, int | None]]:
        """Build every pipeline as an object; the smallest wins (ties: the earlier one)."""
        results: list[Built] = []
        sizes: dict[str, int | None] = {}
        for p in pipelines:
            try:
                built = self.build(p, assembly=False)
            except ToolFailed:
                sizes[p] = None
                continue
            sizes[p] = built.size
            results.append(built)
        if not results:
            raise ToolFailed([self.tools.opt], 1, "every trial pipeline failed")
        return self._finish(results), sizes

    def _finish(self, results: list[Built]) -> Built:
        """The smallest object wins (ties: the earliest built); as assembly for -S."""
        best = min(results, key=lambda b: b.size)
        if self.unit.emit_assembly:
            best = self.generate(best.pipeline, best.optimized, assembly=True)
        return best

    def search(self, start: list[str], budget: int,
               instructions: float | None = None) -> tuple[Built, dict[str, int | None]]:
        """Model-guided local search: the model's ranked candidates first (up to half the
        budget), then local edits (insert, delete, swap, replace a pass) of the best
        pipelines found so far, until `budget` evaluations. Seeded by the bitcode, so
        the same file always gets the same answer. Edits keep to what may run on a unit
        of this many `instructions` (`passes.bounded`; counted here when not given)."""
        import random

        from mlcc import passes
        from mlcc.record import file_digest

        if instructions is None:
            from mlcc import features
            from mlcc.errors import MlccError
            try:
                instructions = features.extract_feature_dict(self.bitcode)["TotalInsts"]
            except MlccError:
                instructions = float("inf")  # not counted: no slow pass

        rng = random.Random(file_digest(self.bitcode))
        space = passes.load_space()
        results: list[Built] = []
        sizes: dict[str, int | None] = {}

        def evaluate(p: str) -> None:
            sizes[p] = None
            try:
                built = self.build(p, assembly=False)
            except ToolFailed:
                return
            sizes[p] = built.size
            results.append(built)

        for p in start[:max(1, budget // 2)]:
            if p not in sizes:
                evaluate(p)
        attempts = 0
        while len(sizes) < budget and attempts < budget * 10:
            attempts += 1
            ranked = sorted((b for b in results), key=lambda b: b.size)[:3]
            if not ranked:
                break
            parent = ranked[0] if rng.random() < 0.6 else rng.choice(ranked)
            child = passes.bounded(passes.to_opt(passes.mutate(
                rng, passes.editable(parent.pipeline, self.unit_opt_level), space, self.unit_opt_level)),
                instructions)
            if child not in sizes:
                evaluate(child)
        if not results:
            raise ToolFailed([self.tools.opt], 1, "every searched pipeline failed")
        return self._finish(results), sizes


def trial_pipelines(decision, opt_level: str, k: int) -> list[str]:
    """clang's own pipeline first (it wins ties), then k candidates: the model's set for k,
    chosen together on the training projects, when it has one; then (a model without sets,
    or a set that the bound on slow passes made smaller) its top-ranked."""
    sets = decision.trial_sets
    chosen = sets[min(k, len(sets)) - 1] if sets and k > 0 else ()
    return search_start(decision, opt_level, chosen)[:k + 1]


def search_start(decision, opt_level: str, first=()) -> list[str]:
    """clang's own pipeline, then `first`, then the model's candidates best-ranked first."""
    out = [pipeline.CLANG]
    for p in (*first, *(decision.ranked or (decision.pipeline,))):
        if p not in out:
            out.append(p)
    return out
