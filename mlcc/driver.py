"""Carry out a plan: each source through front end, model, opt and code
generation in a private temporary directory, then the outputs into place and
the link through clang.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import sys
import tempfile
from dataclasses import dataclass, replace

from mlcc import codegen, decide, frontend, model, one_process, pipeline, profile_heat, record
from mlcc.args import Command
from mlcc.errors import MlccError, OutputClosed, ToolchainMissing, ToolFailed
from mlcc.job import Timings, UnitJob
from mlcc.link import link
from mlcc.objective import object_size
from mlcc.output_cache import fetch_or_build, output_key, tool_identity
from mlcc.plan import OptimizePlan, UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain, for_driver
from mlcc.trials import UnitBuilder


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C is, so that the same clean-up runs; `cli` then dies of it."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated


def _is_special(path: str) -> bool:
    """True for an existing output that is not a regular file or directory: /dev/null,
    /dev/full, a FIFO, a terminal. Clang writes into those; it never replaces them."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _remove_stale(dest: str | None) -> None:
    """What clang does with the output of a compile that failed: delete it, also when an
    earlier build left it (a stale object must not reach a later link)."""
    if dest is None or dest == "-" or _is_special(dest):
        return
    try:
        if os.path.isfile(dest):
            os.unlink(dest)
    except OSError:
        pass


def _write_failed(dest: str, exc: OSError) -> MlccError:
    return MlccError(f"unable to write output file '{dest}': '{exc.strerror}'")


def deliver(built: str, dest: str) -> None:
    """Put a finished output in place: renamed over a regular file (so a failure never
    leaves a partial one), written through into a special file, copied to stdout for '-'."""
    if dest == "-":
        try:
            with open(built, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # nothing more can reach the reader, not even at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise OutputClosed() from None
        return
    if _is_special(dest):
        try:
            with open(built, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        except OSError as exc:
            raise _write_failed(dest, exc) from None
        return
    try:
        os.replace(built, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise MlccError(f"unable to open output file '{dest}': '{exc.strerror}'") from None
    # Another file system: copy beside the destination, then rename.
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mlcc-", suffix=".tmp")
    except OSError as exc:
        raise MlccError(f"unable to open output file '{dest}': '{exc.strerror}'") from None
    try:
        with open(built, "rb") as src, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_failed(dest, exc) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# An opt or code generation run that takes this many times as long as the unit's
# front end, and at least STUCK_FLOOR seconds, is stuck: LLVM 19's BDCE runs for
# more than ten minutes on some programs under some pipelines (docs/RELIABILITY.md).
# The unit then gets clang's own pipeline. A wall-clock ratio: a loaded machine
# slows the front end as much as opt. `timeout` stays the ceiling.
STUCK_FACTOR = 30
STUCK_FLOOR = 60.0


def stage_timeout(settings: Settings, frontend_seconds: float) -> float:
    """Seconds one opt or code generation run may take for this unit."""
    return min(settings.timeout, max(STUCK_FLOOR, STUCK_FACTOR * frontend_seconds))


def _small_unit(bitcode: str, settings: Settings) -> bool:
    """A single-shot or trials build of a unit whose bitcode is under `settings.small_unit`
    bytes: about half of all units, holding about 1% of what the candidates can save
    (docs/DESIGN.md); trials would build it four times for next to nothing."""
    return (settings.small_unit > 0 and not (settings.search or settings.pipeline)
            and os.path.getsize(bitcode) < settings.small_unit)


@dataclass(frozen=True)
class Outcome:
    """What compiling one unit from its bitcode gave: for delivery and the log."""

    output: str                    # the object or assembly file, in the private directory
    diagnostics: str               # code generation's, for stderr
    decision: model.Decision
    fallback: str | None = None    # why clang's own pipeline ran instead of the decision
    cache: str = "off"             # the decision cache: "hit", "miss" or "off"
    output_cache: str = "off"      # the output cache (mlcc/output_cache.py)
    triple: str = ""               # the target clang compiles the unit for ("" when not asked)
    # how the object was made: "clang" (clang's pipeline, one process), "plugin" (the
    # chosen pipeline inside clang, mlcc/plugin_build.py), "opt+clang", or "cache"
    route: str = "clang"


def _with_clangs_pipeline(job: UnitJob, output: str) -> tuple[str, bool]:
    """clang's own pipeline and code generation from the bitcode in one clang process
    (the same bytes as `clang -c` on the source); returns (diagnostics, whether clang
    compiled the source instead).

    If that fails, clang alone compiles the source and decides: from bitcode, code
    generation knows neither the source lines its diagnostics point at (inline
    assembly, `__attribute__((warning))`) nor the `#pragma clang diagnostic` that
    silences them, so its error may be one clang would not give, or worse worded.
    """
    unit = job.plan
    try:
        diagnostics = codegen.generate(job.tools.clang, unit, job.bitcode, output, clang_passes=True)
    except ToolFailed:
        if not unit.whole_args:  # bitcode only (the learning side): nothing to fall back on
            raise
        frontend.compile_whole(job.tools.clang, unit, output)  # its diagnostics stream through
        return "", True
    return diagnostics, False


def _optimize_unit(job: UnitJob) -> Outcome:
    """Decide, run opt, generate code; if a tool fails, clang's own pipeline with a warning."""
    unit = job.plan
    decision = model.Decision(pipeline.CLANG, "clang-default")
    cache_note = output_note = "off"
    try:
        with job.timings.stage("target"):
            info = decide.target_info(job.tools.clang, unit.codegen_args, job.bitcode, job.cache)
        job = replace(job, target_flags=info.flags, clang_text=info.clang_pipeline,
                      triple=info.triple)
        if unit.profiled and (pipeline.reads_profile(info.clang_pipeline)
                              or profile_heat.holds_hot_code(job.bitcode)):
            # the profile is read by a pass of clang's pipeline, or says the unit holds hot
            # code (mlcc/profile_heat.py): clang's own pipeline, in one process
            job = replace(job, settings=replace(job.settings, pipeline=pipeline.CLANG, trials=0))
        builder = UnitBuilder(job)
        key = decide.decision_key(job)
        decision, built, cache_note = decide.decide(job, builder, key)
        route = "cache"

        def build() -> tuple[str, str]:
            nonlocal route
            route = "clang"
            if built is None and decision.pipeline == pipeline.CLANG and not unit.emit_assembly:
                # clang's own pipeline in one clang process from the bitcode: the object opt
                # and code generation give, without the extra process and bitcode round trip
                # (objects only: for -S, two driver comparisons, S-two-sources and
                # alias-assemble, came out different this way, cause not yet found)
                output = job.path(_suffix(unit))
                with job.timings.stage("codegen"):
                    return output, codegen.generate(job.tools.clang, unit, job.bitcode, output,
                                                    clang_passes=True)
            done = built or builder.build_in_one(job.pipeline(decision.pipeline))
            route = done.route
            return done.output, done.diagnostics

        if key is not None:
            key = output_key(key, decision.pipeline, tool_identity(job.tools.clang, job.tools.opt),
                             unit.emit_assembly)
        output, diagnostics, output_note = fetch_or_build(
            job.cache, key, job.path(".cached" + _suffix(unit)), build)
    except (ToolFailed, ToolchainMissing) as exc:
        output = job.path(".fallback" + _suffix(unit))
        with job.timings.stage("fallback"):
            diagnostics, from_source = _with_clangs_pipeline(job, output)
        if not from_source:  # else the unit, not mlcc's pipeline, failed: clang has spoken
            print(f"mlcc: warning: {exc}; compiled {unit.source} with clang's own pipeline",
                  file=sys.stderr)
        return Outcome(output, diagnostics, decision, str(exc), cache_note, output_note, job.triple)
    return Outcome(output, diagnostics, decision, None, cache_note, output_note, job.triple, route)


def _suffix(unit: UnitPlan) -> str:
    return ".s" if unit.emit_assembly else ".o"


def _small_unit_output(job: UnitJob) -> Outcome:
    """A small unit through clang's pipeline in one clang process, or from the output cache."""
    unit = job.plan
    key = None
    if job.cache is not None:
        from mlcc.cache import make_key
        key = output_key(make_key(job.bitcode, "small unit", unit.codegen_args, job.opt_level),
                         pipeline.CLANG, tool_identity(job.tools.clang), unit.emit_assembly)
    output = job.path(_suffix(unit))

    def build() -> tuple[str, str]:
        with job.timings.stage("codegen"):
            diagnostics, _ = _with_clangs_pipeline(job, output)
        return output, diagnostics

    output, diagnostics, output_note = fetch_or_build(
        job.cache, key, job.path(".cached" + _suffix(unit)), build)
    return Outcome(output, diagnostics, model.SMALL_UNIT, output_cache=output_note)


def _compile_unit(index: int, unit: UnitPlan, cmd: Command, tools: Toolchain,
                  settings: Settings, tmp: str) -> str:
    """One source to its object (or assembly) in `tmp`; returns that file's path."""
    timings = Timings()
    stem = f"{os.path.splitext(os.path.basename(unit.source))[0]}-{index}"
    cache = decide.open_cache(settings)
    route = (one_process.route_for(unit, cmd.opt_level, settings, tools, cache, tmp)
             if cmd.opt_level in model.SHIPPED_LEVELS else None)
    if route is not None:
        done = one_process.build(route, unit, cmd.opt_level, settings, tools, cache, tmp, stem,
                                 timings)
        if done is not None:
            _report_unit(unit, cmd, settings, timings, done.decision,
                         done.diagnostics, done.output, triple=route.triple,
                         output_cache=done.output_cache,
                         route="cache" if done.output_cache == "hit" else one_process.ROUTE)
            return done.output
        timings = Timings()  # the split route's seconds alone
    with timings.stage("frontend"):
        bitcode = os.path.join(tmp, f"{stem}.bc")
        frontend.compile_to_bitcode(tools.clang, unit, bitcode)
    if settings.collect:
        record.collect_unit(settings.collect, bitcode, {
            "source": os.path.abspath(unit.source), "cwd": os.getcwd(),
            "driver": cmd.driver, "language": unit.language, "opt_level": cmd.opt_level,
            "argv": list(cmd.argv), "codegen_args": list(unit.codegen_args)})

    if unit.lto:
        # trials compare object sizes, and an LTO object is bitcode: single-shot (a
        # profiled unit too; a hot one still gets clang's pipeline)
        settings = replace(settings, trials=0, search=0)
    elif unit.profiled and not (settings.trials or settings.search or settings.pipeline):
        # a profiled unit never gets a pipeline larger than clang's under its profile:
        # clang's own and the best single candidate are both built, the smaller kept
        settings = replace(settings, trials=1)
    job = UnitJob(unit, cmd.opt_level, bitcode, settings, tools, tmp, stem,
                  cache=cache, timings=timings,
                  timeout=stage_timeout(settings, timings.get("frontend")))
    outcome = _small_unit_output(job) if _small_unit(bitcode, settings) else _optimize_unit(job)
    decision = outcome.decision
    _report_unit(unit, cmd, settings, timings, decision, outcome.diagnostics, outcome.output,
                 triple=outcome.triple,
                 fallback=outcome.fallback, cache=outcome.cache,
                 output_cache=outcome.output_cache,
                 route=outcome.route if outcome.output_cache != "hit" else "cache")
    return outcome.output


def _report_unit(unit: UnitPlan, cmd: Command, settings: Settings, timings: Timings,
                 decision: model.Decision, diagnostics: str, output: str, *,
                 triple: str, fallback: str | None = None, cache: str = "off",
                 output_cache: str = "off", route: str) -> None:
    """A compiled unit's diagnostics on stderr, its `-fmlcc-verbose` line and its log line
    (whose pipeline is clang's after a fallback)."""
    sys.stderr.write(diagnostics)
    if settings.verbose:
        gain = decision.scores.get(decision.pipeline)
        note = f", predicted {100 * (1 - gain):+.1f}% vs clang" if gain else ""
        print(f"mlcc: {unit.source}: {decision.pipeline} ({decision.source}{note})",
              file=sys.stderr)
    if settings.log:
        from mlcc import process
        forks = process.fork_server
        record.append_log(settings.log, {
            "path": "optimize", "source": unit.source, "cwd": os.getcwd(),
            "output": unit.output, "opt_level": cmd.opt_level, "argv": list(cmd.argv),
            "driver": cmd.driver, "target": triple,
            "pipeline": pipeline.CLANG if fallback else decision.pipeline,
            "decision": decision.source, "scores": decision.scores, "fallback": fallback,
            "model_via": decision.via, "cache": cache, "output_cache": output_cache,
            "route": route, "seconds": timings.rounded(),
            # the command's clang runs so far that its compile server's fork server ran
            "clang_forked": forks.forked if forks is not None else 0,
            "size": None if unit.emit_assembly or unit.lto else object_size(output)})


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
                _remove_stale(unit.output)
                continue
            if unit.output is not None:
                deliver(path, unit.output)
            built.append(path)
        if failure is not None:
            return failure.exit_code
        if plan.link_args is not None:
            link_args = list(plan.link_args)
            if plan.lto:
                from mlcc import lto
                links = lto.link_argvs(link_args, cmd, plan.lto, settings, tools,
                                       decide.open_cache(settings))
                chosen, link_args = lto.smallest_link(
                    links, lambda args: link(tools.clang, args, built, quiet=True))
                if settings.log:
                    record.append_log(settings.log, {
                        "path": "lto-link", "lto": plan.lto, "pipeline": chosen, "driver": cmd.driver,
                        "trials": [p for p, _ in links] if len(links) > 1 else [],
                        "cwd": os.getcwd(), "argv": list(cmd.argv), "with_sources": True})
            link(tools.clang, link_args, built)
        return 0
    except ToolFailed as exc:
        return exc.exit_code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
