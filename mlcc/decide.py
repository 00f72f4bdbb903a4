"""Which pipeline a unit gets: the decision cache first, else the model
(and trials or search when asked), remembered in the cache afterwards."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from mlcc import codegen, model, model_server
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
    from mlcc.cache import make_text_key

    if cache is not None:
        st = os.stat(clang)
        key = make_text_key("target-info", clang, st.st_size, st.st_mtime_ns,
                            os.getcwd(), codegen_args)
        entry = cache.get(key)
        if (entry is not None and isinstance(entry.get("target_flags"), list)
                and isinstance(entry.get("clang_pipeline"), str)
                and isinstance(entry.get("triple"), str)):
            return TargetInfo(tuple(entry["target_flags"]), entry["clang_pipeline"], entry["triple"])
    cc1 = codegen.cc1_line(clang, codegen_args, bitcode)
    info = TargetInfo(codegen.optimizer_target_flags(cc1),
                      codegen.clang_pipeline_text(clang, codegen_args, bitcode), codegen.triple(cc1))
    if cache is not None:
        cache.put(key, {"target_flags": list(info.flags), "clang_pipeline": info.clang_pipeline,
                        "triple": info.triple})
    return info


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
                    *_target_variants(job))


def _target_variants(job: UnitJob) -> tuple[str, ...]:
    """The unit's target's code generation variants, unless the settings turn them off."""
    if not job.settings.codegen_variants:
        return ()
    target = model.target_of(job.triple)
    return target.variants(job.opt_level) if target is not None else ()


def codegen_variants(decision: model.Decision, job: UnitJob) -> tuple[str, ...]:
    """The target's code generation variants of its default (`codegen_variants` in
    data/targets.toml) when `decision` is that default: built from its one opt run, as
    its slow passes were bounded for this unit; () otherwise."""
    variants = _target_variants(job)
    if not variants:
        return ()
    default = model.target_of(job.triple).default(job.opt_level)
    if decision.instructions is not None:
        from mlcc import passes
        default = passes.bounded(default, decision.instructions)
        variants = tuple(passes.bounded(v, decision.instructions) for v in variants)
    return variants if decision.pipeline == default else ()


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
        built, sizes = builder.search(search_start(decision), settings.search, decision.instructions)
        decision = model.Decision(built.pipeline.name, decision.source + f", search of {len(sizes)}",
                                  decision.ranked, decision.scores, decision.via)
    elif settings.trials and not settings.pipeline:
        trials = [job.pipeline(name) for name in trial_pipelines(decision, settings.trials)]
        built, sizes = builder.best_of(trials)
        decision = model.Decision(built.pipeline.name, decision.source + f", best of {len(sizes)} trials",
                                  decision.ranked, decision.scores, decision.via)
    elif not settings.pipeline and not job.plan.lto and (variants := codegen_variants(decision, job)):
        built, sizes, left_out = builder.best_generation(
            job.pipeline(decision.pipeline), [job.pipeline(name) for name in variants])
        unchanged = f" ({left_out} left out: no loop or switch they act on)" if left_out else ""
        decision = replace(decision, pipeline=built.pipeline.name,
                           source=decision.source + f", smallest of {len(sizes)} code generations{unchanged}")
    if cache is not None:
        cache.put(key, {"pipeline": decision.pipeline, "source": decision.source,
                        "scores": decision.scores, "trial_sizes": sizes})
    return decision, built, "miss" if cache is not None else "off"
