"""The decision cache: hits, corrupt and foreign entries, unwritable directories,
determinism cold and warm, trials never larger than clang."""

from __future__ import annotations

import hashlib
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
    """The split route's caches (front end, then the decision and the output keyed by its
    bitcode); the one-process route's output cache is tests/test_one_process.py's."""
    return mlcc_env(cache, **{"MLCC_ONE_PROCESS": "0", **extra})


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


def test_trials_that_differ_in_code_generation_share_one_opt_run(work: Path, tmp_path: Path, monkeypatch):
    """Pipelines whose opt part is the same (`codegen` knobs apart) run opt once; each still
    gets its own object, the same bytes as when built alone."""
    from mlcc import decide, pipeline
    from mlcc.job import UnitJob
    from mlcc.plan import UnitPlan
    from mlcc.settings import Settings
    from mlcc.toolchain import Toolchain
    from mlcc.trials import UnitBuilder

    clang = shutil.which("clang-19")
    bitcode = str(tmp_path / "util.bc")
    subprocess.run([clang, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(work / "src" / "util.c"), "-o", bitcode], check=True)
    plan = UnitPlan(source="util.c", language="c", frontend_args=(), codegen_args=("-Oz",),
                    output=None, emit_assembly=False)
    info = decide.target_info(clang, plan.codegen_args, bitcode, cache=None)

    def builder(name: str) -> UnitBuilder:
        return UnitBuilder(UnitJob(
            plan, "z", bitcode, Settings(no_cache=True, server=False), Toolchain(clang=clang),
            str(tmp_path), name, target_flags=info.flags, clang_text=info.clang_pipeline))

    runs = []
    real_run_opt = pipeline.run_opt
    monkeypatch.setattr(pipeline, "run_opt", lambda *a, **k: (runs.append(a[1]), real_run_opt(*a, **k)))
    trials = ["clang", "clang[jump-tables-16]", "clang[no-licm]", "clang[no-licm,no-lsr,machine-outliner]"]
    shared = builder("shared")
    built = [shared.build(shared.job.pipeline(p), assembly=False) for p in trials]
    assert len(runs) == 2  # clang's pipeline, and it without LICM
    assert len({b.output for b in built}) == len(trials)
    for p, b in zip(trials, built):
        alone = builder(f"alone-{len(runs)}")
        output = alone.build(alone.job.pipeline(p), assembly=False).output
        assert Path(output).read_bytes() == Path(b.output).read_bytes()


def test_deterministic_cold_and_warm(work: Path, tmp_path: Path):
    outputs = []
    for run in range(3):
        cache = tmp_path / ("cold%d" % run if run < 2 else "cold1")  # cold, cold, warm
        assert _compile(work, _env(cache), out=f"d{run}.o").returncode == 0
        outputs.append((work / f"d{run}.o").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


# --- the finished outputs the cache keeps (mlcc/output_cache.py) ---

def _seconds(entry: dict, stage: str) -> float:
    return entry["seconds"].get(stage, 0.0)


@pytest.mark.parametrize("small_unit", ["0", "100000"], ids=["model path", "small unit"])
@pytest.mark.parametrize("mode", ["-c", "-S"])
def test_warm_rebuild_takes_the_output_from_the_cache(small_unit, mode, work: Path, tmp_path: Path):
    cache, log = tmp_path / "cache", tmp_path / "log"
    env = _env(cache, MLCC_LOG=str(log), MLCC_SMALL_UNIT=small_unit, MLCC_TINY_SOURCE="0")
    out = "u.s" if mode == "-S" else "u.o"
    for name in ("a", "b"):
        proc = subprocess.run([MLCC, "-Oz", mode, "src/util.c", "-o", f"{name}-{out}"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    cold, warm = _log(log)
    assert (cold["output_cache"], warm["output_cache"]) == ("miss", "hit")
    assert _seconds(cold, "codegen") > 0
    assert _seconds(warm, "opt") == _seconds(warm, "codegen") == 0.0
    assert (work / f"a-{out}").read_bytes() == (work / f"b-{out}").read_bytes()
    nocache = subprocess.run([MLCC, "-Oz", mode, "src/util.c", "-o", f"c-{out}"], cwd=work,
                             env=_env(cache, MLCC_SMALL_UNIT=small_unit, MLCC_TINY_SOURCE="0",
                                      MLCC_NO_CACHE="1"))
    assert nocache.returncode == 0
    assert (work / f"c-{out}").read_bytes() == (work / f"a-{out}").read_bytes()


def test_code_generators_warnings_come_back_on_a_hit(work: Path, tmp_path: Path):
    """-Wframe-larger-than is reported by code generation: a hit must say it again.
    (Code generation from bitcode words it differently from clang on the source,
    without the source line: docs/USAGE.md, "Differences from clang".)"""
    (work / "frame.c").write_text("int g(char *);\nint f(void) { char b[512]; return g(b); }\n")
    argv = ["-Oz", "-Wframe-larger-than=64", "-c", "frame.c", "-o", "f.o"]
    theirs = subprocess.run(["clang-19", *argv], cwd=work, capture_output=True, text=True)
    assert "frame size" in theirs.stderr
    log = tmp_path / "log"
    env = _env(tmp_path / "cache", MLCC_LOG=str(log))
    runs = [subprocess.run([MLCC, *argv], cwd=work, env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert [e["output_cache"] for e in _log(log)] == ["miss", "hit"]
    assert runs[0].returncode == runs[1].returncode == 0
    assert "stack frame size (520) exceeds limit (64)" in runs[0].stderr
    assert runs[1].stderr == runs[0].stderr


def test_damaged_or_missing_output_is_rebuilt(work: Path, tmp_path: Path):
    from mlcc.output_cache import OutputCache

    cache, log = tmp_path / "cache", tmp_path / "log"
    env = _env(cache, MLCC_LOG=str(log))
    assert _compile(work, env, out="a.o").returncode == 0
    outputs = OutputCache(DecisionCache(cache))
    (stored,) = outputs.files()
    stored.write_bytes(b"\x7fELF not the object that was built")
    assert _compile(work, env, out="b.o").returncode == 0
    (stored,) = outputs.files()
    stored.unlink()
    assert _compile(work, env, out="c.o").returncode == 0
    assert _compile(work, env, out="d.o").returncode == 0
    assert [e["output_cache"] for e in _log(log)] == ["miss", "miss", "miss", "hit"]
    objects = {(work / f"{n}.o").read_bytes() for n in "abcd"}
    assert len(objects) == 1


def test_another_clang_is_another_key(work: Path, tmp_path: Path):
    """The tools' path, size and time are in the key: a new LLVM never gets an old object."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("clang-19", "opt-19"):
        (bindir / tool).symlink_to(shutil.which(tool))
    cache, log = tmp_path / "cache", tmp_path / "log"
    assert _compile(work, _env(cache, MLCC_LOG=str(log)), out="a.o").returncode == 0
    other = _env(cache, MLCC_LOG=str(log), MLCC_LLVM_BIN=str(bindir))
    assert _compile(work, other, out="b.o").returncode == 0
    assert [e["output_cache"] for e in _log(log)] == ["miss", "miss"]


def test_output_cache_prunes_least_recently_used(tmp_path: Path):
    from mlcc.output_cache import OutputCache

    outputs = OutputCache(DecisionCache(tmp_path / "c"))
    for i in range(5):
        built = tmp_path / f"{i}.o"
        built.write_bytes(bytes([i]) * 1000)
        assert outputs.store(f"{i:064x}", str(built), f"warning {i}\n")
        os.utime(outputs._path(hashlib.sha256(built.read_bytes()).hexdigest()), (i, i))
    assert outputs.fetch(f"{0:064x}", str(tmp_path / "back.o")) == "warning 0\n"  # used: newest now
    assert outputs.prune(max_bytes=2500) == 3
    assert outputs.fetch(f"{0:064x}", str(tmp_path / "back.o")) == "warning 0\n"
    assert outputs.fetch(f"{4:064x}", str(tmp_path / "back.o")) == "warning 4\n"
    assert outputs.fetch(f"{1:064x}", str(tmp_path / "back.o")) is None
    assert outputs.stats()["outputs"] == 2


def test_cache_tool_counts_and_clears_outputs(work: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert _compile(work, _env(cache)).returncode == 0
    tool = shutil.which("mlcc-tool")
    stats = subprocess.run([tool, "cache", "stats", "--dir", str(cache), "--json"],
                           capture_output=True, text=True, check=True)
    assert json.loads(stats.stdout)["outputs"] == 1
    cleared = subprocess.run([tool, "cache", "clear", "--dir", str(cache)],
                             capture_output=True, text=True, check=True)
    assert "1 outputs" in cleared.stdout
    stats = subprocess.run([tool, "cache", "stats", "--dir", str(cache), "--json"],
                           capture_output=True, text=True, check=True)
    assert json.loads(stats.stdout)["outputs"] == json.loads(stats.stdout)["entries"] == 0
