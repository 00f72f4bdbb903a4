"""The one-process route (mlcc/one_process.py): where single-shot runs the target's
default alone, one clang compiles the unit from its source through mlcc's pass plugin.
Its objects must be the bytes the split route makes for the same decision (front end,
then the pipeline and code generation), on real projects' units too; the bound on slow
passes must fall where the split route puts it; the output cache must still serve a
rebuild; and a unit that does not compile must get clang's diagnostics once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc import passes

from test_plugin_route import CLANG19, SOURCE, needs_plugin  # the same fixture unit

MLCC = shutil.which("mlcc")


def _compile(work: Path, source: str, out: str, cache: Path, *flags: str, ok: bool = True,
             **env) -> tuple[dict | None, subprocess.CompletedProcess]:
    """`mlcc -c` with the one-process route on and a cache of its own; returns its log
    line (None when it wrote none) and the process."""
    log = work / f"{out}.log"
    done = subprocess.run([MLCC, *flags, "-c", source, "-o", out], cwd=work,
                          env=mlcc_env(cache, **{"MLCC_ONE_PROCESS": "1", "MLCC_LOG": str(log), **env}),
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr
    if ok:
        assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines() if log.exists() else []
    return (json.loads(lines[-1]) if lines else None), done


def _split(work: Path, source: str, out: str, cache: Path, *flags: str) -> dict:
    """The same unit through the split route: the same decision, every unit (small ones
    too) given the default."""
    line, _ = _compile(work, source, out, cache, *flags, MLCC_ONE_PROCESS="0", MLCC_SMALL_UNIT="0")
    return line


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "u.c").write_text(SOURCE)
    (tmp_path / "other.c").write_text("int other(int x) { return x * 3 + 1; }\n")
    return tmp_path


@needs_plugin
@pytest.mark.parametrize("flags", [("-Oz",), ("-Os",), ("-Oz", "-g", "-fPIC"), ("-Os", "-fno-pic")])
def test_one_process_gives_the_split_routes_object(work, tmp_path, flags):
    cache = tmp_path / "cache"
    one, _ = _compile(work, "u.c", "one.o", cache, *flags)
    apart = _split(work, "u.c", "apart.o", cache, *flags)
    assert one["route"] == "one process" and apart["route"] == "plugin"
    assert one["pipeline"] == apart["pipeline"] != "clang"
    assert set(one["seconds"]) == {"whole"}
    assert (work / "one.o").read_bytes() == (work / "apart.o").read_bytes()
    subprocess.run([CLANG19, "-no-pie", "one.o", "-o", "prog"], cwd=work, check=True)
    ran = subprocess.run(["./prog", "ab", "cde"], cwd=work, capture_output=True, text=True)
    assert ran.stdout == "5 three\n"


@needs_plugin
def test_the_first_unit_of_a_build_takes_the_route_too(work, tmp_path):
    """Nothing is known of the flags yet: mlcc asks clang what they target with an empty
    source's bitcode, remembers it, and compiles the unit in one process."""
    cache = tmp_path / "cache"
    line, _ = _compile(work, "u.c", "a.o", cache, "-Oz", "-fPIC")
    assert line["route"] == "one process" and set(line["seconds"]) == {"whole"}
    assert line["target"] == "x86_64-pc-linux-gnu"
    cxx, _ = _compile(work, "u.c", "b.o", cache, "-Oz", "-x", "c++", "-std=c++17")
    assert cxx["route"] == "one process"
    # an empty source is an error under -pedantic -Werror (cJSON's flags): not the probe
    strict, _ = _compile(work, "other.c", "c.o", cache, "-Oz", "-std=c89", "-pedantic", "-Werror")
    assert strict["route"] == "one process"


def _large_source(functions: int) -> str:
    """A unit of about 70 instructions per function."""
    body = "".join(
        f"int f{i}(int *a, int n) {{ int s = {i}; for (int k = 0; k < n; k++) {{"
        f" if (a[k] & {i + 1}) s += a[k] * {i + 3}; else s ^= a[k] >> 2; }}"
        f" switch (s & 7) {{ case 0: return s; case 1: return s + {i}; case 2: return s * 3;"
        f" case 3: return s - 7; default: return s / 5; }} }}\n" for i in range(functions))
    return body


@needs_plugin
def test_the_bound_on_slow_passes_falls_where_the_split_route_puts_it(work, tmp_path):
    """Over SLOW_BOUND instructions the default runs without the IR outliner: the plugin
    counts the module as mlcc/ir_reader.py does, so both routes pick the same form."""
    from mlcc import ir_reader
    cache = tmp_path / "cache"
    (work / "big.c").write_text(_large_source(400))
    subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", "big.c",
                    "-o", "big.bc"], cwd=work, check=True)
    assert ir_reader.shape(str(work / "big.bc")).instructions > passes.SLOW_BOUND
    one, _ = _compile(work, "big.c", "one.o", cache, "-Oz")
    apart = _split(work, "big.c", "apart.o", cache, "-Oz")
    assert one["route"] == "one process"
    assert one["pipeline"] == apart["pipeline"] and "iroutliner" not in one["pipeline"]
    assert (work / "one.o").read_bytes() == (work / "apart.o").read_bytes()
    small, _ = _compile(work, "u.c", "u.o", cache, "-Oz")
    assert "iroutliner" in small["pipeline"]


@needs_plugin
def test_a_rebuild_takes_the_object_from_the_output_cache(work, tmp_path):
    cache = tmp_path / "cache"
    first, _ = _compile(work, "u.c", "a.o", cache, "-Oz")
    again, _ = _compile(work, "u.c", "b.o", cache, "-Oz")
    assert (first["output_cache"], again["output_cache"]) == ("miss", "hit")
    assert again["route"] == "cache" and again["size"] == first["size"]
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    # a stored object that went missing or bad is built again, never delivered
    for stored in (cache / "outputs").glob("??/*"):
        stored.write_bytes(b"damaged")
    third, _ = _compile(work, "u.c", "c.o", cache, "-Oz")
    assert third["output_cache"] == "miss"
    assert (work / "c.o").read_bytes() == (work / "a.o").read_bytes()
    # another source: another key
    (work / "u.c").write_text(SOURCE.replace("\"many\"", "\"lots\""))
    other, _ = _compile(work, "u.c", "d.o", cache, "-Oz")
    assert other["output_cache"] == "miss"


@needs_plugin
def test_the_front_ends_warnings_come_once_on_a_hit_too(work, tmp_path):
    """On a hit the front end still runs and warns; the stored diagnostics are the same
    words, so the object is the cached one and the warning comes once."""
    cache = tmp_path / "cache"
    (work / "w.c").write_text("int f(int x) { int unused; return x + 1; }\n")
    notes = []
    for out in ("a.o", "b.o"):
        line, done = _compile(work, "w.c", out, cache, "-Oz", "-Wall")
        assert line["route"] in ("one process", "cache")
        assert done.stderr.count("warning: unused variable 'unused'") == 1
        notes.append(line["output_cache"])
    assert notes == ["miss", "hit"]
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


@needs_plugin
def test_code_generations_warnings_are_clangs_own_every_time(work, tmp_path):
    """-Wframe-larger-than comes from code generation: in one process it is worded as
    clang words it (the source line too). A cache hit empties the module, so code
    generation cannot say it again: the rebuild sees that the stored words differ from its
    front end's and builds the object again, saying it again."""
    cache = tmp_path / "cache"
    flags = ("-Oz", "-Wframe-larger-than=64")
    (work / "frame.c").write_text("int g(char *);\nint f(void) { char b[512]; return g(b); }\n")
    theirs = subprocess.run([CLANG19, *flags, "-c", "frame.c", "-o", "ref.o"], cwd=work,
                            capture_output=True, text=True)
    assert "frame size" in theirs.stderr
    for out in ("a.o", "b.o"):
        line, done = _compile(work, "frame.c", out, cache, *flags)
        assert line["route"] == "one process" and line["output_cache"] == "miss"
        assert done.stderr == theirs.stderr.replace("ref.o", out)


@needs_plugin
def test_a_unit_that_does_not_compile_gets_clangs_diagnostics_once(work, tmp_path):
    cache = tmp_path / "cache"
    (work / "bad.c").write_text("int f(void) { return missing; }\n")
    (work / "bad.o").write_text("stale")
    line, done = _compile(work, "bad.c", "bad.o", cache, "-Oz", ok=False)
    ref = subprocess.run([CLANG19, "-Oz", "-c", "bad.c", "-o", "ref.o"], cwd=work,
                         capture_output=True, text=True)
    assert done.returncode == ref.returncode == 1
    assert done.stderr == ref.stderr
    assert line is None and not (work / "bad.o").exists()


@needs_plugin
def test_the_dependency_file_is_clangs(work, tmp_path):
    cache = tmp_path / "cache"
    line, _ = _compile(work, "u.c", "sub.o", cache, "-Oz", "-MD")
    assert line["route"] == "one process"
    subprocess.run([CLANG19, "-Oz", "-MD", "-c", "u.c", "-o", "ref.o"], cwd=work, check=True)
    assert (work / "sub.d").read_text() == (work / "ref.d").read_text().replace("ref.o", "sub.o")


@needs_plugin
@pytest.mark.parametrize("flags", [("-Oz",), ("-Os",), ("-Oz", "-g", "-fPIC")])
def test_a_small_unit_is_clangs_object(work, tmp_path, flags):
    """Under `small_unit` bytes of bitcode the plugin runs nothing of its own and takes
    back the default's code generation knobs: clang's object, byte for byte, as the split
    route gives it; from the cache too."""
    cache = tmp_path / "cache"
    small = {"MLCC_SMALL_UNIT": "8192", "MLCC_TINY_SOURCE": "0"}
    one, _ = _compile(work, "other.c", "one.o", cache, *flags, **small)
    assert (one["route"], one["decision"], one["pipeline"]) == (
        "one process", "clang-default: small unit", "clang")
    subprocess.run([CLANG19, *flags, "-c", "other.c", "-o", "clang.o"], cwd=work, check=True)
    assert (work / "one.o").read_bytes() == (work / "clang.o").read_bytes()
    apart, _ = _compile(work, "other.c", "apart.o", cache, *flags, MLCC_ONE_PROCESS="0", **small)
    assert apart["decision"] == one["decision"] and apart["route"] != "one process"
    assert (work / "apart.o").read_bytes() == (work / "one.o").read_bytes()
    again, _ = _compile(work, "other.c", "again.o", cache, *flags, **small)
    assert (again["route"], again["decision"]) == ("cache", "clang-default: small unit")
    assert (work / "again.o").read_bytes() == (work / "one.o").read_bytes()


def test_only_llvm_options_can_be_taken_back_for_a_small_unit():
    from mlcc.one_process import llvm_options
    assert llvm_options(("-mllvm", "-enable-machine-outliner=always", "-mllvm", "-disable-lsr")) == (
        "enable-machine-outliner", "disable-lsr")
    assert llvm_options(()) == ()
    assert llvm_options(("-mllvm", "-disable-lsr", "-fno-jump-tables")) is None
    assert llvm_options(("-fno-jump-tables", "-mllvm")) is None


@needs_plugin
def test_the_small_unit_rule_falls_where_the_split_route_puts_it(work, tmp_path):
    """The plugin measures the bitcode the split route's front end writes: at a threshold
    of its size the unit is optimized on both routes, one byte over it is small on both."""
    subprocess.run([CLANG19, "-Oz", "-c", "-emit-llvm", "-Xclang", "-disable-llvm-passes",
                    "u.c", "-o", "u.bc"], cwd=work, check=True)
    size = (work / "u.bc").stat().st_size
    for threshold, decision in ((size, "x86_64 default"), (size + 1, "clang-default: small unit")):
        env = {"MLCC_SMALL_UNIT": str(threshold), "MLCC_TINY_SOURCE": "0"}
        for route in ("1", "0"):
            line, _ = _compile(work, "u.c", f"u-{threshold}-{route}.o", tmp_path / f"cache{route}",
                               "-Oz", MLCC_ONE_PROCESS=route, **env)
            assert line["decision"].startswith(decision), (threshold, route, line["decision"])
            assert (line["route"] == "one process") == (route == "1")


# ----------------------------------------------------------------- real projects' units

@needs_plugin
@pytest.mark.projects
@pytest.mark.parametrize("recipe", ["zlib"])
def test_every_unit_of_a_bench_project_is_the_same_object_in_one_process(tmp_path, recipe):
    """Each unit at -Oz and -Os, in one process and split: the same bytes."""
    from mlcc.learn.evaluate import projects
    src = projects.extract_source(projects.fetch_source(recipe), tmp_path / recipe)
    units = sorted(p.name for p in src.glob("*.c"))
    assert len(units) >= 10
    cache = tmp_path / "cache"
    for level in ("-Oz", "-Os"):
        flags = (level, "-D_LARGEFILE64_SOURCE=1")
        for unit in units:
            stem = f"{Path(unit).stem}{level}"
            one, _ = _compile(src, unit, f"{stem}.one.o", cache, *flags)
            apart = _split(src, unit, f"{stem}.apart.o", cache, *flags)
            assert one["route"] == "one process" and one["pipeline"] == apart["pipeline"], unit
            assert (src / f"{stem}.one.o").read_bytes() == (src / f"{stem}.apart.o").read_bytes(), unit
