"""Building one unit with one or more pipelines: opt, code generation, size.

`UnitBuilder.build` runs one pipeline; `best_of` builds several and keeps the
smallest object (`-fmlcc-trials`); `search` spends a budget of builds on the
model's candidates and then local edits of the best (`-fmlcc-search`). Pipelines
whose opt part is the same (they differ in `codegen` knobs only) share one opt run.
In trials and search, a pipeline that optimizes the unit to the very module an
earlier one did (the same bitcode, the same code generation arguments) has that
one's object: its code generation is skipped (`optimized_key`).
The learning side measures with this builder too (`mlcc/learn/measure.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from mlcc import codegen, pipeline
from mlcc.errors import ToolFailed
from mlcc.job import UnitJob
from mlcc.objective import object_size
from mlcc.pipeline import Pipeline


@dataclass
class Built:
    """One pipeline's result for a unit: optimized bitcode, output file, its size."""

    pipeline: Pipeline
    optimized: str        # "" when opt ran inside clang (route "plugin")
    output: str
    diagnostics: str
    size: int | None
    route: str = "opt+clang"  # or "plugin": opt's work and code generation in one clang


# The pass plugin hashes an optimized module of at most this many instructions only.
# On the training units (instructions before opt), builds of trials' set that came out
# the same size as an earlier build's were 52 % (-Os) and 36 % (-Oz) of the set's
# seconds under 500 instructions, 15 % and 4 % from 500 to 2,000, 4 % and 0.6 % from
# 2,000 to 5,000, 0.4 % above; hashing costs about 1.2 % of a build, and a reused one
# saves its code generation, about half (scripts/reuse_share.py; docs/DESIGN.md,
# "Builds of the same module").
REUSE_LIMIT = 2_000


class UnitBuilder:
    """Runs opt and code generation for one unit, under names private to it."""

    def __init__(self, job: UnitJob):
        self.job = job
        # per opt or code generation run; the learning side sets its own per measurement
        self.timeout = job.settings.timeout if job.timeout is None else job.timeout
        self._count = 0
        self._optimized: dict[str, str | ToolFailed] = {}  # opt's -passes= text -> its output
        self._objects: dict[str, Built] = {}  # `optimized_key` -> the first object built from it
        self.reused = 0  # builds that took an earlier build's object (`_once`)
        # the log shows opt's and code generation's seconds for every unit built here,
        # 0 when the output cache had its object
        job.timings.add("opt", 0.0)
        job.timings.add("codegen", 0.0)

    def build(self, pipe: Pipeline, *, assembly: bool | None = None, reuse: bool = False) -> Built:
        """opt with `pipe`, then code generation; raises ToolFailed. With `reuse`, an
        object whose optimized module an earlier `reuse` build had is that build's."""
        return self.generate(pipe, self.optimize(pipe), assembly=assembly, reuse=reuse)

    def build_in_one(self, pipe: Pipeline, *, assembly: bool | None = None,
                     reuse: bool = False) -> Built:
        """`build`'s object from one clang process, where mlcc's pass plugin is built for
        this clang (mlcc/plugin_build.py), the `plugin` setting is on and the output is an
        object outside LTO; else, or when that clang fails or refuses (its pipeline would
        run more than the chosen one), `build` itself. The object is the same
        (tests/test_plugin_route.py); the plugin's build has no optimized bitcode.
        `reuse` as for `build`: the plugin hashes the optimized module and, when an
        earlier build had it, skips code generation."""
        from mlcc import plugin_build
        plan = self.job.plan
        to_object = not (plan.emit_assembly if assembly is None else assembly)
        plugin = (plugin_build.installed(self.job.tools.clang)
                  if self.job.settings.plugin and to_object and not plan.lto else None)
        if plugin is None:
            return self.build(pipe, assembly=assembly, reuse=reuse)
        out = self._path(".o")
        report = self._path(".optimized") if reuse else None
        env = None if report is None else {
            "MLCC_PLUGIN_OPTIMIZED": report,
            "MLCC_PLUGIN_OPTIMIZED_PREFIX": _prefix(pipe.codegen_args),
            "MLCC_PLUGIN_OPTIMIZED_LIMIT": str(REUSE_LIMIT),
            "MLCC_PLUGIN_OPTIMIZED_SEEN": ",".join(self._objects)}
        try:
            with self.job.timings.stage("codegen"):  # opt's work included
                diagnostics = codegen.optimize_and_generate(
                    self.job.tools.clang, plugin, plan, self.job.bitcode, pipe.passes, out,
                    extra_args=pipe.codegen_args, timeout=self.timeout, plugin_env=env)
        except ToolFailed as exc:
            if exc.timed_out:  # opt and clang would take as long
                raise
            return self.build(pipe, assembly=assembly, reuse=reuse)
        if report is None:
            return Built(pipe, "", out, diagnostics, object_size(out), route="plugin")
        try:
            said = codegen.plugin_report(report)
        except (OSError, ValueError):
            said = {}
        key = said.get("optimized", "")
        if said.get("same") != "0" and key not in self._objects:
            # no report, or one naming no earlier build: its object may be the emptied one
            return self.build(pipe, assembly=assembly, reuse=reuse)
        return self._once(key, pipe, lambda: Built(
            pipe, "", out, diagnostics, object_size(out), route="plugin"))

    def optimize(self, pipe: Pipeline) -> str:
        """opt's output for `pipe`: run once per opt text, so that pipelines that differ
        only in code generation (their `codegen` knobs) share it. Raises ToolFailed, again
        without running opt for a text that failed."""
        done = self._optimized.get(pipe.passes)
        if done is None:
            done = self._path(".opt.bc")
            try:
                with self.job.timings.stage("opt"):
                    pipeline.run_opt(self.job.tools.opt, pipe.passes, self.job.bitcode, done,
                                     target_flags=self.job.target_flags, timeout=self.timeout)
            except ToolFailed as exc:
                done = exc
            self._optimized[pipe.passes] = done
        if isinstance(done, ToolFailed):
            raise done
        return done

    def _path(self, suffix: str) -> str:
        """A new file name private to this unit."""
        self._count += 1
        return self.job.path(f"-{self._count}{suffix}")

    def generate(self, pipe: Pipeline, optimized: str, *, assembly: bool | None = None,
                 reuse: bool = False) -> Built:
        """Code generation of `optimized` with `pipe`'s arguments, as an object (or assembly
        for -S, or when asked). With `reuse`, an object an earlier `reuse` build made from
        the same module with the same arguments is that build's."""
        plan = self.job.plan
        assembly = plan.emit_assembly if assembly is None else assembly
        if reuse and not assembly and not plan.lto:
            with open(optimized, "rb") as f:
                key = optimized_key(pipe.codegen_args, f.read())
            return self._once(key, pipe, lambda: self.generate(pipe, optimized, assembly=False))
        out = self._path(".s" if assembly else ".o")
        unit = plan if assembly == plan.emit_assembly else replace(plan, emit_assembly=assembly)
        with self.job.timings.stage("codegen"):
            diagnostics = codegen.generate(self.job.tools.clang, unit, optimized, out,
                                           timeout=self.timeout, extra_args=pipe.codegen_args)
        return Built(pipe, optimized, out, diagnostics,
                     None if assembly or plan.lto else object_size(out))

    def _once(self, key: str, pipe: Pipeline, make) -> Built:
        """The object an earlier build under `key` (`optimized_key`) made, as `pipe`'s;
        else `make()`'s, kept under `key` ("": none known)."""
        earlier = self._objects.get(key) if key else None
        if earlier is not None:
            self.reused += 1
            return replace(earlier, pipeline=pipe)
        built = make()
        if key:
            self._objects[key] = built
        return built

    def best_of(self, pipelines: list[Pipeline]) -> tuple[Built, dict[str, int | None]]:
        """Build every pipeline as an object; the smallest wins (ties: the earlier one).
        Also returns each pipeline's size by name (None: failed). A pipeline whose opt
        part no other one here shares, and that no earlier build ran, is built in one
        clang process where the plugin allows (`build_in_one`). A pipeline that optimizes
        the unit to an earlier one's module takes its object (`_once`, unless the
        `reuse_builds` setting is off): the same size, so the earlier one wins."""
        from collections import Counter
        results: list[Built] = []
        sizes: dict[str, int | None] = {}
        shared = Counter(p.passes for p in pipelines)
        reuse = self.job.settings.reuse_builds
        for p in pipelines:
            alone = shared[p.passes] == 1 and p.passes not in self._optimized
            try:
                built = (self.build_in_one(p, assembly=False, reuse=reuse) if alone
                         else self.build(p, assembly=False, reuse=reuse))
            except ToolFailed:
                sizes[p.name] = None
                continue
            sizes[p.name] = built.size
            results.append(built)
        if not results:
            raise ToolFailed([self.job.tools.opt], 1, "every trial pipeline failed")
        return self._finish(results), sizes

    def best_generation(self, default: Pipeline, variants: list[Pipeline],
                        also: list[Pipeline] = ()) -> tuple[Built, dict[str, int | None], int]:
        """`best_of` the default, its code generation variants (pipelines that differ
        from it in `codegen` knobs only, so all share its one opt run) and `also` (built
        last: the default wins ties), leaving out each variant that cannot change this
        unit's object: its knobs act only on loops or switches that the optimized module
        lacks (`knobs.may_differ`). Returns the best build, each built pipeline's size by
        name and how many variants were left out."""
        from mlcc import ir_reader, knobs
        from mlcc.errors import MlccError

        try:
            shape = ir_reader.shape(self.optimize(default))
        except MlccError:  # opt failed (best_of says so) or the module cannot be read
            shape = None
        kept = [v for v in variants
                if shape is None or knobs.may_differ(default.name, v.name, shape)]
        built, sizes = self.best_of([default, *kept, *also])
        return built, sizes, len(variants) - len(kept)

    def _finish(self, results: list[Built]) -> Built:
        """The smallest object wins (ties: the earliest built); as assembly for -S."""
        best = min(results, key=lambda b: b.size)
        if self.job.plan.emit_assembly:
            optimized = best.optimized or self.optimize(best.pipeline)  # "": built by the plugin
            best = self.generate(best.pipeline, optimized, assembly=True)
        return best

    def search(self, start: list[str], budget: int,
               slow_size: float | None = None) -> tuple[Built, dict[str, int | None]]:
        """Model-guided local search: the model's ranked candidates first (up to half the
        budget), then local edits (insert, delete, swap, replace a pass) of the best
        pipelines found so far, until `budget` evaluations. Seeded by the bitcode, so
        the same file always gets the same answer. Edits keep to what may run on a unit
        of this `slow_size` (`passes.bounded`; counted here when not given).
        Returns the best build and each pipeline's size by name (None: failed)."""
        import random

        from mlcc import model, passes, targets
        from mlcc.record import file_digest

        job = self.job
        if slow_size is None:
            from mlcc import ir_reader
            from mlcc.errors import MlccError
            try:
                shape = ir_reader.shape(job.bitcode)
                slow_size = passes.slow_pass_size(shape.instructions, shape.largest_function,
                                                  job.opt_level)
            except MlccError:
                slow_size = float("inf")  # not counted: no slow pass

        rng = random.Random(file_digest(job.bitcode))
        space = passes.load_space()
        known = model.target_of(job.triple)
        target = known.name if known else targets.HOST  # whose knobs an edit may add
        results: list[Built] = []
        sizes: dict[str, int | None] = {}

        def evaluate(name: str) -> None:
            sizes[name] = None
            try:
                built = self.build(job.pipeline(name), assembly=False, reuse=job.settings.reuse_builds)
            except ToolFailed:
                return
            sizes[name] = built.size
            results.append(built)

        for name in start[:max(1, budget // 2)]:
            if name not in sizes:
                evaluate(name)
        attempts = 0
        while len(sizes) < budget and attempts < budget * 10:
            attempts += 1
            ranked = sorted((b for b in results), key=lambda b: b.size)[:3]
            if not ranked:
                break
            parent = ranked[0] if rng.random() < 0.6 else rng.choice(ranked)
            child = passes.bounded(passes.to_opt(passes.mutate(
                rng, passes.editable(parent.pipeline.name, job.opt_level), space, job.opt_level,
                target)), slow_size)
            if child not in sizes:
                evaluate(child)
        if not results:
            raise ToolFailed([job.tools.opt], 1, "every searched pipeline failed")
        return self._finish(results), sizes


def optimized_key(codegen_args, bitcode: bytes) -> str:
    """What decides a build's object once its module is optimized: the sha256 of its code
    generation arguments (`_prefix`), a NUL and opt's optimized bitcode, names and all.
    The pass plugin (MLCC_PLUGIN_OPTIMIZED) hashes its module the same way but without
    the local value names, so the two routes' keys seldom meet; when they do, the bytes
    hashed were the same."""
    return hashlib.sha256(_prefix(codegen_args).encode() + b"\0" + bitcode).hexdigest()


def _prefix(codegen_args) -> str:
    return "\x1f".join(codegen_args)


def trial_pipelines(decision, k: int) -> list[str]:
    """clang's own pipeline first (it wins ties), then k candidates: the model's set for k,
    chosen together on the training projects, when it has one; then (a model without sets,
    or a set that the bound on slow passes made smaller) its top-ranked."""
    sets = decision.trial_sets
    chosen = sets[min(k, len(sets)) - 1] if sets and k > 0 else ()
    return search_start(decision, chosen)[:k + 1]


def search_start(decision, first=()) -> list[str]:
    """clang's own pipeline, then `first`, then the model's candidates best-ranked first."""
    out = [pipeline.CLANG]
    for p in (*first, *(decision.ranked or (decision.pipeline,))):
        if p not in out:
            out.append(p)
    return out
