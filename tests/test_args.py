"""Table-driven tests of `mlcc.args.parse`: command line -> description.

Every expectation is clang-19's own reading of the command line (checked with
`clang-19 -### ...`). Where mlcc reads it differently the row stays, with the
correct expectation, in PARSER_BUGS: a strict xfail that starts failing (and
must be removed) once the parser is fixed.
"""

from __future__ import annotations

import shlex

import pytest

from mlcc.args import Mode, parse

DRIVERS = {"mlcc": "c", "mlcc++": "c++"}

PRE, SYN, ASM, OBJ, LINK = Mode.PREPROCESS, Mode.SYNTAX_ONLY, Mode.ASSEMBLY, Mode.OBJECT, Mode.LINK
QUERY, DRY = Mode.QUERY, Mode.DRY_RUN


def deps(md=False, system=True, mf=None, targets=()):
    """Expected dependency options: (-MD/-MMD given, system headers listed, -MF, -MT/-MQ)."""
    return (md, system, mf, tuple(targets))


NO_DEPS = deps()
FOO = [("foo.c", "c")]

# id, command line, mode, -o, -O level, inputs with language, dependency options, unsupported
PARSE_CASES = [
    # Modes.
    ("mode-E", "mlcc -E foo.c", PRE, None, "0", FOO, NO_DEPS, []),
    ("mode-M", "mlcc -M foo.c", PRE, None, "0", FOO, NO_DEPS, []),
    ("mode-MM", "mlcc -MM foo.c", PRE, None, "0", FOO, deps(system=False), []),
    ("mode-syntax-only", "mlcc -fsyntax-only foo.c", SYN, None, "0", FOO, NO_DEPS, []),
    ("mode-S", "mlcc -S foo.c", ASM, None, "0", FOO, NO_DEPS, []),
    ("mode-c", "mlcc -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("mode-link", "mlcc foo.c", LINK, None, "0", FOO, NO_DEPS, []),
    ("mode-S-beats-c", "mlcc -S -c foo.c", ASM, None, "0", FOO, NO_DEPS, []),
    ("mode-E-beats-c", "mlcc -c -E foo.c", PRE, None, "0", FOO, NO_DEPS, []),
    ("mode-syntax-only-beats-c", "mlcc -c -fsyntax-only foo.c", SYN, None, "0", FOO, NO_DEPS, []),
    ("mode-dry-run", "mlcc -### -c foo.c -o foo.o", DRY, "foo.o", "0", FOO, NO_DEPS, []),
    # clang's long spellings of the mode and dependency flags.
    ("alias-compile", "mlcc --compile foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("alias-assemble", "mlcc --assemble foo.c", ASM, None, "0", FOO, NO_DEPS, []),
    ("alias-preprocess", "mlcc --preprocess foo.c", PRE, None, "0", FOO, NO_DEPS, []),
    ("alias-dependencies", "mlcc --dependencies foo.c", PRE, None, "0", FOO, NO_DEPS, []),
    ("alias-user-dependencies", "mlcc --user-dependencies foo.c", PRE, None, "0", FOO,
     deps(system=False), []),
    ("alias-write-dependencies", "mlcc --write-dependencies --compile foo.c", OBJ, None, "0", FOO,
     deps(md=True), []),
    ("alias-write-user-dependencies", "mlcc --write-user-dependencies -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, system=False), []),
    ("query-version", "mlcc --version", QUERY, None, "0", [], NO_DEPS, []),
    ("query-lone-v", "mlcc -v", QUERY, None, "0", [], NO_DEPS, []),
    ("v-with-input", "mlcc -v -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("query-dumpmachine", "mlcc -dumpmachine", QUERY, None, "0", [], NO_DEPS, []),
    ("query-dumpversion", "mlcc -dumpversion", QUERY, None, "0", [], NO_DEPS, []),
    ("query-print-file-name", "mlcc -print-file-name=libgcc.a", QUERY, None, "0", [], NO_DEPS, []),
    ("query-print-prog-name", "mlcc -print-prog-name=ld", QUERY, None, "0", [], NO_DEPS, []),
    # -dumpdir takes an argument and compiles (it names -gsplit-dwarf side files).
    ("dumpdir-is-no-query", "mlcc -dumpdir x -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),

    # Spellings of the output.
    ("o-separate", "mlcc -c foo.c -o out.o", OBJ, "out.o", "0", FOO, NO_DEPS, []),
    ("o-joined", "mlcc -c foo.c -oout.o", OBJ, "out.o", "0", FOO, NO_DEPS, []),
    ("o-last-wins", "mlcc -c foo.c -o a.o -o b.o", OBJ, "b.o", "0", FOO, NO_DEPS, []),
    ("o-stdout", "mlcc -S foo.c -o -", ASM, "-", "0", FOO, NO_DEPS, []),
    ("output-long", "mlcc -c foo.c --output=x.o", OBJ, "x.o", "0", FOO, NO_DEPS, []),

    # Dependency files.
    ("MD", "mlcc -MD -c foo.c", OBJ, None, "0", FOO, deps(md=True), []),
    ("MMD", "mlcc -MMD -c foo.c", OBJ, None, "0", FOO, deps(md=True, system=False), []),
    ("MF-separate", "mlcc -MD -MF foo.d -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, mf="foo.d"), []),
    ("MF-joined", "mlcc -MD -MFfoo.d -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, mf="foo.d"), []),
    ("MT-separate", "mlcc -MD -MT tgt -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, targets=[("-MT", "tgt")]), []),
    ("MQ-separate", "mlcc -MD -MQ tgt -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, targets=[("-MQ", "tgt")]), []),
    ("MT-MQ-joined-in-order", "mlcc -MMD -MQa.o -MTb.o -MP -c foo.c", OBJ, None, "0", FOO,
     deps(md=True, system=False, targets=[("-MQ", "a.o"), ("-MT", "b.o")]), []),
    # clang rewrites -Wp,-MD,FILE into -MD -MF FILE (the Linux kernel's spelling).
    ("Wp-MD", "mlcc -c foo.c -Wp,-MD,foo.d", OBJ, None, "0", FOO,
     deps(md=True, mf="foo.d"), []),
    ("Wp-MMD", "mlcc -c foo.c -Wp,-MMD,foo.d", OBJ, None, "0", FOO,
     deps(md=True, system=False, mf="foo.d"), []),

    # Flags with a separate argument must not turn that argument into an input.
    ("sysroot-equals", "mlcc --sysroot=/sr -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("sysroot-separate", "mlcc --sysroot /sr -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("Wl-commas", "mlcc foo.c -Wl,-rpath,/x -o prog", LINK, "prog", "0", FOO, NO_DEPS, []),
    ("I-separate", "mlcc -I inc -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("I-joined", "mlcc -Iinc -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("D-joined", "mlcc -DX=1 -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("D-separate", "mlcc -D X -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("include", "mlcc -include pre.h -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("isystem", "mlcc -isystem sys -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("mllvm", "mlcc -mllvm -inline-threshold=5 -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("Xclang", "mlcc -Xclang -load -Xclang plugin.so -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("target-separate", "mlcc -target x86_64-linux-gnu -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("target-equals", "mlcc --target=aarch64-linux-gnu -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("arch", "mlcc -arch x86_64 -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("mthread-model", "mlcc -mthread-model posix -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("trapv-handler", "mlcc -ftrapv-handler myh -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),

    # -x is positional; `-` is stdin; `--` ends the options.
    ("x-joined", "mlcc -xc -c foo.txt", OBJ, None, "0", [("foo.txt", "c")], NO_DEPS, []),
    ("x-separate", "mlcc -x c -c foo.txt", OBJ, None, "0", [("foo.txt", "c")], NO_DEPS, []),
    ("x-until-none", "mlcc -x c++ a.c b.txt -x none c.c d.o", LINK, None, "0",
     [("a.c", "c++"), ("b.txt", "c++"), ("c.c", "c"), ("d.o", None)], NO_DEPS, []),
    ("x-only-following", "mlcc a.c -x c++ b.c", LINK, None, "0",
     [("a.c", "c"), ("b.c", "c++")], NO_DEPS, []),
    ("language-equals", "mlcc --language=c++ -c foo.c", OBJ, None, "0", [("foo.c", "c++")], NO_DEPS, []),
    ("language-separate", "mlcc --language c++ -c foo.c", OBJ, None, "0", [("foo.c", "c++")], NO_DEPS, []),
    ("stdin-x-c", "mlcc -x c -c - -o x.o", OBJ, "x.o", "0", [("-", "c")], NO_DEPS, []),
    ("stdin-E-is-c", "mlcc -E -", PRE, None, "0", [("-", "c")], NO_DEPS, []),
    ("double-dash", "mlcc -c -- -foo.c", OBJ, None, "0", [("-foo.c", "c")], NO_DEPS, []),
    ("double-dash-o-is-input", "mlcc -c foo.c -- -o", OBJ, None, "0",
     [("foo.c", "c"), ("-o", None)], NO_DEPS, []),

    # -O: every form, the last one wins.
    ("O-none", "mlcc -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("O", "mlcc -O -c foo.c", OBJ, None, "1", FOO, NO_DEPS, []),
    ("O0", "mlcc -O0 -c foo.c", OBJ, None, "0", FOO, NO_DEPS, []),
    ("O1", "mlcc -O1 -c foo.c", OBJ, None, "1", FOO, NO_DEPS, []),
    ("O2", "mlcc -O2 -c foo.c", OBJ, None, "2", FOO, NO_DEPS, []),
    ("O3", "mlcc -O3 -c foo.c", OBJ, None, "3", FOO, NO_DEPS, []),
    ("O4-is-O3", "mlcc -O4 -c foo.c", OBJ, None, "3", FOO, NO_DEPS, []),
    ("Os", "mlcc -Os -c foo.c", OBJ, None, "s", FOO, NO_DEPS, []),
    ("Oz", "mlcc -Oz -c foo.c", OBJ, None, "z", FOO, NO_DEPS, []),
    ("Og", "mlcc -Og -c foo.c", OBJ, None, "g", FOO, NO_DEPS, []),
    ("Ofast", "mlcc -Ofast -c foo.c", OBJ, None, "fast", FOO, NO_DEPS, []),
    ("O-last-wins", "mlcc -Oz -O2 -c foo.c -Os", OBJ, None, "s", FOO, NO_DEPS, []),
    ("O-last-wins-down", "mlcc -Os -c foo.c -O0", OBJ, None, "0", FOO, NO_DEPS, []),
    # -ObjC is "treat inputs as Objective-C", not an -O level.
    ("ObjC-is-no-O", "mlcc -Oz -ObjC -c foo.c", OBJ, None, "z",
     [("foo.c", "objective-c")], NO_DEPS, []),

    # mlcc++ is clang++: C sources and headers are C++.
    ("cxx-c-is-cxx", "mlcc++ -c a.c", OBJ, None, "0", [("a.c", "c++")], NO_DEPS, []),
    ("cxx-cpp", "mlcc++ -c a.cpp", OBJ, None, "0", [("a.cpp", "c++")], NO_DEPS, []),
    ("cxx-x-c-wins", "mlcc++ -x c -c a.c", OBJ, None, "0", [("a.c", "c")], NO_DEPS, []),
    ("cxx-i-is-cxx", "mlcc++ -c a.i", OBJ, None, "0", [("a.i", "c++-cpp-output")], NO_DEPS, []),
    ("cxx-h-is-cxx", "mlcc++ -c a.h", OBJ, None, "0", [("a.h", "c++-header")], NO_DEPS, []),
    ("c-cpp-is-cxx", "mlcc -c a.cpp", OBJ, None, "0", [("a.cpp", "c++")], NO_DEPS, []),

    # Several inputs of several kinds.
    ("mixed-link", "mlcc a.c b.cpp main.o -lm libx.a -L. -l z -o prog", LINK, "prog", "0",
     [("a.c", "c"), ("b.cpp", "c++"), ("main.o", None), ("libx.a", None)], NO_DEPS, []),
    ("several-compile", "mlcc -c a.c b.c", OBJ, None, "0", [("a.c", "c"), ("b.c", "c")], NO_DEPS, []),
    ("other-languages", "mlcc -c a.s b.S c.ll d.i", OBJ, None, "0",
     [("a.s", "assembler"), ("b.S", "assembler-with-cpp"), ("c.ll", "ir"), ("d.i", "cpp-output")],
     NO_DEPS, []),

    # A flag that needs an argument but ends the line.
    ("missing-o", "mlcc -c foo.c -o", OBJ, None, "0", FOO, NO_DEPS, ["-o without its argument"]),
    ("Wp-MD-and-more", "mlcc -c foo.c -Wp,-MD,x.d,-MT,y", OBJ, None, "0", FOO,
     deps(md=True, mf="x.d,-MT,y"), ["-Wp, with more than a dependency file"]),
    ("missing-x", "mlcc -c foo.c -x", OBJ, None, "0", FOO, NO_DEPS, ["-x without its argument"]),
    ("missing-Xclang", "mlcc -c foo.c -Xclang", OBJ, None, "0", FOO, NO_DEPS,
     ["-Xclang without its argument"]),
    ("missing-include", "mlcc -c foo.c -include", OBJ, None, "0", FOO, NO_DEPS,
     ["-include without its argument"]),
    ("missing-mllvm", "mlcc -c foo.c -mllvm", OBJ, None, "0", FOO, NO_DEPS,
     ["-mllvm without its argument"]),
]

# Rows where mlcc disagrees with clang-19 today: id -> what goes wrong.
PARSER_BUGS = {}


def _params(cases, bugs):
    for case_id, *rest in cases:
        marks = [pytest.mark.xfail(reason=bugs[case_id], strict=True)] if case_id in bugs else []
        yield pytest.param(*rest, id=case_id, marks=marks)


def parse_line(line: str):
    """Parse "mlcc ARGS..." or "mlcc++ ARGS..." as the matching driver would."""
    name, *argv = shlex.split(line)
    return parse(argv, DRIVERS[name])


def describe(cmd):
    """The parts of a Command the tables compare."""
    d = cmd.deps
    return (cmd.mode, cmd.output, cmd.opt_level,
            [(a.value, a.language) for a in cmd.inputs],
            (d.write_deps, d.system_headers, d.dep_file, tuple((t.name, t.value) for t in d.targets)),
            list(cmd.unsupported))


def test_parse_table_is_large_and_unique():
    ids = [case[0] for case in PARSE_CASES]
    assert len(ids) >= 50
    assert len(ids) == len(set(ids))
    assert set(PARSER_BUGS) <= set(ids)


@pytest.mark.parametrize("line, mode, output, opt, inputs, dep, unsupported",
                         list(_params(PARSE_CASES, PARSER_BUGS)))
def test_parse(line, mode, output, opt, inputs, dep, unsupported):
    assert describe(parse_line(line)) == (mode, output, opt, inputs, dep, unsupported)


# Values of flags, as the scanner splits them: command line -> (flag, values) pairs.
FLAG_VALUE_CASES = [
    ("o-joined", "mlcc -c foo.c -oout.o", [("-o", ("out.o",))]),
    ("MF-joined", "mlcc -MD -MFdeps.d -c foo.c", [("-MF", ("deps.d",))]),
    ("xc", "mlcc -xc -c foo.c", [("-x", ("c",))]),
    ("sysroot-equals", "mlcc --sysroot=/sr -c foo.c", [("--sysroot", ("/sr",))]),
    ("sysroot-separate", "mlcc --sysroot /sr -c foo.c", [("--sysroot", ("/sr",))]),
    ("Wl", "mlcc foo.c -Wl,a,b", [("-Wl,", ("a,b",))]),
    ("Wp", "mlcc -c foo.c -Wp,-MD,x.d", [("-Wp,", ("-MD,x.d",))]),
    ("I-both", "mlcc -I a -Ib -c foo.c", [("-I", ("a",)), ("-I", ("b",))]),
    ("D-both", "mlcc -DX=1 -D Y -c foo.c", [("-D", ("X=1",)), ("-D", ("Y",))]),
    ("include", "mlcc -include pre.h -c foo.c", [("-include", ("pre.h",))]),
    ("isystem", "mlcc -isystem /s -c foo.c", [("-isystem", ("/s",))]),
    ("MT-MQ", "mlcc -MD -MT t -MQ q -c foo.c", [("-MT", ("t",)), ("-MQ", ("q",))]),
    ("mllvm", "mlcc -mllvm -x=1 -c foo.c", [("-mllvm", ("-x=1",))]),
    ("Xclang", "mlcc -Xclang -ast-dump -c foo.c", [("-Xclang", ("-ast-dump",))]),
    ("target", "mlcc -target t1 --target=t2 -c foo.c", [("-target", ("t1",)), ("--target", ("t2",))]),
    ("arch", "mlcc -arch arm64 -c foo.c", [("-arch", ("arm64",))]),
    ("l-both", "mlcc foo.c -lm -l z", [("-l", ("m",)), ("-l", ("z",))]),
    ("trapv-handler", "mlcc -ftrapv-handler myh -c foo.c", [("-ftrapv-handler", ("myh",))]),
]


def test_separate_flags_are_what_clang_19_says():
    """Every flag mlcc knows to take separate arguments agrees with the table made from
    clang-19 (scripts/clang_separate_flags.py), and a sample of that table with clang-19."""
    import subprocess

    from mlcc import args
    made = args._clang_separate()
    assert len(made) > 60 and made["-ftrapv-handler"] == 1 and made["-mllvm"] == 1
    known_to_clang = {f: n for f, n in args._KNOWN_SEPARATE.items() if f in made}
    assert known_to_clang == {f: made[f] for f in known_to_clang}
    for flag in sorted(made)[::15]:
        done = subprocess.run(["clang-19", "-###", "-c", "foo.c", flag], capture_output=True, text=True)
        expected = f"argument to '{flag}' is missing (expected {made[flag]} value"
        assert expected in done.stderr, (flag, done.stderr[-300:])


@pytest.mark.parametrize("line, expected", [pytest.param(*rest, id=i) for i, *rest in FLAG_VALUE_CASES])
def test_flag_values(line, expected):
    cmd = parse_line(line)
    names = {name for name, _ in expected}
    assert [(a.name, a.values) for a in cmd.args if a.name in names] == expected


def test_argv_kept_and_verbose():
    cmd = parse_line("mlcc -v -Oz -c foo.c -o foo.o")
    assert cmd.argv == ("-v", "-Oz", "-c", "foo.c", "-o", "foo.o")
    assert cmd.verbose and cmd.driver == "c" and not cmd.response_files
    assert not parse_line("mlcc++ -c foo.c").verbose
    assert parse_line("mlcc --verbose -c foo.c").verbose
    assert parse_line("mlcc++ -c foo.c").driver == "c++"


def test_sources_exclude_linker_inputs():
    cmd = parse_line("mlcc a.c main.o libx.a -lm b.cpp -o prog")
    assert [a.value for a in cmd.sources] == ["a.c", "b.cpp"]


# Response files: id, files to write, command line, arguments after expansion, inputs.
RESPONSE_FILE_CASES = [
    ("simple", {"args.rsp": "-c foo.c -o foo.o\n"}, "mlcc -Oz @args.rsp",
     ["-Oz", "-c", "foo.c", "-o", "foo.o"], FOO),
    ("quotes-and-spaces", {"args.rsp": "-c 'my file.c' \"-DMSG=hello world\" -I 'a dir'\n"},
     "mlcc @args.rsp", ["-c", "my file.c", "-DMSG=hello world", "-I", "a dir"],
     [("my file.c", "c")]),
    ("escaped-quote", {"args.rsp": r'-DS=\"x\" "-DT=\"y z\""' + "\n"}, "mlcc -c foo.c @args.rsp",
     ["-c", "foo.c", '-DS="x"', '-DT="y z"'], FOO),
    ("multi-line", {"args.rsp": "-c\nfoo.c\n\n  -o\tfoo.o\n"}, "mlcc @args.rsp",
     ["-c", "foo.c", "-o", "foo.o"], FOO),
    # Nested names are relative to the working directory, as in clang-19.
    ("nested", {"outer.rsp": "-c @inner.rsp -o out.o", "inner.rsp": "-DX foo.c"},
     "mlcc @outer.rsp", ["-c", "-DX", "foo.c", "-o", "out.o"], FOO),
    ("missing-is-literal", {}, "mlcc -c foo.c @nowhere.rsp", ["-c", "foo.c", "@nowhere.rsp"],
     [("foo.c", "c"), ("@nowhere.rsp", None)]),
    ("empty", {"empty.rsp": ""}, "mlcc -c @empty.rsp foo.c", ["-c", "foo.c"], FOO),
    ("flag-value-across-file", {"args.rsp": "-c foo.c -o"}, "mlcc @args.rsp out.o",
     ["-c", "foo.c", "-o", "out.o"], FOO),
    # LLVM's GNU tokenizer drops a backslash before any character, inside quotes too.
    ("backslash-in-quotes", {"args.rsp": "-c foo.c '-DX=a\\b' \"-DY=c\\d\"\n"}, "mlcc @args.rsp",
     ["-c", "foo.c", "-DX=ab", "-DY=cd"], FOO),
]

RESPONSE_FILE_BUGS = {}


@pytest.mark.parametrize("files, line, expanded, inputs",
                         list(_params(RESPONSE_FILE_CASES, RESPONSE_FILE_BUGS)))
def test_response_files(tmp_path, monkeypatch, files, line, expanded, inputs):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    cmd = parse_line(line)
    assert [tok for a in cmd.args for tok in a.tokens] == expanded
    assert [(a.value, a.language) for a in cmd.inputs] == inputs
    assert list(cmd.argv) == shlex.split(line)[1:]  # clang gets the original
    assert cmd.response_files == bool(files)


def test_response_file_decides_mode_and_output(tmp_path, monkeypatch):
    (tmp_path / "args.rsp").write_text("-S -Oz -MMD -MF 'dep file.d' -o out.s\n")
    monkeypatch.chdir(tmp_path)
    cmd = parse_line("mlcc @args.rsp foo.c")
    assert (cmd.mode, cmd.output, cmd.opt_level) == (ASM, "out.s", "z")
    assert (cmd.deps.write_deps, cmd.deps.dep_file) == (True, "dep file.d")


def test_response_file_recursion_is_bounded(tmp_path, monkeypatch):
    (tmp_path / "loop.rsp").write_text("-c @loop.rsp")
    monkeypatch.chdir(tmp_path)
    cmd = parse_line("mlcc @loop.rsp foo.c")
    assert cmd.mode is OBJ
    assert [a.value for a in cmd.sources] == ["foo.c"]
