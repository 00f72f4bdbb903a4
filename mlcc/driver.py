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
import time

from mlcc import codegen, decide, frontend, model, pipeline, record
from mlcc.args import Command
from mlcc.errors import MlccError, OutputClosed, ToolchainMissing, ToolFailed
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
    """A single-shot build of a unit whose bitcode is under `settings.small_unit` bytes:
    about half of all units, holding about 1% of what the candidates can save (docs/DESIGN.md)."""
    return (settings.small_unit > 0 and not (settings.trials or settings.search or settings.pipeline)
            and os.path.getsize(bitcode) < settings.small_unit)


def _with_clangs_pipeline(unit: UnitPlan, tools: Toolchain, bitcode: str,
                          output: str) -> tuple[str, float, bool]:
    """clang's own pipeline and code generation from the bitcode in one clang process
    (the same bytes as `clang -c` on the source); returns (diagnostics, seconds, whether
    clang compiled the source instead).

    If that fails, clang alone compiles the source and decides: from bitcode, code
    generation knows neither the source lines its diagnostics point at (inline
    assembly, `__attribute__((warning))`) nor the `#pragma clang diagnostic` that
    silences them, so its error may be one clang would not give, or worse worded.
    """
    start = time.perf_counter()
    try:
        diagnostics = codegen.generate(tools.clang, unit, bitcode, output, clang_passes=True)
    except ToolFailed:
        if not unit.whole_args:  # bitcode only (the learning side): nothing to fall back on
            raise
        frontend.compile_whole(tools.clang, unit, output)  # its diagnostics stream through
        return "", time.perf_counter() - start, True
    return diagnostics, time.perf_counter() - start, False


def _optimize_unit(unit: UnitPlan, cmd: Command, tools: Toolchain, settings: Settings, tmp: str,
                   stem: str, bitcode: str, times: dict):
    """Decide, run opt, generate code; if a tool fails, clang's own pipeline with a warning.
    Returns (output, diagnostics, decision, fallback reason or None, cache notes)."""
    fallback = None
    decision = model.Decision(pipeline.CLANG, "clang-default")
    notes = {"cache": "off", "output_cache": "off"}
    builder = None
    try:
        start = time.perf_counter()
        target_flags, clang_text = decide.target_info(tools, unit, bitcode, settings)
        times["target"] = time.perf_counter() - start
        builder = UnitBuilder(unit, tools, settings, tmp, stem, bitcode, target_flags,
                              cmd.opt_level, clang_text,
                              timeout=stage_timeout(settings, times["frontend"]))
        cache = decide.open_cache(settings)
        key = decide.decision_key(builder, cmd, settings) if cache is not None else None
        decision, built, notes["cache"] = decide.decide(builder, cmd, settings, times, cache, key)

        def build() -> tuple[str, str]:
            done = built or builder.build(decision.pipeline)
            return done.output, done.diagnostics

        if key is not None:
            key = output_key(key, decision.pipeline, tool_identity(tools.clang, tools.opt),
                             unit.emit_assembly)
        output, diagnostics, notes["output_cache"] = fetch_or_build(
            cache, key, os.path.join(tmp, stem + ".cached" + _suffix(unit)), build)
    except (ToolFailed, ToolchainMissing) as exc:
        fallback = str(exc)
        output = os.path.join(tmp, f"{stem}.fallback" + _suffix(unit))
        diagnostics, times["fallback"], from_source = _with_clangs_pipeline(unit, tools, bitcode, output)
        if not from_source:  # else the unit, not mlcc's pipeline, failed: clang has spoken
            print(f"mlcc: warning: {fallback}; compiled {unit.source} with clang's own pipeline",
                  file=sys.stderr)
    if builder is not None:
        times.update(builder.times)
    return output, diagnostics, decision, fallback, notes


def _suffix(unit: UnitPlan) -> str:
    return ".s" if unit.emit_assembly else ".o"


def _small_unit_output(unit: UnitPlan, cmd: Command, tools: Toolchain, settings: Settings,
                       tmp: str, stem: str, bitcode: str, times: dict) -> tuple[str, str, str]:
    """A small unit through clang's pipeline in one clang process, or from the output cache.
    Returns (output, diagnostics, output cache note)."""
    cache = decide.open_cache(settings)
    key = None
    if cache is not None:
        from mlcc.cache import make_key
        key = output_key(make_key(bitcode, "small unit", unit.codegen_args, cmd.opt_level),
                         pipeline.CLANG, tool_identity(tools.clang), unit.emit_assembly)
    output = os.path.join(tmp, stem + _suffix(unit))

    def build() -> tuple[str, str]:
        diagnostics, times["codegen"], _ = _with_clangs_pipeline(unit, tools, bitcode, output)
        return output, diagnostics

    return fetch_or_build(cache, key, os.path.join(tmp, stem + ".cached" + _suffix(unit)), build)


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

    if _small_unit(bitcode, settings):
        output, diagnostics, output_note = _small_unit_output(
            unit, cmd, tools, settings, tmp, stem, bitcode, times)
        decision = model.Decision(pipeline.CLANG, "clang-default: small unit")
        fallback, notes = None, {"cache": "off", "output_cache": output_note}
    else:
        output, diagnostics, decision, fallback, notes = _optimize_unit(
            unit, cmd, tools, settings, tmp, stem, bitcode, times)
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
            "pipeline": decision.pipeline if not fallback else pipeline.CLANG,
            "decision": decision.source, "scores": decision.scores, "fallback": fallback,
            "model_via": decision.via,
            **notes, "seconds": {k: round(v, 4) for k, v in times.items()},
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
                _remove_stale(unit.output)
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
