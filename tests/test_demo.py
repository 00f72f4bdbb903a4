"""The demo (scripts/demo.py) shows mlcc at work: its sources take mlcc's route, and
the demo prints the pipeline mlcc ran, by its number among the model's candidates."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"
SOURCES = sorted((ROOT / "scripts" / "demo").glob("*.c"))

pytestmark = pytest.mark.skipif(not (shutil.which("clang-19") and shutil.which("mlcc")),
                                reason="needs clang-19 and mlcc on PATH")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_source_is_above_the_small_unit_threshold(source: Path, tmp_path: Path) -> None:
    """A unit under `small_unit` bytes of bitcode goes to clang whole, and the demo
    would show +0.0 %; the sources also compile without a warning."""
    bitcode = tmp_path / "unit.bc"
    subprocess.run(["clang-19", "-Oz", "-Wall", "-Wextra", "-Werror", "-Xclang",
                    "-disable-llvm-passes", "-emit-llvm", "-c", str(source), "-o", str(bitcode)],
                   check=True, timeout=60)
    assert bitcode.stat().st_size >= Settings().small_unit


def test_demo_prints_the_models_choice() -> None:
    assert len(SOURCES) >= 3
    env = mlcc_env()
    del env["MLCC_SMALL_UNIT"]  # the demo runs with the defaults a user has
    proc = subprocess.run([sys.executable, str(DEMO), "--level", "Oz"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if re.match(r"\S+\.c ", line)]
    assert len(rows) == len(SOURCES), proc.stdout
    assert any(re.search(r"candidate \d+", row) for row in rows), proc.stdout
    assert not any("small unit" in row for row in rows), proc.stdout
