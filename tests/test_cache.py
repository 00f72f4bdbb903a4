"""The decision cache: hits, corrupt and foreign entries, unwritable directories,
determinism cold and warm, trials never larger than clang."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc.cache import DecisionCache, make_key
from mlcc.objective import object_size

FIXTURE = Path(__file__).parent / "data" / "compare"
MLCC = shutil.which("mlcc")


def _env(cache: Path, **extra) -> dict:
    return mlcc_env(cache, **extra)


def _compile(work: Path, env: dict, *extra: str, out: str = "u.o") -> subprocess.CompletedProcess:
    return subprocess.run([MLCC, "-Oz", "-c", "src/util.c", "-o", out, *extra], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def _log(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_second_build_hits_and_gives_the_same_object(work: Path, tmp_path: Path):
    cache, log = tmp_path / "cache", tmp_path / "log"
    env = _env(cache, MLCC_LOG=str(log))
    assert _compile(work, env, out="a.o").returncode == 0
    assert _compile(work, env, out="b.o").returncode == 0
    assert [e["cache"] for e in _log(log)] == ["miss", "hit"]
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    stats = DecisionCache(cache).stats()
    assert stats["entries"] >= 1


def test_corrupt_and_foreign_entries_are_replaced(work: Path, tmp_path: Path):
    cache, log = tmp_path / "cache", tmp_path / "log"
    env = _env(cache, MLCC_LOG=str(log))
    assert _compile(work, env, out="a.o").returncode == 0
    decisions = [p for p in DecisionCache(cache).entries() if "pipeline" in p.read_text()]
    assert decisions
    for p in decisions:
        p.write_text("{not json")
    assert _compile(work, env, out="b.o").returncode == 0
    for p in decisions:
        entry = json.loads(p.read_text())
        entry["key"] = "0" * 64          # an entry copied from elsewhere
        entry["pipeline"] = "function(this-pass-does-not-exist)"
        p.write_text(json.dumps(entry))
    proc = _compile(work, env, out="c.o")
    assert proc.returncode == 0 and "warning" not in proc.stderr
    assert [e["cache"] for e in _log(log)] == ["miss", "miss", "miss"]
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes() == (work / "c.o").read_bytes()


def test_unwritable_cache_directory_is_no_error(work: Path, tmp_path: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    proc = _compile(work, _env(blocker / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (work / "u.o").exists()


def test_cache_module_round_trip(tmp_path: Path):
    bc = tmp_path / "x.bc"
    bc.write_bytes(b"BC\xc0\xde" + b"\0" * 100)
    key = make_key(str(bc), ["-fPIC"], "model-a")
    assert key != make_key(str(bc), ["-fPIC"], "model-b")
    assert key != make_key(str(bc), ["-fPIE"], "model-a")
    cache = DecisionCache(tmp_path / "c")
    assert cache.get(key) is None
    assert cache.put(key, {"pipeline": "default<Oz>"})
    assert cache.get(key)["pipeline"] == "default<Oz>"
    for i in range(30):
        cache.put(f"{i:064x}", {"pipeline": "x"})
    assert cache.prune(limit=10) == 21
    assert len(cache.entries()) == 10
    assert cache.clear() == 10


@pytest.mark.parametrize("setting", [{"MLCC_TRIALS": "4"}, {"MLCC_SEARCH": "6"}],
                         ids=["trials", "search"])
def test_trials_and_search_never_larger_than_clang(setting, work: Path, tmp_path: Path):
    env = _env(tmp_path / "cache", **setting)
    for src in ("src/util.c", "src/main.c", "src/lib.c"):
        proc = subprocess.run([MLCC, "-Oz", "-c", src, "-o", "t.o"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        subprocess.run(["clang-19", "-Oz", "-c", src, "-o", "ref.o"], cwd=work, check=True)
        assert object_size(work / "t.o") <= object_size(work / "ref.o")


def test_deterministic_cold_and_warm(work: Path, tmp_path: Path):
    outputs = []
    for run in range(3):
        cache = tmp_path / ("cold%d" % run if run < 2 else "cold1")  # cold, cold, warm
        assert _compile(work, _env(cache), out=f"d{run}.o").returncode == 0
        outputs.append((work / f"d{run}.o").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
