"""The plugin route (mlcc/plugin_build.py, mlcc/plugin/mlcc-pipeline.cpp): clang runs the
pipeline mlcc chose and generates code in one process. Its objects must be the bytes
opt and then clang make for the same decision (`-fmlcc-no-plugin`), on real projects'
units too; where the plugin cannot give those (a sanitizer's pass would run after the
chosen pipeline), mlcc takes the three-process route by itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc import plugin_build

MLCC = shutil.which("mlcc")
CLANG19 = shutil.which("clang-19")

needs_plugin = pytest.mark.skipif(
    CLANG19 is None or shutil.which("llvm-config-19") is None,
    reason="needs clang-19 and LLVM 19's headers (llvm-19-dev, installed by scripts/setup.sh)")

SOURCE = r"""
#include <stdio.h>
#include <string.h>
struct entry { const char *name; int weight; struct entry *next; };
static struct entry pool[64];
static int used;
struct entry *add(const char *name, int weight, struct entry *head) {
  if (used == 64) return head;
  struct entry *e = &pool[used++];
  e->name = name; e->weight = weight; e->next = head;
  return e;
}
int total(const struct entry *e) { int t = 0; for (; e; e = e->next) t += e->weight; return t; }
const char *kind(int c) {
  switch (c) {
  case 0: return "zero"; case 1: return "one"; case 2: return "two"; case 3: return "three";
  case 4: return "four"; case 5: return "five"; case 6: return "six"; default: return "many";
  }
}
int main(int argc, char **argv) {
  struct entry *head = 0;
  for (int i = 1; i < argc; i++) head = add(argv[i], (int)strlen(argv[i]), head);
  printf("%d %s\n", total(head), kind(argc));
  return 0;
}
"""


@pytest.fixture(scope="module")
def plugin() -> str:
    """The plugin for clang-19, built if this tree has none yet."""
    found = plugin_build.installed(CLANG19)
    return found or str(plugin_build.build(CLANG19))


def _compile(work: Path, source: str, out: str, *flags: str, **env) -> dict:
    """`mlcc -c`, as a user runs it; returns its log line."""
    log = work / f"{out}.log"
    done = subprocess.run([MLCC, *flags, "-c", source, "-o", out], cwd=work,
                          env=mlcc_env(None, MLCC_NO_CACHE="1", MLCC_LOG=str(log), **env),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    line = json.loads(log.read_text().splitlines()[-1])
    line["opt runs"] = done.stderr.count("/opt-19 ")  # with MLCC_TRACE=1 in `env`
    return line


@needs_plugin
@pytest.mark.parametrize("level", ["-Oz", "-Os"])
def test_the_plugin_route_gives_the_objects_opt_and_clang_give(tmp_path, plugin, level):
    (tmp_path / "u.c").write_text(SOURCE)
    one = _compile(tmp_path, "u.c", "one.o", level)
    apart = _compile(tmp_path, "u.c", "apart.o", level, "-fmlcc-no-plugin")
    assert one["route"] == "plugin" and apart["route"] == "opt+clang"
    assert one["pipeline"] == apart["pipeline"] != "clang"
    assert one["seconds"]["opt"] == 0
    assert (tmp_path / "one.o").read_bytes() == (tmp_path / "apart.o").read_bytes()
    # and the program still runs
    subprocess.run([CLANG19, "one.o", "-o", "prog"], cwd=tmp_path, check=True)
    ran = subprocess.run(["./prog", "ab", "cde"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.stdout == "5 three\n"


@needs_plugin
def test_a_pipeline_that_names_a_default_pipeline_runs_in_the_plugin_too(tmp_path, plugin):
    """`default<Oz>` inside the chosen pipeline (candidate 5 of the -Oz candidates has it)
    calls the pipeline-start callbacks again while the plugin parses it: the plugin adds
    nothing there, and the object is opt's and clang's (it once recursed until clang
    crashed, and mlcc built the unit again with opt)."""
    (tmp_path / "u.c").write_text(SOURCE)
    chosen = "-fmlcc-pipeline=function(simplifycfg),cgscc(argpromotion),default<Oz>"
    one = _compile(tmp_path, "u.c", "one.o", "-Oz", chosen)
    apart = _compile(tmp_path, "u.c", "apart.o", "-Oz", chosen, "-fmlcc-no-plugin")
    assert (one["route"], apart["route"]) == ("plugin", "opt+clang")
    assert (tmp_path / "one.o").read_bytes() == (tmp_path / "apart.o").read_bytes()


@needs_plugin
def test_the_plugin_refuses_when_clang_would_run_more_than_the_chosen_pipeline(tmp_path, plugin):
    """A sanitizer's pass is required: clang would run it after the chosen pipeline (which
    has it already). mlcc hands sanitized units to clang whole, but should one get here,
    the plugin fails the compile with one error instead of instrumenting twice."""
    (tmp_path / "u.c").write_text(SOURCE)
    flags = ("-Oz", "-fsanitize=address")
    subprocess.run([CLANG19, *flags, "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", "u.c",
                    "-o", "u.bc"], cwd=tmp_path, check=True)
    done = subprocess.run([CLANG19, *flags, f"-fpass-plugin={plugin}", "-c", "u.bc", "-o", "u.o"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "MLCC_PLUGIN_PASSES": "module(function(sroa))"})
    assert done.returncode == 1, done.stderr
    assert "mlcc-pipeline: clang's pipeline would run AddressSanitizerPass after the chosen one" in done.stderr
    assert "Stack dump" not in done.stderr and not (tmp_path / "u.o").exists()


@needs_plugin
def test_when_the_plugin_route_fails_mlcc_runs_opt_and_clang_without_a_word(tmp_path, plugin):
    """A plugin clang cannot load (here: not a plugin at all) costs one clang run; the
    object is opt and clang's, with no warning and no fallback to clang's pipeline."""
    (tmp_path / "u.c").write_text(SOURCE)
    (tmp_path / "broken.so").write_text("not a plugin\n")
    code = ("import sys; from mlcc import plugin_build; "
            f"plugin_build.installed = lambda clang: {str(tmp_path / 'broken.so')!r}; "
            "from mlcc.cli import main_c; sys.argv = ['mlcc', *sys.argv[1:]]; main_c()")
    log = tmp_path / "broken.log"
    done = subprocess.run([sys.executable, "-c", code, "-Oz", "-c", "u.c", "-o", "broken.o"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=mlcc_env(None, MLCC_NO_CACHE="1", MLCC_LOG=str(log)))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["route"] == "opt+clang" and line["fallback"] is None
    _compile(tmp_path, "u.c", "apart.o", "-Oz", "-fmlcc-no-plugin")
    assert (tmp_path / "broken.o").read_bytes() == (tmp_path / "apart.o").read_bytes()


@needs_plugin
def test_assembly_output_and_lto_keep_the_three_process_route(tmp_path, plugin):
    (tmp_path / "u.c").write_text(SOURCE)
    assert _compile(tmp_path, "u.c", "u.s", "-Oz", "-S")["route"] == "opt+clang"
    assert _compile(tmp_path, "u.c", "u.o", "-Oz", "-flto")["route"] == "opt+clang"


@needs_plugin
def test_version_says_whether_pipelines_run_inside_clang(tmp_path, plugin):
    done = subprocess.run([MLCC, "--version"], capture_output=True, text=True, env=mlcc_env(None))
    assert "chosen pipelines inside clang (pass plugin)" in done.stdout.splitlines()[-1]
    done = subprocess.run([MLCC, "--version"], capture_output=True, text=True,
                          env=mlcc_env(None, MLCC_CLANG=str(_other_clang(tmp_path))))
    assert "no pass plugin built for this clang" in done.stdout.splitlines()[-1]


def _other_clang(tmp_path: Path) -> Path:
    """A copy of clang-19 under another stamp: no plugin is built for it."""
    other = tmp_path / "clang"
    shutil.copy2(CLANG19, other)
    other.touch()  # another binary: another size or time, another stamp
    return other


@needs_plugin
def test_a_plugin_is_found_only_for_the_clang_it_was_built_for(tmp_path, plugin):
    other = _other_clang(tmp_path)
    assert plugin_build.installed(CLANG19) == plugin
    assert plugin_build.installed(str(other)) is None


@needs_plugin
def test_the_plugin_reports_a_pipeline_it_cannot_read_as_a_clang_error(tmp_path, plugin):
    """No crash, no stack dump, no object: one error line, and mlcc goes on without it."""
    (tmp_path / "u.c").write_text(SOURCE)
    subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", "u.c",
                    "-o", "u.bc"], cwd=tmp_path, check=True)
    done = subprocess.run([CLANG19, "-Oz", f"-fpass-plugin={plugin}", "-c", "u.bc", "-o", "u.o"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "MLCC_PLUGIN_PASSES": "module(no-such-pass)"})
    assert done.returncode == 1
    assert "mlcc-pipeline: unknown module pass 'no-such-pass'" in done.stderr
    assert "Stack dump" not in done.stderr and not (tmp_path / "u.o").exists()


# ----------------------------------------------------------------- real projects' units

def _units(recipe: str, tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """A bench project's source directory, its C units and the flags its build gives them."""
    from mlcc.learn.evaluate import projects
    src = projects.extract_source(projects.fetch_source(recipe), tmp_path / recipe)
    if recipe == "lua5.4":
        return src / "src", sorted(p.name for p in (src / "src").glob("*.c")), [
            "-std=gnu99", "-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX"]
    return src, sorted(p.name for p in src.glob("*.c")), ["-D_LARGEFILE64_SOURCE=1"]


@needs_plugin
@pytest.mark.projects
@pytest.mark.parametrize("recipe", ["lua5.4", "zlib"])
def test_every_unit_of_a_bench_project_is_the_same_object_through_the_plugin(tmp_path, plugin, recipe):
    """Each unit at -Oz and -Os, through the plugin and through opt and clang: the same
    bytes, and the plugin route taken wherever a chosen pipeline ran."""
    src, units, flags = _units(recipe, tmp_path)
    assert len(units) >= 10
    took_plugin = 0
    for level in ("-Oz", "-Os"):
        for unit in units:
            stem = f"{Path(unit).stem}{level}"
            one = _compile(src, unit, f"{stem}.one.o", level, *flags)
            apart = _compile(src, unit, f"{stem}.apart.o", level, *flags, "-fmlcc-no-plugin")
            assert one["pipeline"] == apart["pipeline"], unit
            assert (src / f"{stem}.one.o").read_bytes() == (src / f"{stem}.apart.o").read_bytes(), (
                f"{unit} {level}: the plugin's object differs from opt and clang's")
            if apart["route"] == "opt+clang":
                assert one["route"] == "plugin", unit
                took_plugin += 1
    assert took_plugin >= len(units)


@needs_plugin
@pytest.mark.parametrize("flags", [("-Oz", "-fmlcc-trials=3"), ("-Os", "-fmlcc-trials=2"),
                                   ("-Oz", "-fmlcc-trials=3", "-S"),
                                   ("-Oz", "--target=thumbv7m-none-eabi", "-mcpu=cortex-m3",
                                    "-mfloat-abi=soft", "-ffreestanding")],
                         ids=["trials-Oz", "trials-Os", "trials-S", "thumbv7m-single-shot"])
def test_several_builds_of_a_unit_give_what_opt_and_clang_give(tmp_path, plugin, flags):
    """Trials and a cross target's single-shot build a unit several ways: a build whose
    opt part no other shares runs inside clang. The same choice and the same output."""
    (tmp_path / "u.c").write_text(SOURCE.replace("#include <stdio.h>", "int printf(const char *, ...);")
                                  .replace("#include <string.h>", "unsigned long strlen(const char *);"))
    out = "u.s" if "-S" in flags else "u.o"
    one = _compile(tmp_path, "u.c", "one-" + out, *flags, MLCC_TRACE="1")
    apart = _compile(tmp_path, "u.c", "apart-" + out, *flags, "-fmlcc-no-plugin", MLCC_TRACE="1")
    assert one["pipeline"] == apart["pipeline"] and one["decision"] == apart["decision"]
    assert one["opt runs"] < apart["opt runs"], (one["opt runs"], apart["opt runs"])
    assert (tmp_path / ("one-" + out)).read_bytes() == (tmp_path / ("apart-" + out)).read_bytes()


CXX_SOURCE = r"""
#include <cstdio>
#include <map>
#include <string>
#include <vector>
struct Item { std::string name; int weight; };
std::map<std::string, int> index(const std::vector<Item> &items) {
  std::map<std::string, int> m;
  for (const Item &i : items) m[i.name] += i.weight;
  return m;
}
int main(int argc, char **argv) {
  std::vector<Item> items;
  for (int i = 1; i < argc; i++) items.push_back({argv[i], i});
  std::map<std::string, int> m = index(items);
  std::printf("%zu %d\n", m.size(), m.empty() ? 0 : m.begin()->second);
  return 0;
}
"""


def _linkonce_functions(obj: Path) -> set[str]:
    """The weak (COMDAT, linkonce_odr) functions an object defines."""
    nm = shutil.which("llvm-nm-19") or "llvm-nm"
    out = subprocess.run([nm, "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    return {line.split()[2] for line in out.splitlines() if len(line.split()) == 3 and line.split()[1] == "W"}


@needs_plugin
def test_the_inline_linkonce_knob_runs_mlccs_pass_in_clang_and_in_opt_alike(tmp_path, plugin):
    """`inline-linkonce` names a pass of mlcc's plugin: the plugin route runs it inside
    clang, the three-process route loads the plugin into opt; the objects are the same
    bytes, smaller than clang's pipeline's, with fewer linkonce_odr copies, and the
    program does what clang's does."""
    from mlcc.objective import object_size

    (tmp_path / "u.cpp").write_text(CXX_SOURCE)
    knob = "-fmlcc-pipeline=clang[inline-linkonce]"
    one = _compile(tmp_path, "u.cpp", "one.o", "-Oz", knob)
    apart = _compile(tmp_path, "u.cpp", "apart.o", "-Oz", knob, "-fmlcc-no-plugin")
    plain = _compile(tmp_path, "u.cpp", "plain.o", "-Oz", "-fmlcc-pipeline=clang")
    assert one["route"] == "plugin" and apart["route"] == "opt+clang"
    assert one["fallback"] is None and apart["fallback"] is None
    assert (tmp_path / "one.o").read_bytes() == (tmp_path / "apart.o").read_bytes()
    assert object_size(tmp_path / "one.o") < object_size(tmp_path / "plain.o")
    assert len(_linkonce_functions(tmp_path / "one.o")) < len(_linkonce_functions(tmp_path / "plain.o"))
    outputs = []
    for obj in ("one.o", "plain.o"):
        subprocess.run(["clang++-19", obj, "-o", f"{obj}.prog"], cwd=tmp_path, check=True)
        outputs.append(subprocess.run([f"./{obj}.prog", "b", "a", "b"], cwd=tmp_path,
                                      capture_output=True, text=True).stdout)
    assert outputs[0] == outputs[1] == "2 2\n"


@needs_plugin
def test_a_pipeline_naming_a_plugin_pass_without_the_plugin_gets_clangs_object(tmp_path, plugin):
    """No plugin built for this LLVM: opt cannot run the pipeline, so the unit gets clang's
    own pipeline, as for any pipeline that fails, with one `mlcc:` warning."""
    (tmp_path / "u.cpp").write_text(CXX_SOURCE)
    code = ("import sys; from mlcc import plugin_build; plugin_build.installed = lambda clang: None; "
            "from mlcc.cli import main_cxx; sys.argv = ['mlcc++', *sys.argv[1:]]; main_cxx()")
    done = subprocess.run([sys.executable, "-c", code, "-Oz", "-fmlcc-pipeline=clang[inline-linkonce]",
                           "-c", "u.cpp", "-o", "u.o"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=mlcc_env(None, MLCC_NO_CACHE="1"))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 1
    subprocess.run(["clang++-19", "-Oz", "-c", "u.cpp", "-o", "c.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "u.o").read_bytes() == (tmp_path / "c.o").read_bytes()
