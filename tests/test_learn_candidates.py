"""Candidates (mlcc/learn/candidates/): the selection, the held-out curve, the tuned
default, and which pipelines may be candidates at all (`passes.eligible`, `bounded`)."""

from __future__ import annotations

import random

from mlcc import passes
from mlcc.learn.candidates import candidates, tune_default
from mlcc.pipeline import CLANG


def test_candidate_selection_covers_the_per_unit_best():
    columns = {CLANG: [100, 100, 100], "a": [90, 100, 111], "b": [110, 95, 100], "c": [101, 100, 100]}
    result = candidates.select(columns, k_max=4, k_min=1)
    assert result["pipelines"][:3] == [CLANG, "a", "b"]
    assert result["curve"][1]["total"] == 290 and result["curve"][2]["total"] == 285
    assert result["oracle_all_pct"] == 5.0
    assert result["best_single"]["pipeline"] == CLANG  # 300 bytes against 301, 305, 301


def test_held_out_curve_scores_each_project_with_a_set_chosen_without_it():
    # "a" helps project p's units only, "b" helps q's only: a set chosen without p never
    # holds "a", so what p saves is not counted; each project is scored on its own.
    columns = {CLANG: [100, 100, 100, 100], "a": [90, 90, 100, 100], "b": [100, 100, 80, 80]}
    projects = ["p", "p", "q", "q"]
    assert candidates.held_out_curve(columns, projects, 2) == [0.0, 0.0]
    # "c" helps everywhere: chosen on q's units, it saves 10 bytes on p's; chosen on p's
    # units, "a" saves nothing on q's.
    columns = {CLANG: [100, 100, 100, 100], "a": [90, 90, 100, 100], "c": [95, 95, 95, 95]}
    assert candidates.held_out_curve(columns, projects, 2) == [0.0, 2.5]


def test_relative_cover_lets_small_units_count():
    columns = {CLANG: [1000, 10, 10], "big": [990, 10, 10], "small": [1000, 8, 8]}
    assert [p for p, _ in candidates.greedy_cover(columns, 2)] == [CLANG, "big"]
    assert [p for p, _ in candidates.greedy_cover(columns, 2, relative=True)] == [CLANG, "small"]


def test_the_tuned_default_joins_with_each_slow_pass():
    assert candidates.slow_forms("clang[no-licm]") == ["clang[no-licm,iroutliner]"]
    assert candidates.slow_forms("clang") == ["clang[iroutliner]"]
    assert candidates.slow_forms("clang[iroutliner]") == []  # already there
    assert all(passes.runs_slow(p) for p in candidates.slow_forms("clang[no-licm]"))


def test_the_default_descent_scores_like_the_models_default_and_counts_failures():
    # "steady" saves 2 % in both projects; "big-win" 3 % on a's one huge unit and
    # fails on b's; "partial" is not measured everywhere, so it is not scored.
    units = [{"project": "a", "id": "a0"}, {"project": "b", "id": "b0"}, {"project": "b", "id": "b1"}]
    by_unit = {"a0": {CLANG: 100_000, "steady": 98_000, "big-win": 97_000, "partial": 1},
               "b0": {CLANG: 1_000, "steady": 980, "big-win": None},
               "b1": {CLANG: 1_000, "steady": 980, "big-win": 1_000}}
    scored = tune_default.gains([CLANG, "steady", "big-win", "partial"], units, by_unit)
    assert scored == {CLANG: 0.0, "steady": 2.0, "big-win": -11.0}
    assert tune_default.best_of(scored) == "steady"


def test_candidates_honour_always_inline_and_leave_distrusted_passes_out():
    assert passes.eligible(CLANG) and passes.eligible("default<Oz>,function(gvn)")
    assert passes.eligible("always-inline,function(sroa),globaldce")
    assert not passes.eligible("function(sroa),globaldce")  # always_inline functions left out of line
    assert not passes.eligible("default<Oz>,function(newgvn,dce)")
    assert all(p.name not in passes.DISTRUSTED for p in passes.load_space())
    # run before inlining, it left libstdc++ references unresolved (muparser at -Os)
    assert not passes.eligible("elim-avail-extern,function(gvn-sink),clang[gvn-no-pre]")
    # `-fmlcc-search`'s edits never bring a distrusted pass in
    rng, space = random.Random(7), passes.load_space()
    pipeline = passes.editable("clang[gvn-no-pre]", "s")
    for _ in range(400):
        pipeline = passes.mutate(rng, pipeline, space, "s")
        assert passes.eligible(passes.to_opt(pipeline))


def test_slow_passes_run_only_on_units_within_the_bound():
    big, small = passes.SLOW_BOUND + 1, passes.SLOW_BOUND
    tuned = "clang[gvn-no-pre,iroutliner,machine-outliner]"
    assert passes.eligible(tuned) and passes.runs_slow(tuned)
    assert passes.bounded(tuned, small) == tuned
    assert passes.bounded(tuned, None) == tuned  # not counted: as asked
    assert passes.bounded(tuned, big) == "clang[gvn-no-pre,machine-outliner]"
    assert passes.bounded("clang[iroutliner]", big) == CLANG
    assert passes.bounded("function(jump-threading),default<Oz>,iroutliner", big) == \
        "function(jump-threading),default<Oz>"
    assert passes.bounded("clang[no-licm]", big) == "clang[no-licm]"
    assert not passes.runs_slow("clang[gvn-no-pre,machine-outliner]")


def test_relevel_swaps_clangs_pipeline_and_nothing_else():
    assert passes.relevel("function(sroa),default<Oz>,mergefunc", "s") == "function(sroa),default<Os>,mergefunc"
    assert passes.relevel(CLANG, "s") == CLANG
    assert passes.wraps_default("default<Oz>,iroutliner") and passes.wraps_default(CLANG)
    assert not passes.wraps_default("always-inline,function(sroa)")


def test_a_targets_trial_sets_and_summary_follow_the_best_per_unit():
    """tune-default's trial sets for a target without a model: greedy by the default's rule,
    each unit counted at its best of the set and clang's; the summary's metrics."""
    from mlcc.learn.candidates import tune_default as tune
    units = [{"id": f"u{i}", "project": p} for i, p in enumerate(["a", "a", "b", "b"])]
    by_unit = {"u0": {"clang": 100, "x": 90, "y": 100}, "u1": {"clang": 100, "x": 110, "y": 80},
               "u2": {"clang": 50, "x": 45, "y": 55}, "u3": {"clang": 50, "x": 50, "y": 40}}
    assert tune.trial_sets(["x", "y"], units, by_unit, 2) == [["y"], ["y", "x"]]
    single = tune.summary(tune.sizes_of(["x"], units, by_unit), units, by_unit)
    assert single["total_gain_pct"] == 1.667 and single["larger_files"] == 1
    assert single["per_project_gain_pct"] == {"a": 0.0, "b": 5.0}
    assert round(single["geomean_gain_pct"], 3) == 2.532  # 1 - sqrt(1.0 * 0.95)
    both = tune.summary(tune.sizes_of(["x", "y"], units, by_unit, with_clang=True), units, by_unit)
    assert both["total_gain_pct"] == 15.0 and both["larger_files"] == 0


def test_ship_targets_rewrites_only_a_targets_default_and_trials():
    import tomllib

    from mlcc.learn.candidates import ship_targets
    text = ('# kept\n[targets.a]\narches = ["a"]\ndefault = { z = "clang", s = "clang" }\n\n'
            '[targets.b]\narches = ["b"]\ndefault = { z = "clang", s = "clang" }\n')
    out = ship_targets.rewrite(text, "a", {"z": "clang[no-lsr]", "s": "clang"}, {"z": [["clang[no-lsr]"]]})
    parsed = tomllib.loads(out)["targets"]
    assert out.startswith("# kept\n")
    assert parsed["a"] == {"arches": ["a"], "default": {"z": "clang[no-lsr]", "s": "clang"},
                           "trials": {"z": [["clang[no-lsr]"]]}}
    assert parsed["b"] == {"arches": ["b"], "default": {"z": "clang", "s": "clang"}}
    back = tomllib.loads(ship_targets.rewrite(out, "a", {"z": "clang", "s": "clang"}, {}))["targets"]["a"]
    assert back == {"arches": ["a"], "default": {"z": "clang", "s": "clang"}}
    # the default's code generation variants go with it, and go when it goes
    varied = ship_targets.rewrite(out, "a", {"z": "clang[no-lsr]", "s": "clang"}, {},
                                  {"z": ["clang[no-lsr,no-block-placement]"]})
    assert tomllib.loads(varied)["targets"]["a"]["codegen_variants"] == {"z": ["clang[no-lsr,no-block-placement]"]}
    assert "codegen_variants" not in tomllib.loads(ship_targets.rewrite(varied, "a", {"z": "clang"}, {}))["targets"]["a"]
    ok = {"checked": {"train": {"total_gain_pct": 2.0}, "validation": {"total_gain_pct": 0.0}}}
    assert ship_targets.ships(ok)
    assert not ship_targets.ships({"checked": {"train": {"total_gain_pct": 2.0},
                                               "validation": {"total_gain_pct": -0.1}}})


def test_pruning_drops_a_knob_only_when_it_earns_nothing_in_total_and_in_project_mean():
    from mlcc.learn.candidates import prune_default

    best = "clang[no-lsr,jump-tables-16,no-block-placement]"
    without_lsr, without_jt, without_bp = ("clang[jump-tables-16,no-block-placement]",
                                           "clang[no-lsr,no-block-placement]", "clang[no-lsr,jump-tables-16]")
    assert sorted(prune_default.without_each(best)) == sorted([without_lsr, without_jt, without_bp])
    scored = {best: {"total": 3.0, "mean": 2.8},
              without_lsr: {"total": 2.5, "mean": 2.3},    # no-lsr earns its place in both
              without_jt: {"total": 3.3, "mean": 2.83},    # jump-tables-16 costs bytes: dropped
              without_bp: {"total": 2.8, "mean": 2.81}}    # no-block-placement earns 0.2 in total
    assert prune_default.free_removals(best, scored, 0.05) == [without_jt]
    assert prune_default.free_removals(best, scored, 0.3) == [without_jt, without_bp]
    assert prune_default.without_all(best, [without_jt, without_bp]) == "clang[no-lsr]"
    del scored[without_jt]
    assert prune_default.free_removals(best, scored, 0.05) == []
    assert prune_default.free_removals("clang", {"clang": {"total": 0.0, "mean": 0.0}}, 0.05) == []
    # losses are held to the tuned default's scores: 0.03 a round cannot add up
    assert prune_default.free_removals(best, scored, 0.05, {"total": 3.0, "mean": 2.8}) == []
    assert prune_default.free_removals(best, scored, 0.05, {"total": 2.79, "mean": 2.8}) == [without_bp]
