"""Carry out a plan: each source through front end, model, opt and code
generation in a private temporary directory, then the outputs into place and
the link through clang.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, replace

from mlcc import codegen, frontend, model, pipeline, record
from mlcc.args import Command
from mlcc.errors import MlccError, ToolchainMissing, ToolFailed
from mlcc.link import link
from mlcc.objective import object_size
from mlcc.plan import OptimizePlan, PlainClang, UnitPlan
from mlcc.process import exec_tool
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain, find, for_driver


def run_plain_clang(cmd_driver: str, clang_argv, reason: str, settings: Settings) -> None:
    """Replace this process by clang with the user's arguments; log why first."""
    clang = find("clang++" if cmd_driver == "c++" else "clang")
    if settings.log:
        record.append_log(settings.log, {"path": "clang", "reason": reason,
                                         "cwd": os.getcwd(), "argv": list(clang_argv)})
    exec_tool([clang, *clang_argv])


def _terminate(signum, frame):
    raise KeyboardInterrupt


def deliver(built: str, dest: str) -> None:
    """Move a finished output into place; a failed copy leaves no partial file."""
    if dest == "-":
        with open(built, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    try:
        os.replace(built, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise MlccError(f"unable to open output file '{dest}': '{exc.strerror}'") from None
    try:
        shutil.copyfile(built, dest)
    except BaseException:
        try:
            os.unlink(dest)
        except OSError:
            pass
        raise


@dataclass
class _Built:
    """One pipeline's result for a unit: optimized bitcode, output file, its size."""

    pipeline: str
    optimized: str
    output: str
    diagnostics: str
    size: int | None


class _UnitBuilder:
    """Runs opt and code generation for one unit, under names private to it."""

    def __init__(self, unit: UnitPlan, tools: Toolchain, settings: Settings, tmp: str,
                 stem: str, bitcode: str, target_flags, opt_level: str):
        self.unit, self.tools, self.settings = unit, tools, settings
        self.unit_opt_level = opt_level
        self.tmp, self.stem, self.bitcode, self.target_flags = tmp, stem, bitcode, target_flags
        self.times: dict[str, float] = {"opt": 0.0, "codegen": 0.0}
        self._count = 0

    def build(self, pipeline_text: str, *, assembly: bool | None = None) -> _Built:
        """opt with `pipeline_text`, then code generation; raises ToolFailed."""
        self._count += 1
        base = os.path.join(self.tmp, f"{self.stem}-{self._count}")
        start = time.perf_counter()
        pipeline.run_opt(self.tools.opt, pipeline_text, self.bitcode, base + ".opt.bc",
                         target_flags=self.target_flags, timeout=self.settings.timeout)
        self.times["opt"] += time.perf_counter() - start
        return self.generate(pipeline_text, base + ".opt.bc", assembly=assembly)

    def generate(self, pipeline_text: str, optimized: str, *, assembly: bool | None = None) -> _Built:
        assembly = self.unit.emit_assembly if assembly is None else assembly
        out = optimized[:-len(".opt.bc")] + (".s" if assembly else ".o")
        unit = self.unit if assembly == self.unit.emit_assembly else replace(self.unit, emit_assembly=assembly)
        start = time.perf_counter()
        diagnostics = codegen.generate(self.tools.clang, unit, optimized, out, timeout=self.settings.timeout)
        self.times["codegen"] += time.perf_counter() - start
        return _Built(pipeline_text, optimized, out, diagnostics,
                      None if assembly else object_size(out))

    def best_of(self, pipelines: list[str]) -> tuple[_Built, dict[str, int | None]]:
        """Build every pipeline as an object; the smallest wins (ties: the earlier one)."""
        results: list[_Built] = []
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

    def _finish(self, results: list[_Built]) -> _Built:
        """The smallest object wins (ties: the earliest built); as assembly for -S."""
        best = min(results, key=lambda b: b.size)
        if self.unit.emit_assembly:
            best = self.generate(best.pipeline, best.optimized, assembly=True)
        return best

    def search(self, start: list[str], budget: int) -> tuple[_Built, dict[str, int | None]]:
        """Model-guided local search: the model's ranked candidates first (up to half the
        budget), then local edits (insert, delete, swap, replace a pass) of the best
        pipelines found so far, until `budget` evaluations. Seeded by the bitcode, so
        the same file always gets the same answer."""
        import random

        from mlcc import passes
        from mlcc.record import file_digest

        rng = random.Random(file_digest(self.bitcode))
        space = passes.load_space()
        results: list[_Built] = []
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
            child = passes.to_opt(passes.mutate(rng, passes.parse_simple(parent.pipeline),
                                                space, self.unit_opt_level))
            if child not in sizes:
                evaluate(child)
        if not results:
            raise ToolFailed([self.tools.opt], 1, "every searched pipeline failed")
        return self._finish(results), sizes


def _target_flags(tools: Toolchain, unit: UnitPlan, bitcode: str, settings: Settings):
    """clang's target options for opt, remembered per (clang, flags, directory)."""
    from mlcc.cache import DecisionCache, make_text_key

    cache = None if settings.no_cache else DecisionCache(settings.cache or None)
    if cache is not None:
        st = os.stat(tools.clang)
        key = make_text_key("target-flags", tools.clang, st.st_size, st.st_mtime_ns,
                            os.getcwd(), unit.codegen_args)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("target_flags"), list):
            return tuple(entry["target_flags"])
    flags = codegen.optimizer_target_flags(tools.clang, unit.codegen_args, bitcode)
    if cache is not None:
        cache.put(key, {"target_flags": list(flags)})
    return flags


def _trial_pipelines(decision: model.Decision, opt_level: str, k: int) -> list[str]:
    """clang's own pipeline first (it wins ties), then the model's top k."""
    out = [pipeline.clang_pipeline(opt_level)]
    for p in decision.ranked or (decision.pipeline,):
        if len(out) > k:
            break
        if p not in out:
            out.append(p)
    return out


def _decide(builder: _UnitBuilder, cmd: Command, settings: Settings, times: dict):
    """The pipeline for a unit: from the cache, else the model (and trials); returns
    (decision, built or None, cache note)."""
    from mlcc.cache import DecisionCache, make_key

    cache = None if settings.no_cache else DecisionCache(settings.cache or None)
    key = None
    if cache is not None:
        identity = model.identity_for(cmd.opt_level, settings)
        key = make_key(builder.bitcode, builder.unit.codegen_args, builder.target_flags,
                       identity, settings.trials, settings.search, settings.pipeline, cmd.opt_level)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("pipeline"), str):
            return model.Decision(entry["pipeline"], "cache", scores=entry.get("scores", {})), None, "hit"
    start = time.perf_counter()
    decision = model.choose(builder.bitcode, cmd.opt_level, settings)
    times["model"] = time.perf_counter() - start
    built = None
    sizes = {}
    if settings.search and not settings.pipeline:
        start = _trial_pipelines(decision, cmd.opt_level, len(decision.ranked))
        built, sizes = builder.search(start, settings.search)
        decision = model.Decision(built.pipeline, decision.source + f", search of {len(sizes)}",
                                  decision.ranked, decision.scores)
    elif settings.trials and not settings.pipeline:
        built, sizes = builder.best_of(_trial_pipelines(decision, cmd.opt_level, settings.trials))
        decision = model.Decision(built.pipeline, decision.source + f", best of {len(sizes)} trials",
                                  decision.ranked, decision.scores)
    if cache is not None:
        cache.put(key, {"pipeline": decision.pipeline, "source": decision.source,
                        "scores": decision.scores, "trial_sizes": sizes})
    return decision, built, "miss" if cache is not None else "off"


def _compile_unit(index: int, unit: UnitPlan, cmd: Command, tools: Toolchain,
                  settings: Settings, tmp: str) -> str:
    """One source to its object (or assembly) in `tmp`; returns that file's path."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    stem = f"{os.path.splitext(os.path.basename(unit.source))[0]}-{index}"
    bitcode = os.path.join(tmp, f"{stem}.bc")
    frontend.compile_to_bitcode(tools.clang, unit, bitcode)
    times["frontend"] = time.perf_counter() - start
    if settings.collect:
        record.collect_unit(settings.collect, bitcode, {
            "source": os.path.abspath(unit.source), "cwd": os.getcwd(),
            "driver": cmd.driver, "language": unit.language, "opt_level": cmd.opt_level,
            "argv": list(cmd.argv), "codegen_args": list(unit.codegen_args)})

    fallback = None
    decision = model.Decision(pipeline.clang_pipeline(cmd.opt_level), "clang-default")
    cache_note = "off"
    builder = None
    try:
        start = time.perf_counter()
        target_flags = _target_flags(tools, unit, bitcode, settings)
        times["target"] = time.perf_counter() - start
        builder = _UnitBuilder(unit, tools, settings, tmp, stem, bitcode, target_flags,
                               cmd.opt_level)
        decision, built, cache_note = _decide(builder, cmd, settings, times)
        if built is None:
            built = builder.build(decision.pipeline)
        output, diagnostics = built.output, built.diagnostics
    except (ToolFailed, ToolchainMissing) as exc:
        fallback = str(exc)
        output = os.path.join(tmp, f"{stem}.fallback" + (".s" if unit.emit_assembly else ".o"))
        start = time.perf_counter()
        try:
            diagnostics = codegen.generate(tools.clang, unit, bitcode, output, clang_passes=True)
        except ToolFailed as final:
            sys.stderr.write(final.stderr)
            raise
        times["fallback"] = time.perf_counter() - start
        print(f"mlcc: warning: {fallback}; compiled {unit.source} with clang's own pipeline",
              file=sys.stderr)
    if builder is not None:
        times.update(builder.times)
    sys.stderr.write(diagnostics)
    if settings.verbose:
        gain = decision.scores.get(decision.pipeline)
        note = f", predicted {100 * (1 - gain):+.1f}% vs clang" if gain else ""
        print(f"mlcc: {unit.source}: {decision.pipeline} ({decision.source}{note})",
              file=sys.stderr)
    if settings.log:
        record.append_log(settings.log, {
            "path": "optimize", "source": unit.source, "cwd": os.getcwd(),
            "output": unit.output, "opt_level": cmd.opt_level, "argv": list(cmd.argv),
            "pipeline": decision.pipeline if not fallback else pipeline.clang_pipeline(cmd.opt_level),
            "decision": decision.source, "scores": decision.scores, "fallback": fallback,
            "cache": cache_note, "seconds": {k: round(v, 4) for k, v in times.items()},
            "size": None if unit.emit_assembly else object_size(output)})
    return output


def execute(plan: OptimizePlan, settings: Settings) -> int:
    """Run an optimizing plan; return the exit code clang would have given."""
    cmd = plan.command
    tools = for_driver(cmd.driver)
    previous = signal.signal(signal.SIGTERM, _terminate)
    tmp = tempfile.mkdtemp(prefix="mlcc-")
    try:
        built: list[str] = []
        failure: ToolFailed | None = None
        for index, unit in enumerate(plan.units):
            try:
                path = _compile_unit(index, unit, cmd, tools, settings, tmp)
            except ToolFailed as exc:
                failure = failure or exc
                continue
            if unit.output is not None:
                deliver(path, unit.output)
            built.append(path)
        if failure is not None:
            return failure.exit_code
        if plan.link_args is not None:
            link(tools.clang, plan.link_args, built)
        return 0
    except ToolFailed as exc:
        return exc.exit_code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def compile_command(cmd: Command, clang_argv, settings: Settings) -> int:
    """Plan one command and carry it out (plain clang replaces this process)."""
    from mlcc.plan import make_plan

    plan = make_plan(cmd)
    if isinstance(plan, PlainClang):
        run_plain_clang(cmd.driver, clang_argv, plan.reason, settings)
    return execute(plan, settings)
