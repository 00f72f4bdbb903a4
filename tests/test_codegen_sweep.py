"""The code generation sweep (`python -m mlcc.learn.candidates codegen-sweep`): how option
sets combine with the default's own arguments, what its summary counts, and that clang-19
takes every option set it would measure."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mlcc.learn.candidates import codegen_sweep

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
