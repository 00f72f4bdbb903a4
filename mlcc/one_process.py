"""The one-process route: a unit whose decision needs nothing read from it, from its
source to its object in one clang process.

Where single-shot runs the target's default alone (x86-64 at -Oz and -Os: no model,
no code generation variants, data/targets.toml), the pipeline is known before the
front end runs, except for the bound on slow passes (`passes.bounded`), which looks
at the unit's instruction count. So one `clang -c` of the source, with mlcc's pass
plugin (mlcc/plugin/mlcc-pipeline.cpp), does it all: the front end, the default (or
its bounded form, which the plugin picks from the same count mlcc/ir_reader.py
makes), code generation with the default's knobs. The split route's front end
process and its bitcode file are gone: issue 26, "one process per optimized unit".

The output cache still works: mlcc hands the plugin the key's prefix (flags, target,
pipelines, tools) and the cache directory; the plugin hashes the prefix and the
module's bitcode at the pipeline's start, and on a stored entry empties the module,
so that a warm rebuild costs the front end alone, as on the split route. The plugin
says what it did in a small report file.

The small-unit rule (clang's pipeline for units of under `small_unit` bytes of
bitcode, mlcc/driver.py) holds here too: the plugin measures the module's bitcode at
the pipeline's start and, for a small unit, runs nothing of its own and sets the
default's code generation knobs (all `-mllvm` options, on the command line before
the unit was read) back to their defaults, so that clang's own pipeline and code
generation run: clang's object, as on the split route.

`route_for` returns None wherever the route does not apply and `build` when its clang fails; the
caller then takes the split route, which gives clang's own diagnostics for a unit
that does not compile and falls back to clang's pipeline for one the plugin cannot
build.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

from mlcc import codegen, decide, model, passes, pipeline
from mlcc.errors import ToolFailed
from mlcc.job import Timings
from mlcc.plan import FRONTEND_NO_PASSES, UnitPlan
from mlcc.process import run_tool
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain

ROUTE = "one process"


@dataclass(frozen=True)
class Route:
    """How one unit is compiled this way: the default and its bounded form (the same code
    generation knobs), what the flags target, and the plugin that runs them."""

    decision: model.Decision
    chosen: pipeline.Pipeline
    bounded: pipeline.Pipeline      # the default without its slow passes
    target_flags: tuple[str, ...]
    triple: str
    plugin: str
    undo: tuple[str, ...]           # the -mllvm options a small unit sets back to defaults


def route_for(unit: UnitPlan, opt_level: str, settings: Settings, tools: Toolchain,
              cache, tmp: str) -> Route | None:
    """The route for `unit`, or None when it must take the split route: anything that
    reads the unit to decide (a model, trials, search, variants, a profile), LTO or
    assembly output, the decision cache off, no plugin built for this clang, or clang
    failing to say what its flags target."""
    from mlcc import plugin_build

    if (not settings.one_process or not settings.plugin or cache is None
            or settings.trials or settings.search or settings.pipeline or settings.collect
            or settings.model == "none" or unit.lto or unit.emit_assembly or unit.profiled
            or not unit.whole_args
            or passes.SLOW_FUNCTION_BOUND.get(opt_level, float("inf")) != float("inf")):
        return None
    plugin = plugin_build.installed(tools.clang)
    if plugin is None:
        return None
    info = decide.cached_target_info(tools.clang, unit.codegen_args, cache) or _ask_target(
        unit, tools, cache, tmp)
    if info is None:
        return None
    target = model.target_of(info.triple)
    if (target is None or model.deciding_model(opt_level, settings, target) is not None
            or model.missing_bundled(opt_level, settings)  # the split route says so
            or (settings.codegen_variants
                and (target.variants(opt_level) or target.also_built(opt_level)))):
        return None
    default = target.default(opt_level)
    if default == pipeline.CLANG or pipeline.names_plugin_pass(default):
        return None
    chosen = pipeline.parse(default, info.clang_pipeline, unit.codegen_args)
    bounded = pipeline.parse(passes.bounded(default, passes.SLOW_BOUND + 1), info.clang_pipeline,
                             unit.codegen_args)
    if bounded.codegen_args != chosen.codegen_args:  # one command line serves both
        return None
    undo = llvm_options(chosen.codegen_args)
    if undo is None and settings.small_unit > 0:  # a knob the plugin cannot take back
        return None
    decision = model.Decision(default, f"{target.name} default (its model ranks only trials and "
                              "search), one process")
    return Route(decision, chosen, bounded, info.flags, info.triple, plugin, undo or ())


def llvm_options(codegen_args) -> tuple[str, ...] | None:
    """The names of the options `codegen_args` gives LLVM (`-mllvm -name=value` pairs),
    or None when it gives clang anything else."""
    args = list(codegen_args)
    if len(args) % 2 or any(flag != "-mllvm" for flag in args[::2]):
        return None
    return tuple(option.lstrip("-").split("=", 1)[0] for option in args[1::2])


def _ask_target(unit: UnitPlan, tools: Toolchain, cache, tmp: str) -> decide.TargetInfo | None:
    """`decide.target_info` for the unit's flags, asked with the bitcode of an empty source
    in the unit's language (what clang says depends on the flags alone), and remembered
    for the build's other units; None when clang refuses. Warnings are off for the empty
    source: `-pedantic -Werror` would make an error of its emptiness."""
    probe = os.path.join(tmp, "target-probe.bc")
    try:
        run_tool([tools.clang, *unit.codegen_args, "-w", "-x", unit.language, os.devnull,
                  *FRONTEND_NO_PASSES, "-emit-llvm", "-c", "-o", probe], capture_stderr=True)
        return decide.target_info(tools.clang, unit.codegen_args, probe, cache)
    except ToolFailed:
        return None


@dataclass(frozen=True)
class Compiled:
    """What the route gave: the object in the private directory, clang's stderr, the
    decision that ran (the default, its bounded form, or clang's pipeline for a small
    unit) and the output cache's note."""

    output: str
    diagnostics: str
    decision: model.Decision
    output_cache: str   # "hit", "miss" or "off"


def build(route: Route, unit: UnitPlan, opt_level: str, settings: Settings, tools: Toolchain,
          cache, tmp: str, stem: str, timings: Timings) -> Compiled | None:
    """`unit` from its source in one clang process, or from the output cache (the
    decision cache's, `cache`); None when that clang fails (the split route then
    compiles the unit and speaks for it)."""
    from mlcc.cache import make_text_key
    from mlcc.output_cache import OutputCache, tool_identity

    chosen, bounded = route.chosen, route.bounded
    output, report = os.path.join(tmp, f"{stem}.o"), os.path.join(tmp, f"{stem}.report")
    prefix = make_text_key(ROUTE, unit.codegen_args, route.target_flags, opt_level,
                           chosen.passes, bounded.passes, passes.SLOW_BOUND, chosen.codegen_args,
                           settings.small_unit, tool_identity(tools.clang, route.plugin),
                           sys.stderr.isatty())
    env = dict(os.environ, MLCC_PLUGIN_PASSES=codegen.plugin_passes(chosen.passes),
               MLCC_PLUGIN_PASSES_BOUNDED=codegen.plugin_passes(bounded.passes),
               MLCC_PLUGIN_SLOW_BOUND=str(passes.SLOW_BOUND), MLCC_PLUGIN_REPORT=report,
               MLCC_PLUGIN_KEY_PREFIX=prefix, MLCC_PLUGIN_CACHE_DIR=str(cache.directory))
    if settings.small_unit > 0:
        env.update(MLCC_PLUGIN_SMALL_UNIT=str(settings.small_unit),
                   MLCC_PLUGIN_SMALL_UNDO=",".join(route.undo))
    args = [*unit.whole_args, *chosen.codegen_args, f"-fpass-plugin={route.plugin}"]
    argv = [tools.clang, *args, *codegen.terminal_args(args), "-o", output, unit.source]

    def run(env) -> tuple[str, dict[str, str]] | None:
        try:
            with timings.stage("whole"):
                proc = run_tool(argv, timeout=settings.timeout, capture_stderr=True, env=env)
            said = codegen.plugin_report(report)
        except (ToolFailed, OSError, ValueError):
            return None
        return (proc.stderr.decode(errors="replace") if proc.stderr else ""), said

    done = run(env)
    if done is None:
        return None
    diagnostics, said = done
    if said.get("small") == "1":
        ran = model.SMALL_UNIT
    else:
        ran = replace(route.decision, pipeline=(bounded if said.get("bounded") == "1" else chosen).name)
    key = said.get("key")
    if not key:  # the plugin did not probe: nothing to look up or keep
        return Compiled(output, diagnostics, ran, "off")
    outputs = OutputCache(cache)
    if said.get("hit") == "1":
        stored = outputs.fetch(key, output)
        if stored == diagnostics:
            return Compiled(output, diagnostics, ran, "hit")
        # the stored object went missing or bad, or the compile that stored it printed
        # more than this one's front end did (code generation's own warnings, which an
        # emptied module cannot give again): built again, its entry dropped so that the
        # next compile stores it afresh
        cache.remove(key)
        env = {k: v for k, v in env.items() if k != "MLCC_PLUGIN_KEY_PREFIX"}
        done = run(env)
        if done is None:
            return None
        return Compiled(output, done[0], ran, "miss")
    outputs.store(key, output, diagnostics)
    return Compiled(output, diagnostics, ran, "miss")
