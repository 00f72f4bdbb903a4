"""Retraining on your own code, end to end: collect with MLCC_COLLECT, `mlcc-tool retrain`,
then build with the new model.

Real code (Lua 5.4's sources from the Debian source package), real measurements
with clang-19/opt-19, a real trained model; the search budget is small so the
test stays under a minute. At -Os, the level the bundled model does not cover.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc.learn.evaluate import projects
from mlcc.learn.retrain import held_out

# Fourteen of Lua's files: enough for 11 training units and 3 held out.
LUA_FILES = ("lapi.c", "lcode.c", "ldebug.c", "ldo.c", "lfunc.c", "lgc.c", "llex.c", "lobject.c",
             "lparser.c", "lstring.c", "ltable.c", "ltm.c", "lundump.c", "lzio.c")
SMALL_BUDGET = ("--explore-units", "5", "--random", "3", "--greedy", "1", "--k-max", "3")


def retrain(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["mlcc-tool", "retrain", *args], capture_output=True, text=True,
                          env=env, timeout=900)


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[Path, Path]:
    """Lua's sources, and the units that compiling some of them at -Os left in a directory."""
    root = tmp_path_factory.mktemp("retrain")
    src = projects.extract_source(projects.fetch_source("lua5.4"), root / "lua") / "src"
    units = root / "units"
    env = mlcc_env(MLCC_COLLECT=str(units))
    for name in LUA_FILES:
        subprocess.run(["mlcc", "-Os", "-w", "-DLUA_USE_LINUX", "-c", name, "-o", str(root / f"{name}.o")],
                       cwd=src, env=env, check=True, capture_output=True)
    return src, units


def test_retrain_writes_a_model_the_driver_uses(collected, tmp_path: Path) -> None:
    src, units = collected
    model = tmp_path / "lua-Os.onnx"
    result = retrain(str(units), "-o", str(model), *SMALL_BUDGET, env=mlcc_env())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr

    summary = json.loads((units / ".mlcc-retrain" / "summary.json").read_text())
    assert summary["opt_level"] == "s"
    assert summary["training_data"]["train_units"] == 11
    assert summary["training_data"]["validation_units"] == 3
    assert "clang" in summary["candidates"] and 2 <= len(summary["candidates"]) <= 3

    from mlcc import model as runtime

    loaded = runtime.load(str(model))
    assert loaded.opt_level == "s" and list(loaded.candidates) == summary["candidates"]
    meta = loaded.session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["mlcc.training_data"])["own_code"] == [str(units)]

    # -Os builds consult the new model; -Oz builds say it is not for them and use clang's pipeline.
    env = mlcc_env(MLCC_MODEL=str(model), MLCC_VERBOSE="1", MLCC_NO_CACHE="1")
    for level, expected in (("-Os", f"model {loaded.digest[:12]}"), ("-Oz", "model is for -Os")):
        run = subprocess.run(["mlcc", level, "-w", "-DLUA_USE_LINUX", "-c", "lvm.c", "-o",
                              str(tmp_path / f"lvm{level}.o")], cwd=src, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert expected in run.stderr, run.stderr

    # A second run resumes: nothing is measured again, the same candidates come out.
    table = units / ".mlcc-retrain" / "measurements-Os.jsonl.gz"
    before = table.stat().st_size
    again = retrain(str(units), "-o", str(tmp_path / "again.onnx"), *SMALL_BUDGET, env=mlcc_env())
    assert again.returncode == 0, again.stderr
    assert table.stat().st_size == before
    assert json.loads((units / ".mlcc-retrain" / "summary.json").read_text())["candidates"] \
        == summary["candidates"]


@pytest.mark.parametrize("make_dir, message", [
    (lambda tmp: tmp / "missing", "not a directory"),
    (lambda tmp: tmp, "0 training units"),
])
def test_retrain_without_units_is_one_clear_error(tmp_path: Path, make_dir, message) -> None:
    result = retrain(str(make_dir(tmp_path)), "-o", str(tmp_path / "m.onnx"), env=mlcc_env())
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_retrain_on_an_unreachable_ray_cluster_is_one_error_line_and_no_table(collected, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    _, units = collected
    result = retrain(str(units), "-o", str(tmp_path / "m.onnx"), "--work", str(tmp_path / "work"),
                     "--engine", "ray", *SMALL_BUDGET, env=mlcc_env(RAY_ADDRESS="127.0.0.1:1"))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["mlcc-tool: error: cannot reach the Ray cluster at RAY_ADDRESS=127.0.0.1:1: check "
                      "the address and that `ray start --head` runs there, or unset RAY_ADDRESS to run "
                      "on this machine"], result.stderr
    assert not list((tmp_path / "work").glob("measurements-*")) and not (tmp_path / "m.onnx").exists()


def test_held_out_share_is_exact_and_stable():
    units = [{"id": f"u{i:03}"} for i in range(50)]
    held = held_out(units, 0.2)
    assert len(held) == 10
    assert held == held_out(list(reversed(units)), 0.2)
    assert held_out(units, 0.0) == set()


def test_retrains_engine_choices_are_the_engines_backends():
    """mlcc-tool spells retrain's --engine choices itself (the learning side stays out of its
    imports); they must be the engine's."""
    from mlcc import tool
    from mlcc.learn import engine

    option = next(p for p in tool.retrain.params if p.name == "backend")
    assert tuple(option.type.choices) == engine.BACKENDS
