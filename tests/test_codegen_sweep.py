"""The code generation sweep (`python -m mlcc.learn.candidates codegen-sweep`): how option
sets combine with the default's own arguments, what its summary counts, and that clang-19
takes every option set it would measure, on every target; and how `codegen-variants`
chooses from the sweep."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mlcc import knobs, targets
from mlcc.learn.candidates import codegen_sweep, codegen_twins, codegen_variants

CLANG19 = shutil.which("clang-19")
BASE = ("-mllvm", "-enable-machine-outliner=always", "-mllvm", "-min-jump-table-entries=16")


def test_an_option_set_adds_its_options_and_replaces_the_ones_the_default_sets():
    assert codegen_sweep.merged(BASE, ["-disable-lsr"]) == [*BASE, "-mllvm", "-disable-lsr"]
    assert codegen_sweep.merged(BASE, ["-min-jump-table-entries=8"]) == [
        "-mllvm", "-enable-machine-outliner=always", "-mllvm", "-min-jump-table-entries=8"]
    assert codegen_sweep.merged((), ["-x86-early-ifcvt"]) == ["-mllvm", "-x86-early-ifcvt"]


def test_the_summary_is_against_the_baseline_and_skips_failed_builds():
    results = {"a": {"project": "p", "sizes": {"baseline": 100, "x": 90}},
               "b": {"project": "p", "sizes": {"baseline": 100, "x": 120}},
               "c": {"project": "q", "sizes": {"baseline": 200, "x": 180}},
               "d": {"project": "q", "sizes": {"baseline": 50, "x": None}}}
    row = codegen_sweep.summary(results, ["x"])["x"]
    assert row["units"] == 3 and row["smaller"] == 2 and row["larger"] == 1
    assert row["total_pct"] == pytest.approx(100 * (1 - 390 / 400), abs=1e-3)
    # project p: 210/200 (-5 %), project q: 180/200 (+10 %): mean +2.5 %
    assert row["project_pct"] == pytest.approx(2.5, abs=1e-3)


@pytest.mark.skipif(CLANG19 is None, reason="needs clang-19")
def test_clang_19_accepts_every_option_set(tmp_path):
    source = tmp_path / "t.c"
    source.write_text("int f(int x) { switch (x) { case 1: return 3; case 2: return 7; } return x; }\n")
    for name, options in codegen_sweep.OPTION_SETS.items():
        args = [a for o in options for a in ("-mllvm", o)]
        done = subprocess.run([CLANG19, "-Oz", *args, "-c", str(source), "-o", str(tmp_path / "t.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr)


@pytest.mark.skipif(CLANG19 is None, reason="needs clang-19")
@pytest.mark.parametrize("name", [t for t in targets.table() if t != targets.HOST])
def test_clang_19_accepts_every_option_set_of_a_cross_target(name, tmp_path):
    """An option clang does not know fails the build, which the sweep records as a
    failure, not as a finding."""
    target = targets.named(name)
    source = tmp_path / "t.c"
    source.write_text("int f(int x) { switch (x) { case 1: return 3; case 2: return 7; } return x; }\n")
    default = target.default("z")
    for set_name, options in codegen_sweep.option_sets(name, default).items():
        args = [a for o in options for a in ("-mllvm", o)]
        done = subprocess.run([CLANG19, *target.flags, "-Oz", *args, "-c", str(source),
                               "-o", str(tmp_path / "t.o")], capture_output=True, text=True)
        assert done.returncode == 0, (name, set_name, done.stderr)


def test_a_without_set_leaves_one_of_the_defaults_code_generation_knobs_out():
    default = targets.named("thumbv7m").default("z")
    sets = codegen_sweep.option_sets("thumbv7m", default)
    undone = [n for n in sets if n.startswith(codegen_sweep.WITHOUT)]
    codegen_knobs = [k for k in knobs.knobs_of(default) if knobs.table()[k].get("codegen")]
    assert undone == [codegen_sweep.WITHOUT + k for k in codegen_knobs] and undone
    lean = knobs.without(default, codegen_knobs[0])
    assert set(knobs.knobs_of(default)) - set(knobs.knobs_of(lean)) == {codegen_knobs[0]}
    # x86-64: its own sets, and each code generation knob of its default left out
    host_default = targets.named(targets.HOST).default("z")
    host = codegen_sweep.option_sets(targets.HOST, host_default)
    host_knobs = [k for k in knobs.knobs_of(host_default) if knobs.table()[k].get("codegen")]
    assert list(host) == [*codegen_sweep.OPTION_SETS, *(codegen_sweep.WITHOUT + k for k in host_knobs),
                          "outliner-rerun", "outliner-rerun-2", "ext-tsp-placement"]


def test_variants_are_chosen_greedily_on_what_each_unit_keeps():
    units = {"a": {"project": "p", "sizes": {"baseline": 100, "x": 90, "y": 95, "z": 100}},
             "b": {"project": "p", "sizes": {"baseline": 100, "x": 100, "y": 95, "z": None}},
             "c": {"project": "q", "sizes": {"baseline": 100, "x": 105, "y": 100, "z": 99}}}
    # x saves 10, y 10 (5 + 5): the earlier wins the tie; then y saves 5 more (b), z 1 (c)
    assert codegen_variants.greedy(units, ["x", "y", "z"], 1) == ["x"]
    assert codegen_variants.greedy(units, ["x", "y", "z"], 3) == ["x", "y", "z"]
    assert codegen_variants.greedy(units, ["z"], 3) == ["z"]
    assert codegen_variants.greedy({"a": units["a"]}, ["x", "y", "z"], 3) == ["x"]  # y then saves nothing
    clang = {"a": 92, "b": 100, "c": 100}
    score = codegen_variants.against_clang(units, clang, ["x"])
    # a 90 (smaller than 92), b 100, c 100: p 190/192, q 100/100
    assert score["larger"] == 0 and score["units"] == 3
    assert score["total_pct"] == pytest.approx(100 * (1 - 290 / 292), abs=1e-3)
    assert score["project_geomean_pct"] == pytest.approx(100 * (1 - (190 / 192) ** 0.5), abs=1e-3)
    assert codegen_variants.against_clang(units, clang, [])["larger"] == 1


def test_only_knob_edits_of_the_default_become_pipelines():
    default = targets.named("thumbv7m").default("z")
    lean = codegen_variants.knob_edit(default, "without-no-block-placement", [], "thumbv7m")
    assert lean == knobs.without(default, "no-block-placement")
    rerun = codegen_variants.knob_edit(default, "outliner-rerun", ["-machine-outliner-reruns=1"], "thumbv7m")
    assert set(knobs.knobs_of(rerun)) - set(knobs.knobs_of(default)) == {"outliner-rerun"}
    # a knob of other targets, and an option set no knob has
    assert codegen_variants.knob_edit(default, "thumb1-tbb", ["-arm-synthesize-thumb-1-tbb"], "thumbv7m") is None
    assert codegen_variants.knob_edit(default, "no-branch-fold", ["-disable-branch-fold"], "thumbv7m") is None


def test_the_sweep_builds_on_what_single_shot_runs(monkeypatch):
    from mlcc.learn.candidates import tune_default
    from mlcc.learn.search import search

    monkeypatch.setattr(search, "TARGET", targets.HOST)
    # x86-64 ships the models' candidate 0, not a tune-default result
    assert codegen_sweep.swept_default() == targets.named(targets.HOST).default(search.OPT_LEVEL)
    monkeypatch.setattr(search, "TARGET", "thumbv7m")
    monkeypatch.setattr(tune_default, "tuned_default", lambda: "clang[no-lsr]")
    assert codegen_sweep.swept_default() == "clang[no-lsr]"


def test_the_project_rule_keeps_one_data_heavy_project_from_deciding_the_variants():
    # project p: one huge unit where x saves 1 %; projects q and r: small units where y saves 10 %
    units = {"big": {"project": "p", "sizes": {"baseline": 1_000_000, "x": 990_000, "y": 1_000_000}},
             "q1": {"project": "q", "sizes": {"baseline": 1_000, "x": 1_000, "y": 900}},
             "r1": {"project": "r", "sizes": {"baseline": 1_000, "x": 1_000, "y": 900}}}
    assert codegen_variants.greedy(units, ["x", "y"], 1) == ["x"]  # 10,000 bytes against 200
    assert codegen_variants.greedy(units, ["x", "y"], 1, rule="project") == ["y"]  # 6.67 points against 0.33
    assert codegen_variants.project_saved_pct(units, ["y"]) == pytest.approx(20 / 3)
    assert codegen_variants.greedy(units, ["x", "y"], 2, rule="project") == ["y", "x"]
    # each step must save MIN_STEP_PCT by the same rule: x adds a third of a point
    assert codegen_variants.shipped(["y", "x"], units, rule="project") == ["y", "x"]
    assert codegen_variants.shipped(["y", "x"], units) == []  # y saves 0.02 % of the total bytes


def test_at_os_the_sweep_adds_the_oz_code_generation_knobs_one_by_one_and_together():
    """At -Os the searches may not add the `codegen` knobs (`levels`); the sweep measures
    what each would save there (`with-<knob>`, unless an option set is the same) and what
    all of -Oz's default's save together."""
    os_default = targets.named(targets.HOST).default("s")
    sets = codegen_sweep.option_sets(targets.HOST, os_default, "s")
    added = {n: v for n, v in sets.items() if n.startswith(codegen_sweep.WITH)}
    assert "with-machine-outliner" in added and "with-no-machine-licm" not in added  # a set already
    oz = codegen_sweep.oz_codegen_knobs(targets.HOST)
    assert added[codegen_sweep.ALL_OF] == [a for k in oz for a in knobs.table()[k]["codegen"] if a != "-mllvm"]
    # at -Oz the default has them: nothing is added
    oz_default = targets.named(targets.HOST).default("z")
    assert not any(n.startswith(codegen_sweep.WITH) for n in codegen_sweep.option_sets(targets.HOST, oz_default, "z"))


def test_a_code_generation_twin_is_its_base_with_the_oz_knobs_and_the_same_opt_part():
    oz = codegen_sweep.oz_codegen_knobs(targets.HOST)
    assert "machine-outliner" in oz and all(knobs.table()[k].get("codegen") for k in oz)
    base = "function(bdce),clang[gvn-no-pre,iroutliner],function(tailcallelim)"
    twin = codegen_twins.twin(base, oz)
    grown = knobs.name(["gvn-no-pre", "iroutliner", *oz])
    assert twin == f"function(bdce),{grown},function(tailcallelim)" and knobs.opt_part(twin) == base
    assert codegen_twins.twin("default<Os>", oz) is None  # no clang[...] element to add them to
    assert codegen_twins.twin(codegen_twins.twin(base, oz), oz) is None  # has them all already
    assert codegen_twins.twin("clang", oz) == knobs.name(oz)
