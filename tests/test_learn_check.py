"""Checking (mlcc/learn/check/): triage tells a pipeline that breaks code from one that
shrinks it. Differential testing has its own file (test_difftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import mlcc_env

from mlcc.learn import measure
from mlcc.learn.check import triage
from mlcc.pipeline import CLANG


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
