"""Each command line runs through clang-19 and through mlcc; the results must match.

Both runs happen in the same directory (one after the other, the directory
wiped in between), so absolute paths in debug info and dependency files are
the same. Compared: exit code, stdout, stderr, and every file produced.

With mlcc's pipeline forced to clang's own (`MLCC_PIPELINE=clang`), every
output must be byte-identical to clang's: this checks the split pipeline and
the code-generation options. With the model's own choice, programs are
linked and run and must print the same thing.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "data" / "compare"


@dataclass(frozen=True)
class Case:
    id: str
    args: str                      # the command line after the compiler name
    driver: str = "c"              # "c": clang-19 vs mlcc; "c++": clang++-19 vs mlcc++
    setup: tuple[str, ...] = ()    # shell commands run (with clang-19) before the case
    run: str | None = None         # shell command run after a successful build
    stdin: str | None = None       # file fed to the compiler's stdin
    stdout: str = "exact"          # "exact", or "prefix" (mlcc may add lines after clang's)


CASES = [
    # modes
    Case("c-default-name", "-Oz -c src/util.c"),
    Case("c-o-separate", "-Os -c src/util.c -o out.o"),
    Case("c-o-joined", "-Oz -c src/util.c -oout.o"),
    Case("S-default-name", "-Oz -S src/util.c"),
    Case("S-stdout", "-Oz -S src/util.c -o -"),
    Case("c-stdout", "-Oz -c src/util.c -o -"),
    Case("link-two-sources", "-Oz src/main.c src/util.c -o prog", run="./prog"),
    Case("link-a-out", "-Os src/main.c src/util.c", run="./a.out x"),
    Case("c-two-sources", "-Oz -c src/main.c src/util.c"),
    Case("S-two-sources", "-Os -S src/main.c src/util.c"),
    Case("E-stdout", "-Oz -E src/util.c"),
    Case("E-P-output", "-Oz -E -P src/util.c -o util.i"),
    Case("M", "-M src/util.c"),
    Case("MM", "-MM src/main.c"),
    Case("MM-MF", "-MM -MF deps.d src/main.c"),
    Case("syntax-only", "-Oz -fsyntax-only src/util.c"),
    Case("syntax-only-error", "-fsyntax-only src/bad.c"),
    Case("diagnostics-sarif", "-Oz -Wall -fdiagnostics-format=sarif -c src/warn.c"),
    Case("dry-run", "-### -Oz -c src/util.c"),
    Case("version", "--version", stdout="prefix"),
    Case("dumpmachine", "-dumpmachine"),
    Case("dumpversion", "-dumpversion"),
    Case("V", "-V"),  # configure's probes for the compiler's version
    Case("qversion", "-qversion"),
    Case("print-prog-name", "-print-prog-name=ld"),
    Case("print-file-name", "-print-file-name=crtbegin.o"),
    Case("print-search-dirs", "-print-search-dirs"),
    Case("lone-v", "-v"),
    Case("v-compile", "-Oz -v -c src/util.c -o u.o"),
    # dependency files
    Case("MD-default", "-Oz -MD -c src/util.c"),
    Case("MMD-o-subdir", "-Oz -MMD -c src/util.c -o obj/util.o", setup=("mkdir obj",)),
    Case("MD-MF", "-Oz -MD -MF deps/u.d -c src/util.c -o u.o", setup=("mkdir deps",)),
    Case("MD-MT", "-Oz -MD -MT custom-target -c src/main.c"),
    Case("MD-MQ", "-Oz -MD -MQ '$weird target' -c src/main.c"),
    Case("MMD-MP", "-Oz -MMD -MP -c src/main.c -o m.o"),
    Case("MD-joined", "-Oz -MD -MFjoined.d -MTx.o -c src/main.c"),
    Case("Wp-MD", "-Oz -Wp,-MD,wp.d -c src/main.c -o m.o"),
    Case("MD-link", "-Oz -MD src/main.c src/util.c -o prog", run="./prog"),
    Case("MD-S", "-Os -MMD -S src/main.c -o main.s"),
    Case("MD-two-sources", "-Oz -MMD -c src/main.c src/util.c"),
    # spellings
    Case("I-D-joined", "-Oz -Isrc -DSCALE=3 -c src/main.c -o m.o"),
    Case("I-D-separate", "-Oz -I src -D SCALE=3 -c src/util.c -o u.o"),
    Case("x-c-separate", "-Oz -x c -c src/code.txt -o t.o"),
    Case("x-c-joined", "-Oz -xc -c src/code.txt -o t.o"),
    Case("x-none", "-Oz -x c src/code.txt -x none src/main.c src/util.c -o prog", run="./prog"),
    Case("response-file", "-Oz @args.rsp",
         setup=("printf '%s\\n' '-c src/util.c' '-o \"with space.o\"' > args.rsp",)),
    Case("response-nested", "-Oz @outer.rsp",
         setup=("printf '%s\\n' '-DSCALE=5' > inner.rsp",
                "printf '%s\\n' '@inner.rsp -c src/util.c -o r.o' > outer.rsp")),
    Case("response-missing", "-Oz -c src/util.c @nowhere.rsp"),
    Case("include", "-Oz -c -include src/util.h src/main.c"),
    Case("isystem", "-Oz -isystem src -c src/main.c -o m.o"),
    Case("sysroot-joined", "-Oz --sysroot=/ -c src/util.c"),
    Case("sysroot-separate", "-Oz --sysroot / -c src/util.c"),
    Case("target-separate", "-Oz -target x86_64-linux-gnu -c src/util.c"),
    Case("target-joined", "-Oz --target=x86_64-linux-gnu -c src/util.c"),
    Case("double-dash", "-Oz -c -- src/util.c"),
    # linking with other inputs
    Case("Wl-lm", "-Oz src/main.c src/util.c -Wl,--as-needed,-O1 -lm -o prog", run="./prog"),
    Case("link-with-object", "-Oz src/main.c util.o -o prog",
         setup=("clang-19 -Oz -c src/util.c -o util.o",), run="./prog"),
    Case("link-with-archive", "-Os src/main.c libutil.a -o prog",
         setup=("clang-19 -Oz -c src/util.c -o util.o", "ar rcs libutil.a util.o"),
         run="./prog"),
    Case("link-L-l", "-Oz src/main.c -L. -lutil -o prog",
         setup=("clang-19 -c src/util.c -o util.o", "ar rcs libutil.a util.o"), run="./prog"),
    Case("shared-pic", "-Oz -fPIC -shared src/lib.c -o libx.so",
         run="clang-19 src/use_lib.c -L. -lx -o use && LD_LIBRARY_PATH=. ./use"),
    Case("pie", "-Oz -fPIE -pie src/main.c src/util.c -o prog", run="./prog"),
    Case("no-pie", "-Oz -fno-pie -no-pie src/main.c src/util.c -o prog", run="./prog"),
    Case("static", "-Os -static src/main.c src/util.c -o prog", run="./prog"),
    # code-generation options
    Case("function-sections", "-Oz -ffunction-sections -fdata-sections -c src/util.c"),
    Case("gc-sections", "-Oz -ffunction-sections -fdata-sections -Wl,--gc-sections "
         "src/main.c src/util.c -o prog", run="./prog"),
    Case("mcmodel-large", "-Oz -mcmodel=large -c src/util.c"),
    Case("march", "-Oz -march=haswell -c src/util.c"),
    Case("mtune", "-Os -mtune=znver3 -c src/util.c"),
    Case("debug-info", "-Oz -g -c src/util.c"),
    Case("debug-gdwarf4", "-Os -gdwarf-4 -c src/main.c"),
    Case("fpic-object", "-Oz -fPIC -c src/util.c"),
    Case("fno-plt", "-Oz -fPIC -fno-plt -c src/main.c"),
    Case("stack-protector", "-Oz -fstack-protector-strong -c src/main.c"),
    Case("no-unwind-tables", "-Oz -fno-asynchronous-unwind-tables -c src/util.c"),
    Case("frame-pointer", "-Oz -fno-omit-frame-pointer -c src/util.c"),
    Case("Wa-option", "-Oz -Wa,--noexecstack -c src/util.c"),
    Case("fno-builtin", "-Oz -fno-builtin -c src/util.c"),
    Case("flags-kept-in-order", "-Oz -fno-builtin -fbuiltin -fno-strict-aliasing -fstrict-aliasing "
         "-c src/util.c"),
    Case("fpie-object", "-Oz -fPIE -c src/util.c"),
    Case("mcpu", "-Oz -mcpu=znver3 -c src/util.c"),
    Case("split-dwarf", "-Oz -g -gsplit-dwarf -c src/util.c"),
    Case("profile-generate", "-Oz -fprofile-generate -c src/util.c"),
    Case("color-forced", "-Oz -fcolor-diagnostics -Wall -c src/warn.c"),
    # C++
    Case("cxx-object", "-Oz -c src/app.cpp", driver="c++"),
    Case("cxx-link", "-Oz src/app.cpp -o app", driver="c++", run="./app"),
    Case("cxx-std", "-Os -std=c++17 -c src/app.cpp -o app.o", driver="c++"),
    Case("cxx-c-input", "-Oz -c src/util.c", driver="c++"),
    Case("cxx-version", "--version", driver="c++", stdout="prefix"),
    # errors and diagnostics
    Case("error-syntax", "-Oz -c src/bad.c"),
    Case("error-link", "-Oz src/undefined.c -o prog"),
    Case("error-missing-input", "-Oz -c nothing.c"),
    Case("error-no-outdir", "-Oz -c src/util.c -o nodir/x.o"),
    Case("error-werror", "-Oz -Werror -Wunused-variable -c src/warn.c"),
    Case("warnings", "-Oz -Wall -c src/warn.c"),
    Case("error-unknown-flag", "-Oz -fthis-is-no-flag -c src/util.c"),
    Case("error-o-missing-arg", "-Oz -c src/util.c -o"),
    Case("error-o-two-sources", "-Oz -c src/main.c src/util.c -o x.o"),
    Case("unused-L-warning", "-Oz -c src/util.c -L/tmp -lm"),
    Case("empty-file", "-Oz -c src/empty.c"),
    Case("no-input", "-Oz"),
    # link-time optimization (mlcc/lto.py): LTO objects, and lld links that carry mlcc's options
    Case("flto", "-Oz -flto -c src/util.c"),
    Case("flto-thin", "-Os -flto=thin -c src/util.c -o util.o"),
    Case("flto-link", "-Oz -flto -fuse-ld=lld src/main.c src/util.c -o prog", run="./prog"),
    Case("flto-thin-link-objects", "-Oz -flto=thin -fuse-ld=lld main.o util.o -o prog",
         setup=("clang-19 -Oz -flto=thin -c src/main.c src/util.c",), run="./prog"),
    Case("flto-link-objects-bfd", "-Oz -flto main.o util.o -o prog",
         setup=("clang-19 -Oz -flto -c src/main.c src/util.c",), run="./prog"),
    # profiled builds: a front-end profile (branch weights in the bitcode) takes mlcc's
    # pipelines; a profile a pass reads (IR instrumentation's) gets clang's pipeline
    Case("profile-instr-use", "-Os -fprofile-instr-use=p.profdata src/main.c src/util.c -o prog",
         setup=("clang-19 -Os -fprofile-instr-generate src/main.c src/util.c -o inst",
                "LLVM_PROFILE_FILE=p.profraw ./inst a b", "llvm-profdata-19 merge -o p.profdata p.profraw"),
         run="./prog a"),
    Case("profile-use-ir", "-Oz -fprofile-use=p.profdata -c src/util.c",
         setup=("clang-19 -Oz -fprofile-generate src/main.c src/util.c -o inst",
                "LLVM_PROFILE_FILE=p.profraw ./inst a b", "llvm-profdata-19 merge -o p.profdata p.profraw")),
    # plain clang on purpose
    Case("O2", "-O2 -c src/util.c"),
    Case("O0", "-c src/util.c"),
    Case("emit-llvm", "-Oz -emit-llvm -c src/util.c"),
    Case("emit-llvm-S", "-Oz -S -emit-llvm src/util.c -o util.ll"),
    Case("assembly", "-Oz -c src/asm.s"),
    Case("assembly-cpp", "-Oz -c src/asm_cpp.S"),
    Case("save-temps", "-Oz -save-temps -c src/util.c"),
    Case("coverage", "-Oz --coverage -c src/util.c"),
    Case("stdin", "-Oz -x c -c - -o stdin.o", stdin="src/util.c"),
    # clang's long spellings of short flags
    Case("alias-compile", "-Oz --compile src/util.c"),
    Case("alias-assemble", "-Os --assemble src/util.c"),
    Case("alias-write-dependencies", "-Oz --write-dependencies --compile src/main.c -o m.o"),
    Case("alias-preprocess", "-Oz --preprocess src/util.c"),
    # llvm::sys::path::stem: a leading dot counts
    Case("dot-dot-name", "-Oz -Isrc -c ..c", setup=("cp src/util.c ..c",)),
    # what would differ in the split steps goes to clang
    Case("record-command-line", "-Oz -frecord-command-line -c src/util.c"),
    Case("config-file", "-Oz --config=./s.cfg -c src/util.c", setup=("printf -- '-S\\n' > s.cfg",)),
    Case("mcpu-help", "-Oz -mcpu=help -c src/util.c"),
    Case("nolibc-werror", "-Oz -Werror -nolibc -fPIC -shared src/lib.c -o libx.so"),
    # failures of code generation are clang's, with clang's diagnostics; its output goes
    Case("error-inline-asm", "-Oz -c src/asmerr.c"),
    Case("error-stale-object", "-Oz -c src/bad.c", setup=("echo old > bad.o",)),
    Case("error-stale-assembly", "-Os -S src/asmerr.c -o out.s", setup=("echo old > out.s",)),
    Case("pragma-silences-attribute-warning", "-Oz -Werror -c src/pragwarn.c"),
    Case("error-missing-object", "-Oz -Wall src/warn.c src/main.c missing.o -o prog"),
    # what clang says about flags, said once, as clang does
    Case("gcc-only-flags", "-Oz -Wno-maybe-uninitialized -fno-gcse -ffp-model=fast -ffp-contract=off "
         "-c src/util.c"),
]


def _signature_of_tree(root: Path, before: set[Path]) -> dict[str, bytes]:
    """Every file under root that the command created or changed, with its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root) not in before:
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _run_case(case: Case, compiler: str, workdir: Path, env: dict) -> dict:
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(FIXTURE, workdir)
    for step in case.setup:
        subprocess.run(step, shell=True, cwd=workdir, check=True, env=env)
    before = {p.relative_to(workdir) for p in workdir.rglob("*") if p.is_file()}
    argv = [compiler, *shlex.split(case.args)]
    stdin = open(workdir / case.stdin, "rb") if case.stdin else subprocess.DEVNULL
    try:
        proc = subprocess.run(argv, cwd=workdir, env=env, stdin=stdin,
                              capture_output=True, timeout=300)
    finally:
        if case.stdin:
            stdin.close()
    result = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    if case.run and proc.returncode == 0:
        ran = subprocess.run(case.run, shell=True, cwd=workdir, env=env,
                             capture_output=True, timeout=60)
        result["run"] = (ran.returncode, ran.stdout, ran.stderr)
    result["files"] = _signature_of_tree(workdir, before)
    result["deleted"] = sorted(str(p) for p in before if not (workdir / p).exists())
    return result


def _compilers(driver: str) -> tuple[str, str]:
    return ("clang++-19", "mlcc++") if driver == "c++" else ("clang-19", "mlcc")


from conftest import mlcc_env as _env


_TEMP_OBJECT = re.compile(rb"/tmp/[\w./-]+?-\w+\.o\b")


def _normalized(stderr: bytes) -> str:
    """stderr with temporary object names (random in clang too) made equal."""
    return _TEMP_OBJECT.sub(b"<temporary>.o", stderr).decode(errors="replace")


_ASM_COMMENT = re.compile(rb"[ \t]*#.*$", re.M)


def _comparable(name: str, data: bytes) -> bytes:
    """Assembly without comments; bitcode (-flto objects) as its text without value
    names; everything else as is.

    Code generation from bitcode keeps the names that its own passes give to
    basic blocks, which appear only in assembly comments (`# %.preheader`). An LTO
    object written from bitcode keeps the names its passes give to values, and
    lists one more metadata kind: neither changes what the link makes of it (the
    linked programs are compared byte for byte).
    """
    if name.endswith(".s"):
        return _ASM_COMMENT.sub(b"", data)
    if data.startswith(b"BC\xc0\xde"):
        text = subprocess.run(["opt-19", "--discard-value-names", "-S", "-", "-o", "-"], input=data,
                              capture_output=True, check=True).stdout
        return text.split(b"\n", 1)[1]  # the module's name is the file's
    return data


def _assert_stdout(case: Case, theirs: bytes, ours: bytes) -> None:
    if case.stdout == "prefix":
        assert ours.startswith(theirs), (theirs, ours)
    else:
        assert ours == theirs


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_as_clang_with_clangs_pipeline(case: Case, tmp_path: Path):
    """With clang's own pipeline forced, mlcc's outputs are clang's, byte for byte."""
    clang, mlcc = _compilers(case.driver)
    workdir = tmp_path / "w"
    theirs = _run_case(case, clang, workdir, _env())
    ours = _run_case(case, mlcc, workdir, _env(MLCC_PIPELINE="clang"))
    assert ours["rc"] == theirs["rc"], ours["stderr"].decode()
    assert _normalized(ours["stderr"]) == _normalized(theirs["stderr"])
    _assert_stdout(case, theirs["stdout"], ours["stdout"])
    assert sorted(ours["files"]) == sorted(theirs["files"])
    assert ours["deleted"] == theirs["deleted"]
    for name, data in theirs["files"].items():
        assert _comparable(name, ours["files"][name]) == _comparable(name, data), f"{name} differs"
    assert ours.get("run") == theirs.get("run")


RUN_CASES = [c for c in CASES if c.run]


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.id for c in RUN_CASES])
def test_same_behaviour_with_model_choice(case: Case, tmp_path: Path):
    """With mlcc's own choice of pipeline, the programs it builds behave the same."""
    clang, mlcc = _compilers(case.driver)
    workdir = tmp_path / "w"
    theirs = _run_case(case, clang, workdir, _env())
    log = tmp_path / "mlcc.log"
    ours = _run_case(case, mlcc, workdir, _env(MLCC_LOG=str(log)))
    assert ours["rc"] == theirs["rc"], ours["stderr"].decode()
    assert _normalized(ours["stderr"]) == _normalized(theirs["stderr"])
    assert sorted(ours["files"]) == sorted(theirs["files"])
    assert ours["run"] == theirs["run"]
    # -Os and -Oz both have a bundled model; an LTO link of objects alone carries its default
    assert re.search(r'"path": "(optimize|lto-link)"', log.read_text())
