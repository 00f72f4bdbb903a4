"""Which pipeline a unit gets: the decision cache first, else the model
(and trials or search when asked), remembered in the cache afterwards."""

from __future__ import annotations

import os
import time

from mlcc import codegen, model, model_server
from mlcc.args import Command
from mlcc.plan import UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain
from mlcc.trials import UnitBuilder, search_start, trial_pipelines


def target_info(tools: Toolchain, unit: UnitPlan, bitcode: str, settings: Settings):
    """(opt flags, clang's own pipeline text) for this unit's flags, asked of clang once
    per (clang, flags, directory) and remembered in the cache."""
    from mlcc.cache import make_text_key

    cache = open_cache(settings)
    if cache is not None:
        st = os.stat(tools.clang)
        key = make_text_key("target-info", tools.clang, st.st_size, st.st_mtime_ns,
                            os.getcwd(), unit.codegen_args)
        entry = cache.get(key)
        if (entry is not None and isinstance(entry.get("target_flags"), list)
                and isinstance(entry.get("clang_pipeline"), str)):
            return tuple(entry["target_flags"]), entry["clang_pipeline"]
    flags = codegen.optimizer_target_flags(tools.clang, unit.codegen_args, bitcode)
    text = codegen.clang_pipeline_text(tools.clang, unit.codegen_args, bitcode)
    if cache is not None:
        cache.put(key, {"target_flags": list(flags), "clang_pipeline": text})
    return flags, text


def open_cache(settings: Settings):
    """The decision cache, or None when turned off."""
    if settings.no_cache:
        return None
    from mlcc.cache import DecisionCache
    return DecisionCache(settings.cache or None)


def decision_key(builder: UnitBuilder, cmd: Command, settings: Settings) -> str:
    """Everything that decides a unit's pipeline: its bitcode, flags, model and settings."""
    from mlcc.cache import make_key

    identity = model.identity_for(cmd.opt_level, settings)
    return make_key(builder.bitcode, builder.unit.codegen_args, builder.target_flags,
                    identity, settings.trials, settings.search, settings.pipeline, cmd.opt_level)


def decide(builder: UnitBuilder, cmd: Command, settings: Settings, times: dict, cache, key):
    """The pipeline for a unit: from the cache, else the model (and trials); returns
    (decision, built or None, cache note)."""
    if cache is not None:
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("pipeline"), str):
            return model.Decision(entry["pipeline"], "cache", scores=entry.get("scores", {})), None, "hit"
    start = time.perf_counter()
    decision = model_server.choose(builder.bitcode, cmd.opt_level, settings)
    times["model"] = time.perf_counter() - start
    built = None
    sizes = {}
    if settings.search and not settings.pipeline:
        start = search_start(decision, cmd.opt_level)
        built, sizes = builder.search(start, settings.search, decision.instructions)
        decision = model.Decision(built.pipeline, decision.source + f", search of {len(sizes)}",
                                  decision.ranked, decision.scores, decision.via)
    elif settings.trials and not settings.pipeline:
        built, sizes = builder.best_of(trial_pipelines(decision, cmd.opt_level, settings.trials))
        decision = model.Decision(built.pipeline, decision.source + f", best of {len(sizes)} trials",
                                  decision.ranked, decision.scores, decision.via)
    if cache is not None:
        cache.put(key, {"pipeline": decision.pipeline, "source": decision.source,
                        "scores": decision.scores, "trial_sizes": sizes})
    return decision, built, "miss" if cache is not None else "off"
