"""The model report (mlcc/learn/report/): the default K, the every-unit section and
the per-project rows."""

from __future__ import annotations

import json

import numpy as np

from mlcc.learn.report import report
from mlcc.learn.search import budget
from mlcc.learn.train import train
from mlcc.pipeline import CLANG


def test_default_k_stops_before_the_first_small_trial():
    trials = {k: {"train": {"total": t}} for k, t in {1: 1.6, 2: 1.8, 3: 1.95, 4: 2.0, 5: 2.5}.items()}
    assert report.default_k(trials) == 3
    assert report.default_k({1: {"train": {"total": 0.05}}}) == 0


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


def test_project_rows_weigh_each_project_by_its_bytes():
    data = train.Dataset(units=[{"project": "big"}, {"project": "big"}, {"project": "small"}],
                         X=np.zeros((3, 1)), R=np.array([[1.0, 0.9], [1.0, 1.0], [1.0, 0.5]]),
                         clang=np.array([500, 500, 100]), candidates=[CLANG, "a"])
    header, _, big, small = report.project_rows(data, chosen=np.array([1, 1, 0]), fixed=0)
    assert big == "| big | 2 | 1,000 (91%) | 5.00% | 0.00% | 5.00% |"
    assert small == "| small | 1 | 100 (9%) | 0.00% | 0.00% | 50.00% |"


def test_the_room_summary_weighs_projects_and_counts_larger_files():
    """Each unit's size picked from its search (clang's first, the default second): total
    gain over all bytes, geometric mean over projects, files larger than clang's."""
    from mlcc.learn.report import targets_report

    rows = [{"project": "a", "clang": 1000, "sizes": [1000, 900, 800]},
            {"project": "a", "clang": 100, "sizes": [100, 110, 95]},
            {"project": "b", "clang": 100, "sizes": [100, 100, 100]}]
    room = targets_report.size_summary(rows, lambda r: min(r["sizes"]))
    single = targets_report.size_summary(rows, lambda r: r["sizes"][1])
    assert round(room["total"], 3) == round(100 * (1 - 995 / 1200), 3) and room["larger"] == 0
    assert single["larger"] == 1 and round(single["total"], 3) == round(100 * (1 - 1110 / 1200), 3)
    # project a: 1010/1100, project b: 1.0
    assert round(single["geomean"], 3) == round(100 * (1 - (1010 / 1100) ** 0.5), 3)


def test_a_search_from_an_earlier_default_scores_what_the_target_ships_now(tmp_path, monkeypatch):
    """When the room's search started from a default the target no longer ships, the
    room table takes single-shot and trials from the shipped configuration's own builds,
    and the room is the smaller of the search's best and those builds."""
    from mlcc.learn.report import targets_report
    from mlcc.learn.search import budget

    searched = tmp_path / "search.json"
    searched.write_text(json.dumps({"model": "default:earlier", "rows": [
        # clang, the earlier default, then the search's other evaluations
        {"unit": "u1", "project": "a", "clang": 1000, "clang_data": 0, "sizes": [1000, 990, 950]},
        {"unit": "u2", "project": "b", "clang": 100, "clang_data": 0, "sizes": [100, 99, 98]},
        {"unit": "u3", "project": "b", "clang": 100, "clang_data": 0, "sizes": [100, 90, 90]}]}))
    result = tmp_path / "default.json"
    result.write_text(json.dumps({"checked": {"validation": {"trials": {"total_gain_pct": 0.0}}}}))
    monkeypatch.setattr(targets_report, "budget_file", lambda name, level: searched)
    monkeypatch.setattr(targets_report, "result_file", lambda name, level: result)
    thumb = targets_report.targets.named("thumbv7m")  # it builds clang's pipeline too (`also`)
    monkeypatch.setattr(targets_report.targets, "table", lambda: {"thumbv7m": thumb})
    monkeypatch.setattr(budget, "model_digest", lambda name, level: "default:now")
    # u3 lacks a measurement of the shipped configuration: left out
    monkeypatch.setattr(targets_report, "shipped_builds", lambda name, level: {
        "u1": {"default": 940, "single": 930, "trials": [960, 920]},
        "u2": {"default": 101, "single": 99, "trials": [100, 100]}})
    cells = [c.strip() for c in targets_report.room_rows("z")[2].split("|")[1:-1]]
    assert cells[0].startswith("thumbv7m (searched from an earlier default") and cells[1] == "2"
    # room: u1 min(950, 920) = 920, u2 98; default alone 940 + 101; single-shot 930 + 99
    assert cells[3] == f"{100 * (1 - 1018 / 1100):+.2f} %"
    assert cells[5] == f"{100 * (1 - 1041 / 1100):+.2f} %" and cells[7] == "1"
    assert cells[9] == f"{100 * (1 - 1029 / 1100):+.2f} %" and cells[11] == "0"
    # trials: clang's, the largest set and single-shot's builds: 920 + 99
    assert cells[13] == f"{100 * (1 - 1019 / 1100):+.2f} %"
