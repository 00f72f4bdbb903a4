"""Which pipeline a unit gets: the decision cache first, else the model
(and trials or search when asked), remembered in the cache afterwards."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from mlcc import codegen, model, model_server, pipeline
from mlcc.cache import open_cache  # noqa: F401 (the driver's door to the cache)
from mlcc.job import UnitJob
from mlcc.settings import Settings
from mlcc.trials import Built, UnitBuilder, search_start, trial_pipelines


@dataclass(frozen=True)
class TargetInfo:
    """What clang says about a unit's flags: the target options it would give its
    optimizer (as opt flags), its own pipeline in opt's syntax, and the target triple."""

    flags: tuple[str, ...]
    clang_pipeline: str
    triple: str


def target_info(clang: str, codegen_args, bitcode: str, cache) -> TargetInfo:
    """Asked of `clang` once per (clang, flags, directory) and remembered in `cache` (if any)."""
    known = cached_target_info(clang, codegen_args, cache)
    if known is not None:
        return known
    cc1 = codegen.cc1_line(clang, codegen_args, bitcode)
    info = TargetInfo(codegen.optimizer_target_flags(cc1),
                      codegen.clang_pipeline_text(clang, codegen_args, bitcode), codegen.triple(cc1))
    if cache is not None:
        cache.put(_target_info_key(clang, codegen_args),
                  {"target_flags": list(info.flags), "clang_pipeline": info.clang_pipeline,
                   "triple": info.triple})
    return info


def cached_target_info(clang: str, codegen_args, cache) -> TargetInfo | None:
    """What `target_info` remembered for these flags in this directory, or None."""
    if cache is None:
        return None
    entry = cache.get(_target_info_key(clang, codegen_args))
    if (entry is not None and isinstance(entry.get("target_flags"), list)
            and isinstance(entry.get("clang_pipeline"), str)
            and isinstance(entry.get("triple"), str)):
        return TargetInfo(tuple(entry["target_flags"]), entry["clang_pipeline"], entry["triple"])
    return None


def _target_info_key(clang: str, codegen_args) -> str:
    from mlcc.cache import make_text_key
    st = os.stat(clang)
    return make_text_key("target-info", clang, st.st_size, st.st_mtime_ns, os.getcwd(), codegen_args)


def decision_key(job: UnitJob) -> str | None:
    """Everything that decides a unit's pipeline: its bitcode, flags, model and settings;
    None when the cache is off."""
    if job.cache is None:
        return None
    from mlcc.cache import make_key

    settings = job.settings
    identity = model.identity_for(job.opt_level, settings, job.triple)
    return make_key(job.bitcode, job.plan.codegen_args, job.target_flags,
                    identity, settings.trials, settings.search, settings.pipeline, job.opt_level,
                    *_extra_builds(job))


def _extra_builds(job: UnitJob) -> tuple[str, ...]:
    """What single-shot builds beside the target's default, unless the settings turn
    that off: its code generation variants, then the other pipelines it names (`also`)."""
    if not job.settings.codegen_variants:
        return ()
    target = model.target_of(job.triple)
    return (*target.variants(job.opt_level), *target.also_built(job.opt_level)) if target is not None else ()


def single_shot_builds(decision: model.Decision, job: UnitJob) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What single-shot builds beside `decision` when it is the unit's target's default
    (data/targets.toml): the default's code generation variants (`codegen_variants`,
    built from its one opt run, as its slow passes were bounded for this unit) and
    other pipelines (`also`: clang's own on the cross targets, so that no object is
    larger than clang's); ((), ()) otherwise, or when the settings turn them off."""
    if not _extra_builds(job):
        return (), ()
    target = model.target_of(job.triple)
    default = target.default(job.opt_level)
    variants = target.variants(job.opt_level)
    if decision.slow_size is not None:
        from mlcc import passes
        default = passes.bounded(default, decision.slow_size)
        variants = tuple(passes.bounded(v, decision.slow_size) for v in variants)
    if decision.pipeline != default:
        return (), ()
    return variants, tuple(p for p in target.also_built(job.opt_level) if p != default)


def _builds_note(built: int, left_out: int, also: tuple[str, ...]) -> str:
    """The decision's note on single-shot's extra builds, for the log."""
    unchanged = f" ({left_out} left out: no loop or switch they act on)" if left_out else ""
    if not also:
        return f", smallest of {built} code generations{unchanged}"
    others = " and ".join("clang's pipeline" if p == pipeline.CLANG else p for p in also)
    return f", smallest of {built} builds: the default's code generations{unchanged} and {others}"


def _reused_note(builder: UnitBuilder) -> str:
    """The decision's note on builds that optimized the unit to an earlier one's module
    and took its object (`UnitBuilder._once`), for the log."""
    return f" ({builder.reused} optimized to an earlier build's module)" if builder.reused else ""


def decide(job: UnitJob, builder: UnitBuilder,
           key: str | None) -> tuple[model.Decision, Built | None, str]:
    """The pipeline for a unit: from the cache under `key`, else the model (and trials or
    search, built with `builder`); returns (decision, what trials or search built or None,
    cache note)."""
    settings, cache = job.settings, job.cache
    if cache is not None:
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("pipeline"), str):
            return model.Decision(entry["pipeline"], "cache", scores=entry.get("scores", {})), None, "hit"
    with job.timings.stage("model"):
        decision = model_server.choose(job.bitcode, job.opt_level, settings, job.triple)
    built = None
    sizes = {}
    if settings.search and not settings.pipeline:
        built, sizes = builder.search(search_start(decision), settings.search, decision.slow_size)
        decision = model.Decision(built.pipeline.name,
                                  decision.source + f", search of {len(sizes)}" + _reused_note(builder),
                                  decision.ranked, decision.scores, decision.via)
    elif settings.trials and not settings.pipeline:
        names = trial_pipelines(decision, settings.trials)
        variants, also = single_shot_builds(decision, job) if not job.plan.lto else ((), ())
        if variants or also:
            # trials keep at least what single-shot would: its default and the default's
            # code generation variants are built too (one more opt run), and the default
            # wins ties with what trials build after it
            trials = [job.pipeline(n) for n in dict.fromkeys((*names, *also)) if n != decision.pipeline]
            built, sizes, _ = builder.best_generation(
                job.pipeline(decision.pipeline), [job.pipeline(v) for v in variants], trials)
            note = f", best of {len(sizes)} builds: {len(trials)} trials and single-shot's"
        else:
            built, sizes = builder.best_of([job.pipeline(name) for name in names])
            note = f", best of {len(sizes)} trials"
        decision = model.Decision(built.pipeline.name, decision.source + note + _reused_note(builder),
                                  decision.ranked, decision.scores, decision.via)
    elif not settings.pipeline and not job.plan.lto and any(extra := single_shot_builds(decision, job)):
        variants, also = extra
        built, sizes, left_out = builder.best_generation(
            job.pipeline(decision.pipeline), [job.pipeline(name) for name in variants],
            [job.pipeline(name) for name in also])
        decision = replace(decision, pipeline=built.pipeline.name,
                           source=decision.source + _builds_note(len(sizes), left_out, also))
    if cache is not None:
        cache.put(key, {"pipeline": decision.pipeline, "source": decision.source,
                        "scores": decision.scores, "trial_sizes": sizes})
    return decision, built, "miss" if cache is not None else "off"
