"""Tests of mlcc.features: schema, known counts on small programs, determinism,
errors, and agreement with a slow one-instruction-at-a-time reference."""

from __future__ import annotations

import ctypes
import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mlcc import features
from mlcc.features import FEATURE_NAMES, FeatureError, extract_feature_dict, extract_features

CLANG = "clang-19"
needs_clang = pytest.mark.skipif(shutil.which(CLANG) is None, reason="clang-19 not installed")

AUTOPHASE = """BBNumArgsHi BBNumArgsLo onePred onePredOneSuc onePredTwoSuc oneSuccessor
twoPred twoPredOneSuc twoEach twoSuccessor morePreds BB03Phi BBHiPhi BBNoPhi BeginPhi
BranchCount returnInt CriticalCount NumEdges const32Bit const64Bit numConstZeroes
numConstOnes UncondBranches binaryConstArg NumAShrInst NumAddInst NumAllocaInst
NumAndInst BlockMid BlockLow NumBitCastInst NumBrInst NumCallInst NumGetElementPtrInst
NumICmpInst NumLShrInst NumLoadInst NumMulInst NumOrInst NumPHIInst NumRetInst
NumSExtInst NumSelectInst NumShlInst NumStoreInst NumSubInst NumTruncInst NumXorInst
NumZExtInst TotalBlocks TotalInsts TotalMemInst TotalFuncs ArgsPhi testUnary""".split()

# A loop around a switch; one internal helper called once; one global.
LOOP_SWITCH = r"""
int g;
static int helper(int x) { return x * 3; }
int f(int n) {
  int s = 0;
  for (int i = 0; i < n; i++) {
    switch (i % 4) {
      case 0: s += helper(i); break;
      case 1: s -= 2; break;
      case 2: s ^= i; break;
      default: s += g;
    }
  }
  return s;
}
"""

# Many shapes at once: phis (?:, &&), nested loops, a goto loop, function
# pointers, varargs, inline asm, 64-bit and boolean constants, switch
# fall-through, string literals, a function table, a VLA.
MIXED = r"""
#include <stdarg.h>
#include <string.h>
struct ops { int (*fn)(int); long k; };
static int twice(int x) { return 2 * x; }
static int only_in_table(int x) { return x - 1; }
int (*table[])(int) = { only_in_table };
extern int ext(int);
const char *names[] = { "zero", "one", "two" };
static long long big = 0x123456789LL;
int sum(int n, ...) {
  va_list ap; va_start(ap, n);
  int s = 0;
  for (int i = 0; i < n; i++) s += va_arg(ap, int);
  va_end(ap);
  return s;
}
int mixed(int a, int b, const char *p, unsigned long long u) {
  struct ops o;
  o.fn = twice;
  o.k = 7;
  int r = (a && b) ? o.fn(a) : ext(b);
  int vla[a > 0 ? a : 1];
  for (int i = 0; i < a; i++)
    for (int j = 0; j < b; j++)
      if ((i ^ j) & 1) r += i * j; else r -= (int)(u >> 3);
  int k = 0;
again:
  if (k++ < 3) goto again;
  switch (r & 7) { case 1: r++; case 2: r += 2; break; case 5: return -1; default: break; }
  vla[0] = r;
  __asm__ volatile ("" ::: "memory");
  r += (int)strlen(p) + (p[0] == 'x' || p[1] == 'y');
  r += sum(3, 1, 2, 3) + (int)big + (r > 0 ? 1 : 0) + vla[0];
  unsigned char c = (unsigned char)r;
  r += c + (short)a + (b < 0);
  return r * (int)o.k;
}
"""


# C++ with exceptions: invoke, landingpad, resume, cleanups.
CXX_EH = r"""
struct Err { int code; };
struct Guard { int *p; ~Guard() { if (p) *p += 1; } };
int may_throw(int x) { if (x < 0) throw Err{x}; return x * 2; }
int run(int n) {
  int total = 0;
  for (int i = -2; i < n; i++) {
    try { Guard g{&total}; total += may_throw(i); }
    catch (const Err &e) { total -= e.code; }
  }
  return total;
}
"""


def compile_bc(tmp_path: Path, source: str, *flags: str, name: str = "unit", suffix: str = ".c") -> Path:
    """Unoptimised bitcode the way mlcc's front end produces it."""
    src = tmp_path / f"{name}{suffix}"
    src.write_text(source)
    bc = tmp_path / f"{name}.bc"
    opt = [f for f in flags if f.startswith("-O")] or ["-Oz"]
    rest = [f for f in flags if not f.startswith("-O")]
    subprocess.run([CLANG, *opt, *rest, "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", str(src), "-o", str(bc)],
                   check=True, capture_output=True)
    return bc


# ---------------------------------------------------------------- schema

def test_schema_file_is_data_with_unique_names():
    data = json.loads((Path(features.__file__).parent / "data" / "feature-schema.json").read_text())
    assert set(data) == {"schema_version", "features"}
    assert data["schema_version"] == features.SCHEMA_VERSION == 1
    assert tuple(data["features"]) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert 120 < len(FEATURE_NAMES) < 200


def test_schema_has_autophase_opcodes_and_logs():
    assert list(FEATURE_NAMES[:56]) == AUTOPHASE
    for op in ("add", "call", "switch", "getelementptr", "phi", "freeze", "callbr", "atomicrmw"):
        assert f"inst_{op}" in FEATURE_NAMES
    assert "inst_other" in FEATURE_NAMES
    for name in FEATURE_NAMES:
        if name.startswith("log1p_"):
            assert name[len("log1p_"):] in FEATURE_NAMES


def test_schema_hash_is_stable():
    h = features.schema_hash()
    assert h == features.schema_hash()
    assert len(h) == 16 and int(h, 16) >= 0
    # Pinned: a change of names, order or version must be deliberate (and
    # bump schema_version, since trained models are tied to the hash).
    assert h == "af493f26c3a0d27d"


# ---------------------------------------------------------------- vectors

@needs_clang
def test_vector_shape_dtype_and_values(tmp_path):
    vec = extract_features(compile_bc(tmp_path, LOOP_SWITCH))
    assert isinstance(vec, np.ndarray)
    assert vec.dtype == np.float32
    assert vec.shape == (len(FEATURE_NAMES),)
    assert np.all(np.isfinite(vec)) and np.all(vec >= 0)


@needs_clang
def test_known_counts_loop_with_switch(tmp_path):
    d = extract_feature_dict(compile_bc(tmp_path, LOOP_SWITCH))
    assert d["funcs_defined"] == 2
    assert d["TotalFuncs"] >= 2  # plus intrinsic declarations
    assert d["funcs_declared"] == d["TotalFuncs"] - 2
    assert d["TotalBlocks"] == 12  # f: 11, helper: 1
    assert d["NumEdges"] == 14
    assert d["inst_switch"] == 1
    assert d["switch_cases"] == 3
    assert d["moreSuccessors"] == 1
    assert d["morePreds"] == 1  # the block after the switch
    assert d["back_edges"] == 1 and d["loop_headers"] == 1
    assert d["NumRetInst"] == d["inst_ret"] == 2
    assert d["NumAllocaInst"] == 4
    assert d["NumBrInst"] == 9 and d["UncondBranches"] == 8
    assert d["NumPHIInst"] == 0 and d["BBNoPhi"] == 12
    assert d["funcs_minsize"] == 2 and d["funcs_optsize"] == 2
    assert d["funcs_optnone"] == 0
    assert d["funcs_internal"] == 1
    assert d["funcs_internal_called_once"] == 1
    assert d["calls_direct_defined"] == 1
    assert d["returnInt"] == 1
    assert d["gvars_defined"] == 1 and d["gvars_bytes"] == 4
    assert d["max_func_blocks"] == 11
    assert d["TotalInsts"] == sum(d[n] for n in FEATURE_NAMES if n.startswith("inst_"))
    assert d["inst_other"] == 0
    assert d["log1p_TotalInsts"] == pytest.approx(math.log1p(d["TotalInsts"]), rel=1e-6)


@needs_clang
def test_minsize_only_at_oz(tmp_path):
    oz = extract_feature_dict(compile_bc(tmp_path, LOOP_SWITCH, "-Oz", name="oz"))
    o2 = extract_feature_dict(compile_bc(tmp_path, LOOP_SWITCH, "-O2", name="o2"))
    o0 = extract_feature_dict(compile_bc(tmp_path, LOOP_SWITCH, "-O0", name="o0"))
    assert oz["funcs_minsize"] == 2 and oz["funcs_optsize"] == 2
    assert o2["funcs_minsize"] == 0 and o2["funcs_optsize"] == 0
    assert o0["funcs_optnone"] == 2 and o0["funcs_noinline"] == 2
    assert o2["TotalInsts"] == oz["TotalInsts"]


@needs_clang
def test_deterministic(tmp_path):
    bc = compile_bc(tmp_path, MIXED)
    a = extract_features(bc)
    b = extract_features(bc)
    copy = tmp_path / "elsewhere" / "copy.bc"
    copy.parent.mkdir()
    shutil.copy(bc, copy)
    c = extract_features(str(copy))
    assert a.tobytes() == b.tobytes() == c.tobytes()


@needs_clang
def test_debug_info_does_not_change_features(tmp_path):
    plain = extract_features(compile_bc(tmp_path, MIXED, name="plain"))
    debug = extract_features(compile_bc(tmp_path, MIXED, "-g", name="debug"))
    assert plain.tobytes() == debug.tobytes()


@needs_clang
def test_mixed_program_extras(tmp_path):
    d = extract_feature_dict(compile_bc(tmp_path, MIXED))
    assert d["NumPHIInst"] >= 2 and d["BeginPhi"] >= 2 and d["ArgsPhi"] >= 4
    assert d["back_edges"] >= 4  # sum's loop, two nested loops, the goto loop
    assert d["loop_headers"] == d["back_edges"]
    assert d["funcs_vararg"] == 1
    assert d["calls_indirect"] >= 1 and d["calls_inline_asm"] == 1
    assert d["funcs_address_taken"] >= 1  # twice, stored into the struct
    # only_in_table: referenced from a global initializer only (which the
    # walk does not see), never called directly.
    assert d["funcs_internal"] == 2 and d["funcs_internal_no_direct_call"] == 1
    assert d["gvars_private"] >= 3 and d["gvars_private_bytes"] >= len("zero one two")
    assert d["gvars_internal"] == 1  # big
    assert d["const64Bit"] >= 1
    assert d["inst_va_arg"] + d["calls_intrinsic"] >= 1
    assert d["inst_select"] >= 0 and d["switch_cases"] == 3


@needs_clang
def test_module_without_functions(tmp_path):
    d = extract_feature_dict(compile_bc(tmp_path, "extern int x;\nint y = 3;\nint *p = &x;\n"))
    assert d["funcs_defined"] == 0 and d["TotalInsts"] == 0 and d["TotalBlocks"] == 0
    assert d["gvars_defined"] == 2 and d["gvars_declared"] == 1


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100, b"BC\xc0\xde\x35\x14\x00\x00",
                                     b"; ModuleID = 'x'\ndefine void @f() {\n  ret void\n}\n"])
def test_bad_file_raises_feature_error(tmp_path, content):
    bad = tmp_path / "bad.bc"
    bad.write_bytes(content)
    with pytest.raises(FeatureError) as info:
        extract_features(bad)
    msg = str(info.value)
    assert "\n" not in msg and "bad.bc" in msg


def test_missing_file_raises_feature_error(tmp_path):
    with pytest.raises(FeatureError, match="cannot read"):
        extract_features(tmp_path / "missing.bc")
    with pytest.raises(FeatureError):
        extract_features(tmp_path)  # a directory


@needs_clang
def test_truncated_bitcode_raises_feature_error(tmp_path):
    bc = compile_bc(tmp_path, MIXED)
    cut = tmp_path / "cut.bc"
    cut.write_bytes(bc.read_bytes()[: bc.stat().st_size // 2])
    with pytest.raises(FeatureError, match="cannot parse"):
        extract_features(cut)


def test_imports_stay_lean():
    code = ("import sys, mlcc.features as f; "
            "bad = [m for m in ('rich', 'click', 'sklearn', 'onnxruntime', 'scipy') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- reference

_BINARY = set("add fadd sub fsub mul fmul udiv sdiv fdiv urem srem frem shl lshr ashr and or xor".split())
_UNARY = set("trunc zext sext fptoui fptosi uitofp sitofp fptrunc fpext ptrtoint inttoptr bitcast "
             "addrspacecast alloca load va_arg extractvalue freeze fneg".split())
_NOT_CONSTANT = {"argument", "basic_block", "instruction", "inline_asm", "metadata_as_value",
                 "memory_use", "memory_def", "memory_phi"}


def _reference(path: Path) -> Counter:
    """The Autophase counters computed the plain way: llvmlite's object API,
    every operand of every instruction (CompilerGym's InstCount semantics)."""
    import llvmlite.binding as llvm

    def key(v):
        return ctypes.cast(v._ptr, ctypes.c_void_p).value

    ctx = llvm.create_context()
    mod = llvm.parse_bitcode(path.read_bytes(), context=ctx)
    c: Counter = Counter()
    ops: Counter = Counter()
    returns_int = {}
    for f in mod.functions:
        c["TotalFuncs"] += 1
        returns_int[f.name] = f.global_value_type.get_function_return().type_kind.name == "integer"
    for f in mod.functions:
        if f.is_declaration:
            continue
        blocks = list(f.blocks)
        index = {key(b): k for k, b in enumerate(blocks)}
        succ, info = [], []
        for b in blocks:
            insts = list(b.instructions)
            nphi = args = 0
            for pos, i in enumerate(insts):
                op = i.opcode
                ops[op] += 1
                operands = list(i.operands)
                for o in operands:
                    if o.value_kind.name == "constant_int":
                        width, val = o.type.type_width, o.get_constant_value()
                        c["const32Bit"] += width == 32
                        c["const64Bit"] += width == 64
                        c["numConstOnes"] += val == 1
                        c["numConstZeroes"] += val == 0
                if op == "br":
                    c["UncondBranches"] += len(operands) == 1
                if op == "call" and operands[-1].value_kind.name == "function":
                    c["returnInt"] += returns_int[operands[-1].name]
                c["testUnary"] += op in _UNARY
                if op in _BINARY and any(o.value_kind.name not in _NOT_CONSTANT for o in operands[:2]):
                    c["binaryConstArg"] += 1
                if op == "phi":
                    c["BeginPhi"] += pos == 0
                    nphi += 1
                    args += len(operands)
            succ.append([index[key(o)] for o in insts[-1].operands if o.value_kind.name == "basic_block"])
            info.append((len(insts), nphi, args))
        npred = Counter(t for s in succ for t in s)
        for k, s in enumerate(succ):
            ns, np_ = len(s), npred[k]
            c["NumEdges"] += ns
            if ns > 1:
                c["CriticalCount"] += sum(1 for t in s if npred[t] > 1)
            c["oneSuccessor"] += ns == 1
            c["twoSuccessor"] += ns == 2
            c["onePred"] += np_ == 1
            c["twoPred"] += np_ == 2
            c["morePreds"] += np_ > 2
            c["onePredOneSuc"] += np_ == 1 and ns == 1
            c["twoPredOneSuc"] += np_ == 2 and ns == 1
            c["onePredTwoSuc"] += np_ == 1 and ns == 2
            c["twoEach"] += np_ == 2 and ns == 2
            n, nphi, args = info[k]
            c["BBNoPhi"] += nphi == 0
            c["BB03Phi"] += 0 < nphi <= 3
            c["BBHiPhi"] += nphi > 3
            c["BBNumArgsHi"] += args > 5
            c["BBNumArgsLo"] += 1 <= args <= 5
            c["ArgsPhi"] += args
            c["BlockLow"] += n < 15
            c["BlockMid"] += 15 <= n <= 500
            c["TotalBlocks"] += 1
    mod.close()
    ctx.close()
    names = {"AShr": "ashr", "Add": "add", "Alloca": "alloca", "And": "and", "BitCast": "bitcast", "Br": "br",
             "Call": "call", "GetElementPtr": "getelementptr", "ICmp": "icmp", "LShr": "lshr", "Load": "load",
             "Mul": "mul", "Or": "or", "PHI": "phi", "Ret": "ret", "SExt": "sext", "Select": "select",
             "Shl": "shl", "Store": "store", "Sub": "sub", "Trunc": "trunc", "Xor": "xor", "ZExt": "zext"}
    for short, op in names.items():
        c[f"Num{short}Inst"] = ops[op]
    c["BranchCount"] = ops["br"]
    c["TotalInsts"] = sum(ops.values())
    c["TotalMemInst"] = sum(ops[o] for o in ("getelementptr", "load", "store", "call", "invoke", "alloca"))
    for op, n in ops.items():
        c[f"inst_{op}"] = n
    return c


@needs_clang
def test_cxx_exceptions(tmp_path):
    d = extract_feature_dict(compile_bc(tmp_path, CXX_EH, suffix=".cpp"))
    assert d["inst_invoke"] >= 1 and d["inst_landingpad"] >= 1 and d["inst_resume"] >= 1
    # invokes are call sites too (Autophase's NumCallInst/returnInt are not)
    assert d["calls_direct_defined"] + d["calls_direct_declared"] + d["calls_indirect"] >= d["inst_invoke"]
    assert d["back_edges"] == 1


@needs_clang
@pytest.mark.parametrize("source,suffix", [(LOOP_SWITCH, ".c"), (MIXED, ".c"), (CXX_EH, ".cpp")],
                         ids=["loop_switch", "mixed", "cxx_eh"])
def test_fast_path_matches_reference(tmp_path, source, suffix):
    bc = compile_bc(tmp_path, source, suffix=suffix)
    want = _reference(bc)
    got = extract_feature_dict(bc)
    for name in AUTOPHASE:
        assert got[name] == want[name], name
    for name, n in want.items():
        assert got[name] == n, name
