"""Trials and search: a build that optimizes the unit to the module an earlier build
made (the same code generation arguments too) takes that build's object and runs no
code generation of its own (`trials.UnitBuilder._once`, the pass plugin's
MLCC_PLUGIN_OPTIMIZED). The chosen object is the same as without it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc import codegen, decide, pipeline, plugin_build
from mlcc.job import UnitJob
from mlcc.objective import object_size
from mlcc.plan import UnitPlan
from mlcc.settings import Settings
from mlcc.toolchain import Toolchain
from mlcc.trials import UnitBuilder

MLCC = shutil.which("mlcc")
CLANG = shutil.which("clang-19")

# No loop: a pipeline that only leaves out loop passes optimizes it to clang's module.
# With TWINS, two functions alike, `clang[mergefunc]` makes a module of its own.
SOURCE = r"""
int table[64];
int clamp(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }
int pick(int a, int b, int c) {
    int r;
    if (a > b) { r = table[a & 63] + c; table[b & 63] = r; }
    else { r = table[b & 63] + c; table[a & 63] = r; }
    return r * 3;
}
int lookup(int k) {
    switch (k) { case 1: return 10; case 2: return 22; case 3: return 35; case 4: return 41;
                 case 5: return 57; default: return clamp(k, 0, 9); }
}
"""
TWINS = r"""
long twin1(long *p, long n) { long s = p[0] * n + p[1]; p[2] = s ^ p[3]; return s * p[4] - 11; }
long twin2(long *p, long n) { long s = p[0] * n + p[1]; p[2] = s ^ p[3]; return s * p[4] - 11; }
"""

SAME = "clang[no-indvars]"  # acts on loops only: no loop here
OTHER = "clang[mergefunc]"


@pytest.fixture
def unit(tmp_path: Path) -> tuple[str, UnitPlan]:
    source = tmp_path / "u.c"
    source.write_text(SOURCE + TWINS)
    bitcode = str(tmp_path / "u.bc")
    subprocess.run([CLANG, "-Os", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(source), "-o", bitcode], check=True)
    plan = UnitPlan(source="u.c", language="c", frontend_args=(), codegen_args=("-Os",),
                    output=None, emit_assembly=False)
    return bitcode, plan


def _builder(unit, tmp_path: Path, name: str, **settings) -> UnitBuilder:
    bitcode, plan = unit
    info = decide.target_info(CLANG, plan.codegen_args, bitcode, cache=None)
    (tmp_path / name).mkdir()
    return UnitBuilder(UnitJob(
        plan, "s", bitcode, Settings(no_cache=True, server=False, **settings),
        Toolchain(clang=CLANG), str(tmp_path / name), "u", target_flags=info.flags,
        clang_text=info.clang_pipeline))


def object_size_of(data: bytes, tmp_path: Path) -> int:
    path = tmp_path / "measured.o"
    path.write_bytes(data)
    return object_size(path)


def _alone(unit, tmp_path: Path, name: str) -> bytes:
    b = _builder(unit, tmp_path, f"alone-{name.replace('[', '-').replace(']', '')}")
    return Path(b.build(b.job.pipeline(name), assembly=False).output).read_bytes()


@pytest.mark.parametrize("plugin", [True, False], ids=["plugin", "opt and clang"])
def test_a_build_of_an_earlier_module_takes_its_object(plugin, unit, tmp_path: Path):
    if plugin and plugin_build.installed(CLANG) is None:
        pytest.skip("mlcc's pass plugin is not built for this clang")
    b = _builder(unit, tmp_path, "trials", plugin=plugin)
    best, sizes = b.best_of([b.job.pipeline(p) for p in ("clang", SAME, OTHER)])
    assert b.reused == 1
    assert sizes["clang"] == sizes[SAME]
    # the object each pipeline makes built alone, without reuse
    objects = {p: _alone(unit, tmp_path, p) for p in ("clang", SAME, OTHER)}
    assert objects["clang"] == objects[SAME]  # what made the reuse right
    assert objects[OTHER] != objects["clang"]  # and the other is a build of its own
    assert sizes == {p: object_size_of(data, tmp_path) for p, data in objects.items()}
    smallest = min(("clang", SAME, OTHER), key=lambda p: sizes[p])  # ties: the earlier
    assert Path(best.output).read_bytes() == objects[smallest]
    assert best.pipeline.name != SAME  # the earlier build wins the tie


def test_the_reuse_setting_off_builds_every_pipeline(unit, tmp_path: Path):
    b = _builder(unit, tmp_path, "off", reuse_builds=False)
    best, sizes = b.best_of([b.job.pipeline(p) for p in ("clang", SAME)])
    assert b.reused == 0
    assert sizes["clang"] == sizes[SAME]


def test_different_code_generation_arguments_are_not_the_same_build(tmp_path: Path):
    """The same optimized module generated with other arguments is another object."""
    source = tmp_path / "o.c"
    source.write_text(SOURCE + "\n".join(
        f"int f{i}(int *p) {{ p[1] = p[0] * {i} + 7; p[2] = p[1] ^ p[3]; return p[2] + p[4]; }}"
        for i in range(8)))
    bitcode = str(tmp_path / "o.bc")
    subprocess.run([CLANG, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(source), "-o", bitcode], check=True)
    plan = UnitPlan(source="o.c", language="c", frontend_args=(), codegen_args=("-Oz",),
                    output=None, emit_assembly=False)
    info = decide.target_info(CLANG, plan.codegen_args, bitcode, cache=None)
    b = UnitBuilder(UnitJob(plan, "z", bitcode, Settings(no_cache=True, server=False),
                            Toolchain(clang=CLANG), str(tmp_path), "o", target_flags=info.flags,
                            clang_text=info.clang_pipeline))
    pipes = [b.job.pipeline(p) for p in ("clang", "clang[machine-outliner]")]
    assert pipes[0].passes == pipes[1].passes and pipes[0].codegen_args != pipes[1].codegen_args
    _, sizes = b.best_of(pipes)
    assert b.reused == 0
    assert sizes["clang"] != sizes["clang[machine-outliner]"]


def test_a_missing_plugin_report_is_not_trusted(unit, tmp_path: Path, monkeypatch):
    """Without the plugin's word on the module, its object may be the emptied one: the
    unit is built again the split way."""
    if plugin_build.installed(CLANG) is None:
        pytest.skip("mlcc's pass plugin is not built for this clang")
    b = _builder(unit, tmp_path, "unread")
    first = b.build_in_one(b.job.pipeline("clang"), assembly=False, reuse=True)
    monkeypatch.setattr(codegen, "plugin_report", lambda path: {})
    runs = []
    real_run_opt = pipeline.run_opt
    monkeypatch.setattr(pipeline, "run_opt", lambda *a, **k: (runs.append(a[1]), real_run_opt(*a, **k)))
    again = b.build_in_one(b.job.pipeline(SAME), assembly=False, reuse=True)
    assert len(runs) == 1  # opt, then code generation (or the object of the same bitcode)
    assert again.size == first.size > 0
    assert Path(again.output).read_bytes() == Path(first.output).read_bytes()


def test_the_driver_says_so_and_gives_the_same_object(tmp_path: Path):
    # so little to optimize that some of the trial set's pipelines make clang's module
    (tmp_path / "u.c").write_text("int inc(int x) { return x + 1; }\n"
                                  "int twice(int x) { return inc(x) * 2; }\n")
    entries = {}
    for name, extra in (("on", ()), ("off", ("-fmlcc-no-reuse-builds",))):
        log = tmp_path / f"{name}.log"
        env = mlcc_env(MLCC_NO_CACHE="1", MLCC_LOG=str(log), MLCC_TINY_SOURCE="0",
                       MLCC_ONE_PROCESS="0")
        proc = subprocess.run([MLCC, "-Os", "-fmlcc-trials=3", "-c", "u.c", "-o", f"{name}.o", *extra],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        entries[name] = json.loads(log.read_text().splitlines()[-1])
    assert "optimized to an earlier build's module" in entries["on"]["decision"]
    assert "earlier build" not in entries["off"]["decision"]
    assert entries["on"]["pipeline"] == entries["off"]["pipeline"]
    assert (tmp_path / "on.o").read_bytes() == (tmp_path / "off.o").read_bytes()


def test_the_plugin_hashes_no_module_over_the_limit(unit, tmp_path: Path, monkeypatch):
    if plugin_build.installed(CLANG) is None:
        pytest.skip("mlcc's pass plugin is not built for this clang")
    from mlcc import trials
    monkeypatch.setattr(trials, "REUSE_LIMIT", 3)  # every function here has more
    b = _builder(unit, tmp_path, "limited")
    _, sizes = b.best_of([b.job.pipeline(p) for p in ("clang", SAME)])
    assert b.reused == 0
    assert sizes["clang"] == sizes[SAME]
