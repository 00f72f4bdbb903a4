"""Table-driven tests of `mlcc.plan.make_plan`: parsed command -> plan.

Each test runs in a fresh directory holding the sources the tables name
(the planner checks that inputs exist and that output directories do).
Expected dependency-file names and targets are clang-19's (`clang-19 -### -MD ...`).
"""

from __future__ import annotations

import shlex

import pytest

from mlcc.args import parse
from mlcc.plan import (CODEGEN_QUIET, FRONTEND_NO_PASSES, QUIET_UNUSED, OptimizePlan, PlainClang,
                       dependency_args, make_plan)

DRIVERS = {"mlcc": "c", "mlcc++": "c++"}
SOURCE = "int f(void) { return 1; }\n"
WORKSPACE = {
    "foo.c": SOURCE, "a.c": SOURCE, "b.c": SOURCE, "dir/foo.c": SOURCE, "src.txt": SOURCE,
    ".hidden": SOURCE, "..c": SOURCE, "file.": SOURCE,
    "x.s": "", "y.S": "", "z.ll": "", "foo.h": "", "main.o": "", "libx.a": "",
    "inc/.keep": "", "out/.keep": "",
}


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A directory with the sources, objects and directories the tables use."""
    for name, text in WORKSPACE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan_for(line: str):
    name, *argv = shlex.split(line)
    return make_plan(parse(argv, DRIVERS[name]))


def optimize_plan(line: str) -> OptimizePlan:
    plan = plan_for(line)
    assert isinstance(plan, OptimizePlan), plan
    return plan


def contains_run(seq, run) -> bool:
    """True when `run` appears in `seq` as consecutive items."""
    seq, run = list(seq), list(run)
    return any(seq[i:i + len(run)] == run for i in range(len(seq) - len(run) + 1))


def _params(cases, bugs=None):
    bugs = bugs or {}
    for case_id, *rest in cases:
        marks = [pytest.mark.xfail(reason=bugs[case_id], strict=True)] if case_id in bugs else []
        yield pytest.param(*rest, id=case_id, marks=marks)


# --- Plain clang, and why --------------------------------------------------

# id, command line, reason
PLAIN_CASES = [
    ("no-O", "mlcc -c foo.c", "-O0"),
    ("O0", "mlcc -O0 -c foo.c", "-O0"),
    ("O2", "mlcc -O2 -c foo.c", "-O2"),
    ("O3", "mlcc -O3 foo.c -o prog", "-O3"),
    ("Ofast", "mlcc -Ofast -c foo.c", "-Ofast"),
    ("Oz-then-O2", "mlcc -Oz -c foo.c -O2", "-O2"),
    ("flto-S", "mlcc -Oz -flto -S foo.c", "-flto with -S"),
    ("flto-thin-S", "mlcc -Oz -flto=thin -S foo.c", "-flto with -S"),
    ("fat-lto", "mlcc -Oz -flto -ffat-lto-objects -c foo.c", "-ffat-lto-objects"),
    ("flto-O2", "mlcc -O2 -flto -c foo.c", "-O2"),
    ("emit-llvm", "mlcc -Oz -emit-llvm -c foo.c", "-emit-llvm"),
    ("save-temps", "mlcc -Oz -save-temps -c foo.c", "-save-temps"),
    ("save-temps-obj", "mlcc -Oz -save-temps=obj -c foo.c", "-save-temps"),
    ("coverage", "mlcc -Oz --coverage -c foo.c", "--coverage"),
    ("profile-instr-generate", "mlcc -Oz -fprofile-instr-generate -c foo.c", "profile flags"),
    ("split-dwarf", "mlcc -Oz -g -gsplit-dwarf -c foo.c", "-gsplit-dwarf"),
    ("sanitize", "mlcc -Oz -fsanitize=address -c foo.c", "-fsanitize"),
    ("diagnostics-format", "mlcc -Oz -fdiagnostics-format=sarif -c foo.c", "-fdiagnostics-format"),
    ("Xclang", "mlcc -Oz -Xclang -fdump-record-layouts -c foo.c", "-Xclang"),
    ("mllvm", "mlcc -Oz -mllvm -inline-threshold=5 -c foo.c", "-mllvm"),
    ("asm-s", "mlcc -Oz -c x.s", "assembler input"),
    ("asm-S", "mlcc -Oz -c y.S", "assembler-with-cpp input"),
    ("ir", "mlcc -Oz -c z.ll", "ir input"),
    ("header", "mlcc -Oz -c foo.h", "c-header input"),
    ("E", "mlcc -Oz -E foo.c", "preprocess"),
    ("M", "mlcc -Oz -M foo.c", "preprocess"),
    ("syntax-only", "mlcc -Oz -fsyntax-only foo.c", "syntax-only"),
    ("dry-run", "mlcc -Oz -### -c foo.c", "dry-run"),
    ("verbose", "mlcc -Oz -v -c foo.c", "-v"),
    ("lone-v", "mlcc -v", "query"),
    ("version", "mlcc --version", "query"),
    ("stdin", "mlcc -Oz -x c -c - -o x.o", "standard input"),
    ("missing-input", "mlcc -Oz -c missing.c", "input not found"),
    ("o-with-two-sources-c", "mlcc -Oz -c a.c b.c -o x.o", "-o with several sources"),
    ("o-with-two-sources-S", "mlcc -Oz -S a.c b.c -o x.s", "-o with several sources"),
    ("output-dir-missing", "mlcc -Oz -c foo.c -o nodir/foo.o", "output directory missing or not writable"),
    ("link-output-dir-missing", "mlcc -Oz foo.c -o nodir/prog", "output directory missing or not writable"),
    ("output-is-dir", "mlcc -Oz -c foo.c -o out", "output is a directory"),
    ("linker-input-with-c", "mlcc -Oz -c foo.c main.o", "linker input in a compile-only command"),
    ("no-source", "mlcc -Oz main.o libx.a -o prog", "no source to compile"),
    ("missing-object", "mlcc -Oz foo.c missing.o -o prog", "linker input not found"),
    ("double-dash", "mlcc -Oz -c -- foo.c", "--"),
    ("flag-without-argument", "mlcc -Oz -c foo.c -o", "-o without its argument"),
    ("record-command-line", "mlcc -Oz -frecord-command-line -c foo.c", "-frecord-command-line"),
    ("grecord-command-line", "mlcc -Oz -g -grecord-command-line -c foo.c", "-grecord-command-line"),
    ("config-file", "mlcc -Oz --config=x.cfg -c foo.c", "--config"),
    ("config-file-separate", "mlcc -Oz --config x.cfg -c foo.c", "--config"),
    ("mcpu-help", "mlcc -Oz -mcpu=help -c foo.c", "-mcpu=help"),
    ("interface-stubs", "mlcc -Oz -emit-interface-stubs -c foo.c", "-emit-interface-stubs"),
    ("alias-preprocess", "mlcc -Oz --preprocess foo.c", "preprocess"),
    ("alias-verbose", "mlcc -Oz --verbose -c foo.c", "-v"),
]


@pytest.mark.parametrize("line, reason", list(_params(PLAIN_CASES)))
def test_plain_clang(line, reason):
    assert plan_for(line) == PlainClang(reason)


# --- Optimizing plans: units, outputs, languages ---------------------------

# id, command line, [(source, language, output)], emit assembly
UNIT_CASES = [
    ("c-default-output", "mlcc -Oz -c dir/foo.c", [("dir/foo.c", "c", "foo.o")], False),
    ("S-default-output", "mlcc -Oz -S dir/foo.c", [("dir/foo.c", "c", "foo.s")], True),
    ("Os-c", "mlcc -Os -c foo.c", [("foo.c", "c", "foo.o")], False),
    ("c-two-sources", "mlcc -Oz -c a.c dir/foo.c", [("a.c", "c", "a.o"), ("dir/foo.c", "c", "foo.o")], False),
    ("c-with-o", "mlcc -Oz -c foo.c -o out/x.o", [("foo.c", "c", "out/x.o")], False),
    ("S-to-stdout", "mlcc -Oz -S foo.c -o -", [("foo.c", "c", "-")], True),
    ("link-units-have-no-output", "mlcc -Oz a.c b.c -o prog", [("a.c", "c", None), ("b.c", "c", None)], False),
    ("x-c-any-suffix", "mlcc -Oz -x c -c src.txt", [("src.txt", "c", "src.o")], False),
    ("cxx-driver", "mlcc++ -Oz -c a.c", [("a.c", "c++", "a.o")], False),
    ("alias-compile", "mlcc -Oz --compile dir/foo.c", [("dir/foo.c", "c", "foo.o")], False),
    ("alias-assemble", "mlcc -Oz --assemble foo.c", [("foo.c", "c", "foo.s")], True),
    # llvm::sys::path::stem cuts at a leading dot too
    ("dot-file", "mlcc -Oz -x c -c .hidden", [(".hidden", "c", ".o")], False),
    ("dot-dot-file", "mlcc -Oz -c ..c", [("..c", "c", "..o")], False),
    ("trailing-dot", "mlcc -Oz -x c -c file.", [("file.", "c", "file.o")], False),
]


@pytest.mark.parametrize("line, units, emit_assembly", list(_params(UNIT_CASES)))
def test_units(line, units, emit_assembly):
    plan = optimize_plan(line)
    assert [(u.source, u.language, u.output) for u in plan.units] == units
    assert all(u.emit_assembly is emit_assembly for u in plan.units)


# Command lines whose plans must all respect the front-end/code-generation rules below.
OPTIMIZE_LINES = [
    "mlcc -Oz -c dir/foo.c",
    "mlcc -Os -c foo.c -o out/foo.o -Iinc -I inc -DX=1 -D Y -include foo.h -isystem inc",
    "mlcc -Oz -fPIC -ffunction-sections -fdata-sections -mcmodel=small -march=x86-64-v2 -g -c foo.c",
    "mlcc -Oz -MD -MP -MF out/foo.d -MT foo.o -c foo.c -Iinc",
    "mlcc -Oz -xc -c src.txt -o out/src.o",
    "mlcc -Oz -S a.c b.c -DX",
    "mlcc -Oz -fPIC -Iinc a.c -shared main.o -Wl,-soname,liba.so -L. -lm -l z -o liba.so",
    "mlcc++ -Os -std=c++17 -DNDEBUG a.c b.c libx.a -o prog",
]

PREPROCESSOR_TOKENS = ("-I", "-D", "-U", "-include", "-isystem")
TARGET_FLAGS = ("-fPIC", "-ffunction-sections", "-fdata-sections", "-mcmodel=small",
                "-march=x86-64-v2", "-g", "-Oz", "-Os")


def _flags(line: str, prefixes) -> list[str]:
    """Tokens of the command line that start with one of `prefixes` (and the value after a bare one)."""
    tokens = shlex.split(line)[1:]
    out = []
    for i, tok in enumerate(tokens):
        if tok in prefixes and i + 1 < len(tokens):
            out += [tok, tokens[i + 1]]
        elif tok.startswith(prefixes):
            out.append(tok)
    return out


@pytest.mark.parametrize("line", OPTIMIZE_LINES)
def test_frontend_args(line):
    plan = optimize_plan(line)
    linking = plan.link_args is not None
    for unit in plan.units:
        args = unit.frontend_args
        assert "-o" not in args and "-S" not in args
        assert args.count("-c") == 1
        assert contains_run(args, FRONTEND_NO_PASSES)
        assert contains_run(args, ["-emit-llvm", "-c"])
        assert contains_run(args, _flags(line, PREPROCESSOR_TOKENS))  # kept, in order
        if linking:
            assert not [a for a in args if a.startswith(("-l", "-L", "-Wl,")) or a == "-shared"]


@pytest.mark.parametrize("line", OPTIMIZE_LINES)
def test_codegen_args(line):
    plan = optimize_plan(line)
    for unit in plan.units:
        args = unit.codegen_args
        assert not [a for a in args if a.startswith(("-I", "-D", "-U", "-M", "-include", "-isystem"))]
        assert not {"-c", "-S", "-o", "-x", "-xc", "-shared", "-emit-llvm"} & set(args)
        kept = [a for a in shlex.split(line) if a in TARGET_FLAGS]
        assert [a for a in args if a in TARGET_FLAGS] == kept


def test_frontend_and_codegen_args_exactly():
    plan = optimize_plan("mlcc -Oz -fPIC -ffunction-sections -mcmodel=small -march=x86-64-v2 -g "
                         "-Iinc -DX=1 -D Y -include foo.h -MMD -MP -c dir/foo.c -o out/x.o")
    (unit,) = plan.units
    assert unit.frontend_args == (
        "-Oz", "-fPIC", "-ffunction-sections", "-mcmodel=small", "-march=x86-64-v2", "-g",
        "-Iinc", "-DX=1", "-D", "Y", "-include", "foo.h", "-MMD", "-MP",
        "-MF", "out/x.d", "-MQ", "out/x.o",
        "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c")
    assert unit.codegen_args == (
        "-Oz", "-fPIC", "-ffunction-sections", "-mcmodel=small", "-march=x86-64-v2", "-g",
        *CODEGEN_QUIET)
    assert plan.link_args is None


def test_link_mode_frontend_drops_link_flags_exactly():
    plan = optimize_plan("mlcc -Oz -fPIC -Iinc -DX=1 a.c -shared -Wl,-soname,x -L. -lm -o liba.so")
    (unit,) = plan.units
    assert unit.frontend_args == ("-Oz", "-fPIC", "-Iinc", "-DX=1", *FRONTEND_NO_PASSES, "-emit-llvm", "-c")
    assert unit.codegen_args == ("-Oz", "-fPIC", *CODEGEN_QUIET)


def test_forced_language_goes_to_the_frontend_only():
    plan = optimize_plan("mlcc -Oz -x c++ a.c -x none b.c -o prog")
    assert [u.frontend_args[-2:] for u in plan.units] == [("-x", "c++"), ("-emit-llvm", "-c")]
    assert [u.language for u in plan.units] == ["c++", "c"]
    assert all("-x" not in u.codegen_args for u in plan.units)


# --- Dependency files ------------------------------------------------------

# id, command line, [mlcc's added -MF/-MQ per unit]; clang-19 writes the same file and target.
DEPENDENCY_CASES = [
    ("none", "mlcc -Oz -c foo.c", [()]),
    ("MD-default", "mlcc -Oz -MD -c dir/foo.c", [("-MF", "foo.d", "-MQ", "foo.o")]),
    ("MMD-default", "mlcc -Oz -MMD -c dir/foo.c", [("-MF", "foo.d", "-MQ", "foo.o")]),
    ("MD-S-target-is-object", "mlcc -Oz -MD -S dir/foo.c", [("-MF", "foo.d", "-MQ", "foo.o")]),
    ("MD-with-o", "mlcc -Oz -MD -c dir/foo.c -o out/x.o", [("-MF", "out/x.d", "-MQ", "out/x.o")]),
    ("MD-o-without-suffix", "mlcc -Oz -MMD -c foo.c -o out/x", [("-MF", "out/x.d", "-MQ", "out/x")]),
    ("MD-o-make-specials", "mlcc -Oz -MD -c foo.c -o 'out/x y$.o'",
     [("-MF", "out/x y$.d", "-MQ", "out/x y$.o")]),
    ("MD-o-stdout", "mlcc -Oz -MD -c foo.c -o -", [("-MF", "-.d", "-MQ", "-")]),
    ("MF-given", "mlcc -Oz -MD -MF my.d -c foo.c", [("-MQ", "foo.o")]),
    ("MT-given", "mlcc -Oz -MD -MT t -c foo.c", [("-MF", "foo.d")]),
    ("MQ-given", "mlcc -Oz -MMD -MQ t -c foo.c -o out/x.o", [("-MF", "out/x.d")]),
    ("MF-and-MT-given", "mlcc -Oz -MD -MF my.d -MT t -c foo.c", [()]),
    ("two-sources", "mlcc -Oz -MD -c a.c dir/foo.c",
     [("-MF", "a.d", "-MQ", "a.o"), ("-MF", "foo.d", "-MQ", "foo.o")]),
    ("link-without-o", "mlcc -Oz -MD a.c", [("-MF", "a.d", "-MQ", "a.o")]),
    ("link-with-o", "mlcc -Oz -MD a.c b.c -o prog",
     [("-MF", "prog.d", "-MQ", "prog"), ("-MF", "prog.d", "-MQ", "prog")]),
    # -Wp,-MD,FILE is -MD -MF FILE to clang: the target must still be the object.
    ("Wp-MD", "mlcc -Oz -c foo.c -Wp,-MD,foo.d", [("-MQ", "foo.o")]),
    ("Wp-MMD-with-o", "mlcc -Oz -c foo.c -Wp,-MMD,out/x.d -o out/x.o", [("-MQ", "out/x.o")]),
]

PLANNER_BUGS: dict[str, str] = {}


@pytest.mark.parametrize("line, expected", list(_params(DEPENDENCY_CASES, PLANNER_BUGS)))
def test_dependency_args(line, expected):
    plan = optimize_plan(line)
    assert [dependency_args(plan.command, u.source) for u in plan.units] == expected
    for unit, extra in zip(plan.units, expected):
        assert contains_run(unit.frontend_args, list(extra) + list(FRONTEND_NO_PASSES))


# --- The link --------------------------------------------------------------

# id, command line, link arguments (ints stand for the units' objects)
LINK_CASES = [
    ("c-mode-has-no-link", "mlcc -Oz -c a.c", None),
    ("single", "mlcc -Oz a.c", ("-Oz", 0, QUIET_UNUSED)),
    ("order-kept", "mlcc -Oz a.c main.o -lm b.c libx.a -L. -Wl,--gc-sections -o prog",
     ("-Oz", 0, "main.o", "-lm", 1, "libx.a", "-L.", "-Wl,--gc-sections", "-o", "prog", QUIET_UNUSED)),
    ("preprocessor-flags-dropped", "mlcc -Os -Iinc -DX -MD -MF a.d -include foo.h a.c -o prog",
     ("-Os", 0, "-o", "prog", QUIET_UNUSED)),
    ("x-dropped", "mlcc -Oz -x c src.txt -x none main.o -o prog",
     ("-Oz", 0, "main.o", "-o", "prog", QUIET_UNUSED)),
    ("shared", "mlcc -Oz -fPIC -shared a.c -l z -o liba.so",
     ("-Oz", "-fPIC", "-shared", 0, "-l", "z", "-o", "liba.so", QUIET_UNUSED)),
    ("cxx", "mlcc++ -Os b.c a.c -o prog", ("-Os", 0, 1, "-o", "prog", QUIET_UNUSED)),
]


@pytest.mark.parametrize("line, link_args", list(_params(LINK_CASES)))
def test_link_args(line, link_args):
    assert optimize_plan(line).link_args == link_args


def test_link_only_flags_stay_out_of_the_front_end():
    plan = optimize_plan("mlcc -Oz --emit-static-lib -nolibc a.c b.c -o libab.a")
    for unit in plan.units:
        assert "--emit-static-lib" not in unit.frontend_args and "-nolibc" not in unit.frontend_args
    assert "--emit-static-lib" in plan.link_args and "-nolibc" in plan.link_args


def test_response_files_too_long_to_expand_go_to_clang(tmp_path):
    (tmp_path / "small.rsp").write_text("-DX=1 -Oz")
    assert isinstance(plan_for("mlcc -c foo.c @small.rsp"), OptimizePlan)
    (tmp_path / "big.rsp").write_text(" ".join(f"-DMACRO_{i:07d}=1" for i in range(40_000)) + " -Oz")
    assert plan_for("mlcc -c foo.c @big.rsp") == PlainClang("response files too long to expand")


# --- Link-time optimization (mlcc/lto.py) -----------------------------------

@pytest.mark.parametrize("line, kind", [
    ("mlcc -Oz -flto -c foo.c", "full"),
    ("mlcc -Oz -flto=full -c foo.c", "full"),
    ("mlcc -Os -flto=thin -c foo.c", "thin"),
    ("mlcc -Oz -flto=thin -flto -c foo.c", "full"),   # the last one counts, as in clang
    ("mlcc -Oz -flto -fno-lto -c foo.c", None),
    ("mlcc -Oz -c foo.c", None),
])
def test_lto_units_say_which_lto(line, kind):
    plan = optimize_plan(line)
    assert [u.lto for u in plan.units] == [kind] and plan.lto == kind


def test_lto_link_of_objects_alone_is_an_lto_link(tmp_path):
    from mlcc.lto import LtoLink
    for name in ("a.o", "b.o"):
        (tmp_path / name).write_bytes(b"")
    plan = plan_for("mlcc -Oz -flto=thin -fuse-ld=lld a.o b.o -o prog")
    assert isinstance(plan, LtoLink) and plan.kind == "thin"
    assert plan_for("mlcc -Oz a.o b.o -o prog") == PlainClang("no source to compile")
    assert plan_for("mlcc -O2 -flto a.o b.o -o prog") == PlainClang("-O2")


@pytest.mark.parametrize("line, lld", [
    ("mlcc -Oz -flto -fuse-ld=lld a.c", True),
    ("mlcc -Oz -flto -fuse-ld=/usr/bin/ld.lld-19 a.c", True),
    ("mlcc -Oz -flto --ld-path=/usr/lib/llvm-19/bin/ld.lld a.c", True),
    ("mlcc -Oz -flto -fuse-ld=lld -fuse-ld=bfd a.c", False),
    ("mlcc -Oz -flto a.c", False),
])
def test_which_links_are_lld(line, lld):
    from mlcc.lto import linker
    assert (linker(parse(shlex.split(line)[1:], "c")) == "lld") is lld


def test_a_thinlto_cache_gets_a_directory_per_mlcc_options():
    from mlcc.lto import with_private_cache
    argv = ["-Wl,--thinlto-cache-dir=cache,-O2", 0, "-Xlinker", "--thinlto-cache-dir=c2", "-o", "p"]
    one = with_private_cache(argv, ["-Xlinker", "--lto-newpm-passes=a"])
    other = with_private_cache(argv, ["-Xlinker", "--lto-newpm-passes=b"])
    sub = one[0].split(",")[1].split("/")[-1]
    assert sub.startswith("mlcc-") and one[0] == f"-Wl,--thinlto-cache-dir=cache/{sub},-O2"
    assert one[3] == f"--thinlto-cache-dir=c2/{sub}" and one[1] == 0 and one[4:] == ["-o", "p"]
    assert other[0] != one[0]


# --- Profiled builds ---------------------------------------------------------

@pytest.mark.parametrize("line, profiled", [
    ("mlcc -Os -fprofile-instr-use=code.profdata -c foo.c", True),
    ("mlcc -Oz -fprofile-use=code.profdata -c foo.c", True),
    ("mlcc -Os -fprofile-sample-use=code.prof -fsample-profile-use-profi -c foo.c", True),
    ("mlcc -Os -fprofile-sample-accurate -c foo.c", False),
])
def test_profile_use_takes_mlccs_route(line, profiled):
    assert [u.profiled for u in optimize_plan(line).units] == [profiled]


@pytest.mark.parametrize("line", ["mlcc -Os -fprofile-instr-generate -c foo.c",
                                  "mlcc -Os -fprofile-generate -c foo.c",
                                  "mlcc -Os -fprofile-use=a.profdata -fprofile-generate -c foo.c"])
def test_instrumenting_builds_stay_clangs(line):
    assert plan_for(line) == PlainClang("profile flags")
