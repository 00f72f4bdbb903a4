"""The learning side's pure steps: candidate selection, hold-out split, default K, search budget,
mined finds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import mlcc_env

from mlcc import passes
from mlcc.learn import measure, retrain
from mlcc.learn.candidates import candidates
from mlcc.learn.check import triage
from mlcc.learn.report import report
from mlcc.learn.search import budget, mine, search
from mlcc.pipeline import CLANG


def test_candidate_selection_covers_the_per_unit_best():
    columns = {CLANG: [100, 100, 100], "a": [90, 100, 111], "b": [110, 95, 100], "c": [101, 100, 100]}
    result = candidates.select(columns, k_max=4, k_min=1)
    assert result["pipelines"][:3] == [CLANG, "a", "b"]
    assert result["curve"][1]["total"] == 290 and result["curve"][2]["total"] == 285
    assert result["oracle_all_pct"] == 5.0
    assert result["best_single"]["pipeline"] == CLANG  # 300 bytes against 301, 305, 301


def test_held_out_share_is_exact_and_stable():
    units = [{"id": f"u{i:03}"} for i in range(50)]
    held = retrain.held_out(units, 0.2)
    assert len(held) == 10
    assert held == retrain.held_out(list(reversed(units)), 0.2)
    assert retrain.held_out(units, 0.0) == set()


def test_default_k_stops_before_the_first_small_trial():
    trials = {k: {"train": {"total": t}} for k, t in {1: 1.6, 2: 1.8, 3: 1.95, 4: 2.0, 5: 2.5}.items()}
    assert report.default_k(trials) == 3
    assert report.default_k({1: {"train": {"total": 0.05}}}) == 0


def test_budget_summary_is_the_best_of_each_prefix():
    rows = [{"unit": "x", "project": "p", "clang": 100, "sizes": [100, None, 96, 99, 90]},
            {"unit": "y", "project": "q", "clang": 100, "sizes": [100, 100, 100, 98, 98]}]
    summary = budget.summarize(rows, budgets=(1, 3, 5))
    assert summary["total_gain_pct"] == {"1": 0.0, "3": 2.0, "5": 6.0}
    assert summary["projects"] == ["p", "q"] and summary["clang_bytes"] == 200


def test_every_unit_section_names_trials_within_the_start_list_and_search_after(tmp_path, monkeypatch):
    rows = [{"unit": "x", "project": "p", "clang": 100, "clang_data": 40, "starts": 3,
             "sizes": [100, 97, 95, 90, 80]},
            {"unit": "y", "project": "q", "clang": 300, "clang_data": 0, "starts": 3,
             "sizes": [300, 303, 294, 294, 294]}]
    results = tmp_path / "all.json"
    results.write_text(json.dumps({"long_budget": 5, "model": "m",
                                   **budget.summarize(rows, budgets=(2, 3, 5)), "rows": rows}))
    monkeypatch.setattr(budget, "RESULTS_ALL", results)
    text = "\n".join(report.every_unit_section("m"))
    # the model's top K: what trials built before the trial sets
    assert "| 2 | clang's and the model's top 1 (trials before the trial sets) | 0.75% |" in text  # 3 of 400 bytes
    assert "| 3 | clang's and the model's top 2 (trials before the trial sets) | 2.75% |" in text
    assert "| 5 | `-fmlcc-search=5` | 6.50% |" in text
    assert "10% of them initialized data" in text
    assert "| p | 1 | 100 (25%) | 40% |" in text
    assert "K = 4 saves 7.22% and N = 5 7.22%" in text   # 26 of the 360 bytes that are not data


def test_a_mined_find_must_beat_the_whole_start_list():
    one, two, three = "default<Oz>,function(gvn)", "default<Oz>,function(sroa)", "clang[no-licm]"
    sizes = {CLANG: 100, "cand": 95, "default<Oz>": 96, one: 93, two: 94, "default<Oz>,function(dse)": None,
             three: 91, "function(newgvn),default<Oz>": 80}
    finds = mine.best_finds(sizes, {CLANG, "cand"}, count=2)
    assert finds == [[three, 91], [one, 93]]  # the distrusted pass is never a find
    assert mine.best_finds({CLANG: 100, "a": 100}, {CLANG}) == []
    assert mine.best_finds({"x": 90}, {CLANG}) == []  # nothing of the start list measured


def test_the_tuned_default_joins_with_each_slow_pass():
    assert candidates.slow_forms("clang[no-licm]") == ["clang[no-licm,iroutliner]"]
    assert candidates.slow_forms("clang") == ["clang[iroutliner]"]
    assert candidates.slow_forms("clang[iroutliner]") == []  # already there
    assert all(passes.runs_slow(p) for p in candidates.slow_forms("clang[no-licm]"))


def test_mined_winners_rank_by_bytes_saved_and_summary_counts_them():
    rows = [{"unit": "u", "clang": 200, "best_candidate": 190, "finds": [["a", 180], ["b", 185]]},
            {"unit": "v", "clang": 100, "best_candidate": 100, "finds": [["b", 90]]},
            {"unit": "w", "clang": 50, "best_candidate": 50, "finds": []}]
    assert mine.winners(rows, 5) == ["b", "a"]  # b saved 5 + 10 bytes, a 10
    assert mine.winners(rows, 1) == ["b"]
    summary = mine.summarize(rows)
    assert summary["clang_bytes"] == 350 and summary["units"] == 3
    assert summary["candidates_gain_pct"] == round(100 * 10 / 350, 3)
    assert summary["search_gain_pct"] == round(100 * 30 / 350, 3)


def test_resuming_a_unit_measures_only_what_is_missing():
    shared = ["clang", "p1", "p2"]
    assert search.work_left({}, shared, 4) == (True, 4)
    assert search.work_left({"clang": 1, "p1": 1, "p2": 1}, shared, 0) == (False, 0)
    assert search.work_left({"clang": 1, "p1": 1, "p2": 1, "g1": 1}, shared, 4) == (True, 3)
    done = {"clang": 1, "p1": 1, "p2": 1, "g1": 1, "g2": 1, "g3": 1, "g4": 1}
    assert search.work_left(done, shared, 4) == (False, 0)
    assert search.work_left({"clang": 1, "p1": 1}, shared, 0) == (True, 0)


def test_a_larger_sample_extends_the_stored_one(tmp_path):
    manifest = {"units": [{"id": f"{p}{i}", "project": p, "split": "train", "bitcode_bytes": 5000}
                          for p in "abc" for i in range(6)]}
    path = tmp_path / "sample.json"
    first = [u["id"] for u in search.stored_sample(path, manifest, 4, 0, 10_000)]
    more = [u["id"] for u in search.stored_sample(path, manifest, 9, 0, 10_000)]
    assert more[:4] == first and len(set(more)) == 9
    assert {i[0] for i in more} == {"a", "b", "c"}
    # The corpus grows: the stored sample stays what it was.
    manifest["units"].append({"id": "a9", "project": "a", "split": "train", "bitcode_bytes": 5000})
    assert [u["id"] for u in search.stored_sample(path, manifest, 9, 0, 10_000)] == more


def test_candidates_honour_always_inline_and_leave_distrusted_passes_out():
    from mlcc import passes
    assert passes.eligible(CLANG) and passes.eligible("default<Oz>,function(gvn)")
    assert passes.eligible("always-inline,function(sroa),globaldce")
    assert not passes.eligible("function(sroa),globaldce")  # always_inline functions left out of line
    assert not passes.eligible("default<Oz>,function(newgvn,dce)")
    assert all(p.name not in passes.DISTRUSTED for p in passes.load_space())
    # run before inlining, it left libstdc++ references unresolved (muparser at -Os)
    assert not passes.eligible("elim-avail-extern,function(gvn-sink),clang[gvn-no-pre]")
    # `-fmlcc-search`'s edits never bring a distrusted pass in
    import random
    rng, space = random.Random(7), passes.load_space()
    pipeline = passes.editable("clang[gvn-no-pre]", "s")
    for _ in range(400):
        pipeline = passes.mutate(rng, pipeline, space, "s")
        assert passes.eligible(passes.to_opt(pipeline))


def test_slow_passes_run_only_on_units_within_the_bound():
    from mlcc import passes
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


def test_the_learning_side_counts_what_mlcc_runs_on_units_over_the_bound():
    from mlcc import passes
    fast, slow, big = "clang[no-licm]", "clang[no-licm,iroutliner]", passes.SLOW_BOUND + 1
    sizes = {CLANG: 100, fast: 90, slow: 80}
    assert search.as_run(sizes, passes.SLOW_BOUND) == sizes
    assert search.as_run(sizes, big) == {CLANG: 100, fast: 90, slow: 90}
    assert search.as_run({CLANG: 100, slow: 80}, big) == {CLANG: 100}  # what runs: not measured yet
    assert search.bounded_pipelines([CLANG, slow, fast], big) == [CLANG, fast]
    assert search.bounded_pipelines([CLANG, slow, fast], 10) == [CLANG, slow, fast]


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


def test_relevel_swaps_clangs_pipeline_and_nothing_else():
    assert passes.relevel("function(sroa),default<Oz>,mergefunc", "s") == "function(sroa),default<Os>,mergefunc"
    assert passes.relevel(CLANG, "s") == CLANG
    assert passes.wraps_default("default<Oz>,iroutliner") and passes.wraps_default(CLANG)
    assert not passes.wraps_default("always-inline,function(sroa)")


def test_the_os_front_end_is_the_oz_one_without_minsize(tmp_path):
    """An -Oz unit rerun at -Os: same IR but for `minsize`, and no dependency file written."""
    from mlcc.learn.corpus import level as corpus_level
    from mlcc.process import run_tool
    from mlcc.toolchain import find

    build = tmp_path / "build"
    build.mkdir()
    (build / "a.c").write_text("int twice(int x) { return 2 * x; }\nint main(void) { return twice(3); }\n")
    argv = ["-Oz", "-Wp,-DSEVEN=7", "-MD", "-MF", "a.d", "-c", "a.c", "-o", "a.o"]
    oz = tmp_path / "oz"
    oz.mkdir()
    clang = find("clang")
    run_tool([clang, "-Oz", "-Wp,-DSEVEN=7", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
              "a.c", "-o", str(oz / "u1.bc")], cwd=build)
    (oz / "u1.json").write_text(json.dumps({
        "id": "u1", "argv": argv, "codegen_args": ["-Oz", "-Wno-unused-command-line-argument"],
        "cwd": str(build), "driver": "c", "language": "c", "opt_level": "z",
        "source": str(build / "a.c")}))
    command = corpus_level.frontend_command(json.loads((oz / "u1.json").read_text()), "s")
    assert "-Os" in command and "-Oz" not in command and "-Wp,-DSEVEN=7" in command
    assert not {"-MD", "-MF", "a.d"} & set(command)

    assert corpus_level.derive_unit((str(oz), str(tmp_path / "os"), "u1", "s")) is None
    meta = json.loads((tmp_path / "os" / "u1.json").read_text())
    assert meta["opt_level"] == "s" and meta["codegen_args"][0] == "-Os" and meta["argv"][0] == "-Os"
    assert not (build / "a.d").exists()

    def ir(path):
        text = run_tool([find("opt"), "-S", str(path), "-o", "-"], capture_stdout=True).stdout.decode()
        return [line for line in text.splitlines() if not line.startswith("; ModuleID")]
    derived, original = ir(tmp_path / "os" / "u1.bc"), ir(oz / "u1.bc")
    assert not any("minsize" in line for line in derived)
    assert any("minsize" in line for line in original)
    assert [line.replace("minsize ", "") for line in original] == derived


def test_project_rows_weigh_each_project_by_its_bytes():
    import numpy as np

    from mlcc.learn.train import train
    data = train.Dataset(units=[{"project": "big"}, {"project": "big"}, {"project": "small"}],
                         X=np.zeros((3, 1)), R=np.array([[1.0, 0.9], [1.0, 1.0], [1.0, 0.5]]),
                         clang=np.array([500, 500, 100]), candidates=[CLANG, "a"])
    header, _, big, small = report.project_rows(data, chosen=np.array([1, 1, 0]), fixed=0)
    assert big == "| big | 2 | 1,000 (91%) | 5.00% | 0.00% | 5.00% |"
    assert small == "| small | 1 | 100 (9%) | 0.00% | 0.00% | 50.00% |"


def test_the_default_is_best_on_average_over_projects_not_on_one_huge_unit():
    import numpy as np

    from mlcc.learn.train import train

    # project a: one huge unit that only "big-win" shrinks; projects b and c: "steady"
    # saves 2 % everywhere, "big-win" nothing; a free pipeline (passes around clang's)
    # saves 3 % everywhere.
    steady, big_win, free = "clang[no-licm]", "clang[mergefunc]", "function(sroa),clang[no-licm]"
    units = [{"project": p, "id": f"{p}{i}"} for p, i in (("a", 0), ("b", 0), ("b", 1), ("c", 0))]
    clang = np.array([100_000.0, 1_000.0, 1_000.0, 1_000.0])
    R = np.array([[1.0, 0.99, 0.97, 0.97], [1.0, 0.98, 1.0, 0.97], [1.0, 0.98, 1.0, 0.97],
                  [1.0, 0.98, 1.0, 0.97]])
    data = train.Dataset(units, np.zeros((4, 4)), R, clang, [CLANG, steady, big_win, free])
    assert int(np.argmin((R * clang[:, None])[:, :3].sum(axis=0))) == 2  # by total bytes: big-win
    assert train.default_candidate(data) == 3  # the best fixed pipeline, free ones included
    assert train.default_candidate(data, tuned_only=True) == 1
    # the default, which runs on almost every file, is a tuned clang pipeline
    assert train.default_first(data.candidates, data) == [steady, CLANG, big_win, free]
    # the margin is against the default (candidate 0): 0.975 does not beat 0.98 by 0.01, 0.9 does
    assert list(train.choose(np.array([[0.98, 1.0, 0.975], [0.98, 1.0, 0.9]]), 0.01)) == [0, 2]


def test_a_by_bytes_family_weighs_each_unit_by_its_bytes():
    import numpy as np

    from mlcc.learn.train import train

    # units the features cannot tell apart: one of 1,000 bytes that "a" shrinks by 10 %
    # and ten of 10 bytes that it leaves alone. The prediction is each fit's mean.
    R = np.array([[1.0, 0.9]] + [[1.0, 1.0]] * 10)
    clang = np.array([1_000.0] + [10.0] * 10)
    units = [{"project": "p", "id": f"u{i}"} for i in range(11)]
    data = train.Dataset(units, np.ones((11, 3)), R, clang, [CLANG, "a"])
    by_units = train.fit_model("extra-trees", data).predict(train.transform(data.X[:1]))[0, 1]
    by_bytes = train.fit_model("extra-trees" + train.BY_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(by_units - (1.0 - 0.1 / 11)) < 1e-9
    assert abs(by_bytes - (1.0 - 100.0 / 1100.0)) < 1e-9
    # capped at the 99th percentile of the bytes: 10 + 0.9 * 990 = 901 for the large unit
    capped = train.fit_model("extra-trees" + train.BY_CAPPED_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(capped - (1.0 - 90.1 / 1001.0)) < 1e-9
    assert not any(f.endswith(train.BY_CAPPED_BYTES) for f in train.FAMILIES)
    # by code bytes: the large unit is mostly data, 100 bytes of code against ten times 10
    data.code = np.array([100.0] + [10.0] * 10)
    by_code = train.fit_model("extra-trees" + train.BY_CODE_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(by_code - (1.0 - 10.0 / 200.0)) < 1e-9
    assert set(train.TREE_FAMILIES) < set(train.FAMILIES)
    assert {"extra-trees-by-bytes", "random-forest-by-bytes"} < set(train.FAMILIES)


def test_the_other_formulations_score_candidates_like_the_size_regressors():
    import numpy as np

    from mlcc.learn.train import train, variants

    # feature 0 tells the units apart: on the first kind candidate "a" saves 20 %, on the
    # second it costs 20 % and candidate "b" saves 0.05 % (a tie with the default)
    X = np.array([[5.0, 1.0]] * 20 + [[0.0, 1.0]] * 20)
    R = np.array([[1.0, 0.8, 1.0]] * 20 + [[1.0, 1.2, 0.9995]] * 20)
    units = [{"project": f"p{i % 4}", "id": f"u{i}"} for i in range(40)]
    data = train.Dataset(units, X, R, np.full(40, 100.0), [CLANG, "a", "b"])
    for family in variants.FORMULATIONS:
        pred = variants.fit_variant(family, data).predict(train.transform(X))
        assert pred.shape == R.shape
        assert list(train.choose(pred, 0.005)) == [1] * 20 + [0] * 20, family
    difference = variants.fit_variant(variants.FORMULATIONS[0], data).predict(train.transform(X[:1]))
    assert abs(difference[0, 1] - (0.8 - 1.0)) < 1e-9 and difference[0, 0] == 0.0
    pred, _ = train.cross_validate(data, variants.FORMULATIONS[1], folds=4, fit=variants.fit_variant)
    assert pred.shape == R.shape


def test_the_default_descent_scores_like_the_models_default_and_counts_failures():
    from mlcc.learn.candidates import tune_default

    # "steady" saves 2 % in both projects; "big-win" 3 % on a's one huge unit and
    # fails on b's; "partial" is not measured everywhere, so it is not scored.
    units = [{"project": "a", "id": "a0"}, {"project": "b", "id": "b0"}, {"project": "b", "id": "b1"}]
    by_unit = {"a0": {CLANG: 100_000, "steady": 98_000, "big-win": 97_000, "partial": 1},
               "b0": {CLANG: 1_000, "steady": 980, "big-win": None},
               "b1": {CLANG: 1_000, "steady": 980, "big-win": 1_000}}
    scored = tune_default.gains([CLANG, "steady", "big-win", "partial"], units, by_unit)
    assert scored == {CLANG: 0.0, "steady": 2.0, "big-win": -11.0}
    assert tune_default.best_of(scored) == "steady"


def test_the_label_sample_is_seeded_and_smallest_first():
    units = [{"id": f"u{i}", "bitcode_bytes": 2000 - i} for i in range(300)]
    sample = search.label_sample(units, 40)
    assert sample == search.label_sample(list(reversed(units)), 40)
    assert len({u["id"] for u in sample}) == 40
    assert [u["bitcode_bytes"] for u in sample] == sorted(u["bitcode_bytes"] for u in sample)
    assert search.label_sample(units, 0) == sorted(units, key=lambda u: u["bitcode_bytes"])


def test_deriving_the_os_corpus_skips_units_this_machines_corpus_lacks(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from mlcc.learn.corpus import level as corpus_level

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"units": [{"project": "gone", "id": "u1", "split": "train"}]}))
    monkeypatch.setattr(corpus_level, "MANIFEST_FILE", manifest)
    monkeypatch.setenv("MLCC_DATA", str(tmp_path / "data"))
    result = CliRunner().invoke(corpus_level.main, ["--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "0 units derived at -Os, 0 failed, 0 already there, 1 not in the -Oz corpus" in result.output


def test_triage_tells_a_pipeline_that_deletes_volatile_loads_from_one_that_shrinks_code(tmp_path):
    units = tmp_path / "units"
    subprocess.run(["mlcc", "-Oz", "-c", str(Path(__file__).parent / "data" / "volatile_flush.c"),
                    "-o", str(tmp_path / "flush.o")], env=mlcc_env(MLCC_COLLECT=str(units)), check=True)
    (unit_id,) = [bc.stem for bc in units.glob("*.bc")]
    prep = measure.prepare(measure.Unit.load(units, unit_id), str(tmp_path))
    clang = triage.build(prep, CLANG, str(tmp_path), "clang")
    assert clang["volatile"] >= 1 and clang["data"] >= 1 << 16 and "main" in clang["externals"]

    # LLVM 19's attributor: the loads and the 64 KiB array go (docs/RELIABILITY.md)
    broken = triage.build(prep, "function(jump-threading,sroa),cgscc(attributor-light-cgscc),clang",
                          str(tmp_path), "broken")
    reasons = triage.compare(clang, broken)
    assert broken["bytes"] < clang["bytes"] // 2
    assert any(r.startswith("volatile loads/stores") for r in reasons)
    assert any(r.startswith("initialized data") for r in reasons)

    tuned = triage.build(prep, "clang[gvn-no-pre,machine-outliner]", str(tmp_path), "tuned")
    assert triage.compare(clang, tuned) == []
    assert triage.compare(clang, {**tuned, "externals": set()}) == ["external definitions gone: main"]


def test_the_best_fixed_set_is_chosen_together_not_one_by_one():
    import numpy as np

    from mlcc.learn.train import train

    # "broad" saves 5 % on both units; "a" saves 8 % on the first only, "b" on the second only:
    # alone "broad" is best, but two trials are best spent on "a" and "b".
    R = np.array([[1.0, 0.95, 0.92, 1.0], [1.0, 0.95, 1.0, 0.92]])
    data = train.Dataset([{"project": "p", "id": "u"}, {"project": "q", "id": "v"}], np.ones((2, 3)), R,
                         np.array([100.0, 100.0]), [CLANG, "broad", "a", "b"])
    assert train.best_fixed_set(data, 1) == (1,)
    assert train.best_fixed_set(data, 2) == (2, 3)
    # what the model file carries for -fmlcc-trials=K: the set for each K, not a ranking
    assert train.trial_sets(data) == [["broad"], ["a", "b"], ["broad", "a", "b"]]
    assert abs(report.set_gain(data, (2, 3)) - 8.0) < 1e-9


def test_apt_lists_the_versions_of_a_source_package_for_the_fetch_fallback():
    from mlcc.learn.corpus import sources

    versions = sources.source_versions("lua5.4")   # deb-src is on (scripts/setup.sh)
    assert versions and all(v[0].isdigit() for v in versions), versions
    assert sources.source_versions("no-such-source-package-mlcc") == []
