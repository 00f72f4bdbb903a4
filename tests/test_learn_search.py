"""Search (mlcc/learn/search/): resuming, samples, what mlcc runs on units over the
slow-pass bound, the search budget's summary and mined finds."""

from __future__ import annotations

from mlcc import passes
from mlcc.learn.search import budget, mine, search
from mlcc.pipeline import CLANG


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


def test_the_learning_side_counts_what_mlcc_runs_on_units_over_the_bound():
    fast, slow, big = "clang[no-licm]", "clang[no-licm,iroutliner]", passes.SLOW_BOUND + 1
    sizes = {CLANG: 100, fast: 90, slow: 80}
    assert search.as_run(sizes, passes.SLOW_BOUND) == sizes
    assert search.as_run(sizes, big) == {CLANG: 100, fast: 90, slow: 90}
    assert search.as_run({CLANG: 100, slow: 80}, big) == {CLANG: 100}  # what runs: not measured yet
    assert search.bounded_pipelines([CLANG, slow, fast], big) == [CLANG, fast]
    assert search.bounded_pipelines([CLANG, slow, fast], 10) == [CLANG, slow, fast]
    # a pipeline measured only as what runs instead of it (the default on a big unit) is found
    # when wanted, and one measured under neither name stays missing, not failed
    measured_bounded = {CLANG: 100, fast: 90}
    assert search.as_run(measured_bounded, big) == {CLANG: 100, fast: 90}
    assert search.as_run(measured_bounded, big, [slow]) == {CLANG: 100, fast: 90, slow: 90}
    assert search.as_run(measured_bounded, 10, [slow]) == {CLANG: 100, fast: 90}


def test_the_label_sample_is_seeded_and_smallest_first():
    units = [{"id": f"u{i}", "bitcode_bytes": 2000 - i} for i in range(300)]
    sample = search.label_sample(units, 40)
    assert sample == search.label_sample(list(reversed(units)), 40)
    assert len({u["id"] for u in sample}) == 40
    assert [u["bitcode_bytes"] for u in sample] == sorted(u["bitcode_bytes"] for u in sample)
    assert search.label_sample(units, 0) == sorted(units, key=lambda u: u["bitcode_bytes"])


def test_budget_summary_is_the_best_of_each_prefix():
    rows = [{"unit": "x", "project": "p", "clang": 100, "sizes": [100, None, 96, 99, 90]},
            {"unit": "y", "project": "q", "clang": 100, "sizes": [100, 100, 100, 98, 98]}]
    summary = budget.summarize(rows, budgets=(1, 3, 5))
    assert summary["total_gain_pct"] == {"1": 0.0, "3": 2.0, "5": 6.0}
    assert summary["projects"] == ["p", "q"] and summary["clang_bytes"] == 200


def test_a_mined_find_must_beat_the_whole_start_list():
    one, two, three = "default<Oz>,function(gvn)", "default<Oz>,function(sroa)", "clang[no-licm]"
    sizes = {CLANG: 100, "cand": 95, "default<Oz>": 96, one: 93, two: 94, "default<Oz>,function(dse)": None,
             three: 91, "function(newgvn),default<Oz>": 80}
    finds = mine.best_finds(sizes, {CLANG, "cand"}, count=2)
    assert finds == [[three, 91], [one, 93]]  # the distrusted pass is never a find
    assert mine.best_finds({CLANG: 100, "a": 100}, {CLANG}) == []
    assert mine.best_finds({"x": 90}, {CLANG}) == []  # nothing of the start list measured


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
