"""mlcc/ir_reader.py: the cheap facts a compile reads without features (the instruction
count that bounds slow passes, cycles, the largest switch), and the code generation
variants single-shot leaves out because of them (knobs.may_differ): a variant left out
must give the default's bytes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc import features, ir_reader, knobs, targets
from mlcc.errors import FeatureError

CLANG = "clang-19"
MLCC = shutil.which("mlcc")
DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo"

STRAIGHT = """
extern int g(int);
int a[8];
int f(int x, int y) {
  if (x > y) x = g(x) + y; else y = g(y) * 3;
  switch (x) { case 0: return g(1); case 1: return g(y); case 5: return y; default: return a[x & 7]; }
}
"""
LOOP = "int s(const int *p, int n) { int t = 0; for (int i = 0; i < n; i++) t += p[i] * i; return t; }\n"
BACKWARD_GOTO = "extern int g(int);\nint w(int x) { again: x = g(x); if (x) goto again; return x; }\n"
SWITCH6 = """
extern int g(int);
int d(int x) {
  switch (x) { case 0: return g(7); case 1: return g(x); case 2: return g(3) + 1; case 3: return g(x + 9);
               case 4: return g(2) * 5; case 5: return g(x) - 4; default: return 0; }
}
"""


def bitcode(tmp_path: Path, source: str, *flags: str, name: str = "unit") -> Path:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}.bc"
    subprocess.run([CLANG, "-Oz", *flags, "-emit-llvm", "-c", str(src), "-o", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("source", sorted(DEMO.glob("*.c")), ids=lambda p: p.name)
def test_the_instruction_count_is_the_features_total(source, tmp_path):
    """`shape` counts instructions as the TotalInsts feature does, before and after opt:
    the bound on slow passes decides the same without features."""
    for flags in (("-Xclang", "-disable-llvm-passes"), ()):
        src = tmp_path / source.name
        shutil.copy(source, src)
        bc = tmp_path / "u.bc"
        subprocess.run([CLANG, "-Oz", *flags, "-emit-llvm", "-c", str(src), "-o", str(bc)],
                       check=True, capture_output=True, cwd=DEMO)
        counted = features.extract_feature_dict(bc)
        assert ir_reader.shape(bc).instructions == counted["TotalInsts"]
        assert ir_reader.shape(bc).largest_function == counted["max_func_insts"]


def test_cycles_and_switches_are_seen(tmp_path):
    straight = ir_reader.shape(bitcode(tmp_path, STRAIGHT, name="a"))
    assert not straight.has_cycle and straight.largest_switch == 3
    assert ir_reader.shape(bitcode(tmp_path, LOOP, name="b")).has_cycle
    assert ir_reader.shape(bitcode(tmp_path, BACKWARD_GOTO, name="c")).has_cycle
    six = ir_reader.shape(bitcode(tmp_path, SWITCH6, name="d"))
    assert six.largest_switch == 6 and not six.has_cycle
    assert ir_reader.shape(bitcode(tmp_path, "int v;\n", name="e")) == ir_reader.Shape(0, 0, False, 0)


@pytest.mark.parametrize("content", [b"", b"not bitcode at all"])
def test_what_is_not_bitcode_is_a_feature_error(tmp_path, content):
    path = tmp_path / "x.bc"
    path.write_bytes(content)
    with pytest.raises(FeatureError):
        ir_reader.shape(path)
    with pytest.raises(FeatureError):
        ir_reader.shape(tmp_path / "missing.bc")


def test_reading_the_shape_imports_no_numpy():
    code = ("import sys, mlcc.ir_reader, mlcc.model, mlcc.decide; "
            "print([m for m in ('numpy', 'onnxruntime', 'mlcc.features') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_a_variant_may_differ_only_where_its_knobs_act():
    none, loops, switch = (ir_reader.Shape(10, 10, False, 3), ir_reader.Shape(10, 10, True, 0),
                           ir_reader.Shape(10, 10, False, knobs.SWITCH_TABLE_CASES))
    base = "clang[machine-outliner,no-lsr,jump-tables-16]"
    lsr_on, tables_4 = knobs.without(base, "no-lsr"), knobs.without(base, "jump-tables-16")
    assert not knobs.may_differ(base, lsr_on, none) and not knobs.may_differ(base, lsr_on, switch)
    assert knobs.may_differ(base, lsr_on, loops)
    assert not knobs.may_differ(base, tables_4, none) and not knobs.may_differ(base, tables_4, loops)
    assert knobs.may_differ(base, tables_4, switch)
    # a knob that may act anywhere, or two different opt pipelines: always built
    assert knobs.may_differ(base, knobs.name([*knobs.knobs_of(base), "no-machine-sink"]), none)
    assert knobs.may_differ(base, "default<Oz>", none)
    assert not knobs.may_differ(base, base, loops)


def _gated_knobs():
    """(target, knob) for every knob with `acts_on` that the target's search may use."""
    out = []
    for knob, edit in knobs.table().items():
        if "acts_on" not in edit:
            continue
        for name in edit.get("targets", targets.table()):
            out.append(pytest.param(name, knob, id=f"{name}-{knob}"))
    return out


@pytest.mark.parametrize("name, knob", _gated_knobs())
def test_a_knob_changes_no_byte_where_it_has_nothing_to_act_on(name, knob, tmp_path):
    """What `acts_on` claims, on the target: the unit without loops and with small
    switches gives the same object with the knob and without it, and a unit with what the
    knob acts on is seen to have it (so single-shot builds the variant there)."""
    target = targets.named(name)
    default = target.default("z")
    base = default if knobs.is_element(default) else "clang[machine-outliner]"
    other = (knobs.without(base, knob) if knob in knobs.knobs_of(base)
             else knobs.name([*knobs.knobs_of(base), knob]))
    work = tmp_path / "w"
    work.mkdir()
    (work / "u.c").write_text(STRAIGHT)
    env = mlcc_env(tmp_path / "cache", XDG_RUNTIME_DIR=str(tmp_path))
    objects = []
    for i, pipe in enumerate((base, other)):
        proc = subprocess.run([MLCC, *target.flags, "-Oz", "-c", "u.c", "-o", f"{i}.o",
                               f"-fmlcc-pipeline={pipe}"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        objects.append((work / f"{i}.o").read_bytes())
    assert objects[0] == objects[1]
    acts_on = knobs.table()[knob]["acts_on"]
    having = bitcode(tmp_path, LOOP if acts_on == "loops" else SWITCH6, *target.flags, name="h")
    assert knobs.may_differ(base, other, ir_reader.shape(having))
    assert not knobs.may_differ(base, other, ir_reader.shape(bitcode(tmp_path, STRAIGHT, *target.flags)))
