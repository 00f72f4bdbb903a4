"""Tuned clang pipelines (`clang[knob,...]`): each knob on clang-19's real pipeline text,
the names, and a forced knob pipeline through the driver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc import knobs, passes, pipeline
from mlcc.errors import MlccError
from mlcc.learn import measure
from mlcc.learn.search import search
from mlcc.objective import object_size
from mlcc.pipeline import CLANG, codegen_args, resolve

CLANG19 = shutil.which("clang-19")
OPT19 = shutil.which("opt-19")
SOURCE = """
int table[64];
static int sq(int x) { return x * x; }
int fill(int n) { int s = 0; for (int i = 0; i < n && i < 64; i++) { table[i] = sq(i); s += table[i]; } return s; }
int pick(int k) { switch (k) { case 0: return 3; case 1: return 9; case 2: return 27; case 3: return 81; default: return fill(k); } }
"""


@pytest.fixture(scope="module")
def unit(tmp_path_factory) -> tuple[Path, str]:
    """A real -Oz unit's bitcode and clang's pipeline text for it."""
    work = tmp_path_factory.mktemp("knobs")
    src = work / "u.c"
    src.write_text(SOURCE)
    bc = work / "u.bc"
    subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(src), "-o", str(bc)], check=True)
    text = subprocess.run([CLANG19, "-Oz", "-c", str(bc), "-o", "/dev/null", "-mllvm",
                           "-print-pipeline-passes"], check=True, capture_output=True,
                          text=True).stdout.strip()
    return bc, text


@pytest.mark.parametrize("knob", list(knobs.table()))
def test_every_knob_changes_clangs_pipeline_and_opt_accepts_it(unit, knob):
    bc, text = unit
    tuned = knobs.apply(text, [knob])
    edit = knobs.table()[knob]
    if "codegen" in edit:   # code generation's knob: opt's text stays clang's
        assert tuned == text and knobs.codegen_args(knobs.name([knob])) == tuple(edit["codegen"])
        return
    assert tuned != text
    if "drop" in edit:
        names = {e.split("<", 1)[0] for e in tuned.replace("(", ",").replace(")", ",").split(",")}
        assert edit["drop"] in {e.split("<", 1)[0] for e in text.replace("(", ",").split(",")}
        assert edit["drop"] not in names
    # a pass of mlcc's own plugin (inline-linkonce) runs with the plugin loaded, as mlcc runs opt
    from mlcc import pipeline
    subprocess.run([OPT19, *pipeline.plugin_args(OPT19, tuned), f"-passes={tuned}", str(bc),
                    "-disable-output"], check=True)


def test_an_appended_pass_runs_after_the_whole_tuned_pipeline():
    text = "function(sroa),globaldce,constmerge,function(gvn<>)"
    assert knobs.apply(text, ["iroutliner", "mergefunc", "gvn-no-pre"]) == \
        "function(sroa),mergefunc,globaldce,constmerge,function(gvn<no-pre>),iroutliner"


def test_dropping_a_pass_drops_the_adaptor_it_leaves_empty():
    text = "function(sroa,loop-mssa(licm<allowspeculation>),instcombine),loop-mssa(licm)"
    assert knobs.apply(text, ["no-licm"]) == "function(sroa,instcombine)"


def test_names_are_canonical_and_unknown_knobs_are_refused():
    assert knobs.name(["mergefunc", "gvn-no-pre", "mergefunc"]) == "clang[gvn-no-pre,mergefunc]"
    assert knobs.name([]) == CLANG
    assert knobs.knobs_of("clang[gvn-no-pre,mergefunc]") == ("gvn-no-pre", "mergefunc")
    with pytest.raises(MlccError, match="no-such-knob"):
        knobs.name(["no-such-knob"])
    toggled = knobs.toggles("clang[gvn-no-pre]")
    on_x86 = [k for k, edit in knobs.table().items() if "x86_64" in edit.get("targets", ["x86_64"])]
    assert CLANG in toggled and len(toggled) == len(on_x86)


def test_a_knob_element_inside_a_larger_pipeline():
    text = "function(jump-threading),clang[no-indvars]"
    assert resolve(text, "function(indvars,gvn<>),globaldce") == "function(jump-threading),function(gvn<>),globaldce"
    assert resolve(CLANG, "x") == "x" and resolve("default<Oz>", "x") == "default<Oz>"
    assert [p.name for p in passes.parse_simple(text)] == ["jump-threading", "clang[no-indvars]"]
    assert passes.eligible(text) and passes.wraps_default(text, "s")
    assert search.is_tuned_clang("clang[no-indvars]") and not search.is_tuned_clang(text)


def test_knob_descent_moves_from_the_best_and_stops_when_all_toggles_are_tried():
    sizes = {CLANG: 100, **{knobs.name([k]): 101 for k in knobs.table()}}
    sizes[knobs.name(["no-indvars"])] = 90
    measured = []

    def run(p):
        measured.append(p)
        sizes[p] = 80 if p == knobs.name(["gvn-no-pre", "no-indvars"]) else 95

    search._walk_knobs(sizes, 3, run, "z")
    assert measured[0] == knobs.name(["gvn-no-pre", "no-indvars"])
    assert all("gvn-no-pre" in p and "no-indvars" in p for p in measured[1:])


def test_codegen_knobs_are_added_at_oz_only_and_may_always_be_removed():
    # x86-64's trade speed for bytes; other targets' that do not (constants merged or
    # pooled, Thumb-1's compact jump tables) may be added at -Os too
    codegen = {k for k, edit in knobs.table().items() if "codegen" in edit and "targets" not in edit}
    assert codegen and all(knobs.table()[k].get("levels") == ["z"] for k in codegen)
    at_os = knobs.toggles("clang[gvn-no-pre]", "s")
    assert not any(set(knobs.knobs_of(t)) & codegen for t in at_os)
    assert knobs.name(["gvn-no-pre", "no-indvars"]) in at_os
    assert any(set(knobs.knobs_of(t)) & codegen for t in knobs.toggles("clang[gvn-no-pre]", "z"))
    # a pipeline that has one (chosen at -Oz, or by hand) can still lose it at -Os
    assert "clang[gvn-no-pre]" in knobs.toggles("clang[gvn-no-pre,no-lsr]", "s")
    # `levels` and `targets` are not part of what a model records: they do not change
    # what a knob does
    recorded = knobs.definitions(["clang[no-lsr,thumb1-tbb]"]).values()
    assert all("levels" not in edit and "targets" not in edit for edit in recorded)


def test_a_forced_knob_pipeline_builds_the_same_object_as_opt_with_the_tuned_text(unit, tmp_path):
    bc, text = unit
    src = tmp_path / "u.c"
    src.write_text(SOURCE)
    forced = "clang[gvn-no-pre,no-indvars,mergefunc]"
    env = mlcc_env(MLCC_PIPELINE=forced)
    subprocess.run(["mlcc", "-Oz", "-c", str(src), "-o", str(tmp_path / "mlcc.o")], check=True,
                   env=env, cwd=tmp_path)
    tuned = knobs.apply(text, knobs.knobs_of(forced))
    subprocess.run([OPT19, f"-passes={tuned}", str(bc), "-o", str(tmp_path / "t.bc")], check=True)
    subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-c", str(tmp_path / "t.bc"),
                    "-o", str(tmp_path / "ref.o")], check=True)
    dis = [subprocess.run(["llvm-objdump-19", "-d", "--no-show-raw-insn", str(tmp_path / o)],
                          check=True, capture_output=True, text=True).stdout.split("\n", 3)[-1]
           for o in ("mlcc.o", "ref.o")]
    assert dis[0] == dis[1]


def test_local_edits_toggle_knobs_and_keep_a_valid_pipeline(unit):
    import random

    bc, text = unit
    start = passes.parse_simple("function(sroa),clang[gvn-no-pre]")
    rng = random.Random(3)
    space = passes.load_space()
    children = {passes.to_opt(passes.mutate(rng, start, space, "z")) for _ in range(60)}
    tuned = {p.name for c in children for p in passes.parse_simple(c) if p.name.startswith("clang[")}
    assert len(tuned) > 3 and all(c.count("clang[") == 1 for c in children)
    for child in sorted(children)[:8]:
        subprocess.run([OPT19, f"-passes={resolve(child, text)}", str(bc), "-disable-output"], check=True)


def test_an_unknown_knob_in_a_forced_pipeline_is_one_line_and_no_output(tmp_path):
    src = tmp_path / "u.c"
    src.write_text(SOURCE)
    proc = subprocess.run(["mlcc", "-Oz", "-fmlcc-pipeline=clang[gvn-no-pre,no-such-knob]", "-c",
                           str(src), "-o", str(tmp_path / "u.o")], env=mlcc_env(), cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcc: ") and "no-such-knob" in lines[0]
    assert not (tmp_path / "u.o").exists()


def test_plain_clang_is_an_element_too():
    clang_text = "function(indvars,gvn<>),globaldce"
    assert resolve("clang,iroutliner", clang_text) == clang_text + ",iroutliner"
    assert resolve("function(sroa),clang", clang_text) == "function(sroa)," + clang_text
    assert resolve("function(xclang-pass)", clang_text) == "function(xclang-pass)"
    assert passes.wraps_default("clang,globalopt", "z") and passes.eligible("clang,globalopt")
    assert not passes.wraps_default("always-inline,function(sroa)")


REPEATED = """
extern void sink(int, int, int, int);
extern int g1, g2, g3;
void a(int x) { sink(x, g1 + 7, g2 * 3, g3 ^ 5); sink(x + 1, g1 + 7, g2 * 3, g3 ^ 5); }
void b(int x) { sink(x * 2, g1 + 7, g2 * 3, g3 ^ 5); sink(x - 1, g1 + 7, g2 * 3, g3 ^ 5); }
void c(int x) { sink(x ^ 9, g1 + 7, g2 * 3, g3 ^ 5); sink(x | 4, g1 + 7, g2 * 3, g3 ^ 5); }
"""
OUTLINER = ("-mllvm", "-enable-machine-outliner=always")


def _outlined(obj: Path) -> int:
    names = subprocess.run(["llvm-nm-19", str(obj)], check=True, capture_output=True, text=True).stdout
    return names.count("OUTLINED_FUNCTION")


def test_a_codegen_knob_adds_arguments_to_code_generation_only():
    assert codegen_args("clang[gvn-no-pre,machine-outliner]") == OUTLINER
    assert codegen_args("function(sroa),clang[machine-outliner]") == OUTLINER
    assert codegen_args("clang[gvn-no-pre]") == () and codegen_args("default<Oz>") == ()
    assert codegen_args(CLANG) == ()
    assert resolve("clang[machine-outliner]", "function(gvn<>)") == "function(gvn<>)"


def test_the_machine_outliner_knob_reaches_the_driver_and_the_measurement(tmp_path, monkeypatch):
    src = tmp_path / "r.c"
    src.write_text(REPEATED)
    built = {}
    for forced in (CLANG, "clang[machine-outliner]"):
        obj = tmp_path / f"{len(built)}.o"
        subprocess.run(["mlcc", "-Oz", "-c", str(src), "-o", str(obj)], check=True,
                       env=mlcc_env(MLCC_PIPELINE=forced), cwd=tmp_path)
        built[forced] = obj
    assert _outlined(built[CLANG]) == 0 and _outlined(built["clang[machine-outliner]"]) > 0
    # the learning side measures what the driver builds
    bc = tmp_path / "r.bc"
    subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", str(src),
                    "-o", str(bc)], check=True)
    prep = measure.prepare(measure.Unit("r", "p", str(bc), ("-Oz",)), str(tmp_path))
    for forced, obj in built.items():
        assert measure.measure(prep, forced) == object_size(str(obj))
    # ... also when the two share one opt run (the same opt text: a codegen knob apart)
    runs = []
    real_run_opt = pipeline.run_opt
    monkeypatch.setattr(pipeline, "run_opt", lambda *a, **k: runs.append(a[1]) or real_run_opt(*a, **k))
    measurer = measure.Measurer(prep, str(tmp_path))
    shared = {forced: measurer.size(forced) for forced in built}
    assert runs == [prep.clang_pipeline]
    assert shared == {forced: object_size(str(obj)) for forced, obj in built.items()}


@pytest.mark.parametrize("hardening", ["-mretpoline", "-mspeculative-load-hardening", "-mlvi-hardening",
                                       "-mfunction-return=thunk-extern"])
def test_the_machine_outliner_leaves_hardened_code_alone(hardening, tmp_path):
    """LLVM 19 crashes making thunks after outlining, or outlines with a plain `ret`:
    with these flags the knob adds nothing, and the build is clean."""
    assert codegen_args("clang[machine-outliner]", ("-Oz", hardening)) == ()
    src = tmp_path / "r.c"
    src.write_text(REPEATED)
    proc = subprocess.run(["mlcc", "-Oz", hardening, "-c", str(src), "-o", str(tmp_path / "r.o")],
                          env=mlcc_env(MLCC_PIPELINE="clang[machine-outliner]"), cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == ""
    assert _outlined(tmp_path / "r.o") == 0


def test_local_edits_add_the_knobs_of_the_units_target():
    """A search on a Thumb unit may add Arm's knobs; one on an x86-64 unit never does."""
    import random

    start = passes.parse_simple("clang[mergefunc]")
    space = passes.load_space()

    def added(target: str) -> set[str]:
        rng = random.Random(5)
        children = [passes.mutate(rng, start, space, "z", target) for _ in range(400)]
        return {k for c in children for p in c if p.name.startswith("clang[")
                for k in knobs.knobs_of(p.name)}

    assert "arm-promote-constant" in added("thumbv7m")
    assert "arm-promote-constant" not in added("x86_64")
