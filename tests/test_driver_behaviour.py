"""How mlcc behaves inside builds: names, settings, logs, signals, chaining,
CMake and autoconf probing, parallel make. Each compares with clang where
clang has an answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "data" / "compare"
MLCC = shutil.which("mlcc")
MLCCXX = shutil.which("mlcc++")
CLANG = shutil.which("clang-19")


from conftest import mlcc_env as _env

from mlcc.objective import object_size


def _run(argv, cwd, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env or _env(), capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def _no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def test_other_names_pick_the_language_from_the_name(work: Path):
    """A symlink called `c++` compiles and links C++; one called `cc` stays C."""
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "c++").symlink_to(MLCC)
    (bindir / "cc").symlink_to(MLCC)
    env = _env(PATH=f"{bindir}:{os.environ['PATH']}")
    proc = _run(["c++", "-Oz", "src/app.cpp", "-o", "app"], work, env)
    assert proc.returncode == 0, proc.stderr
    assert _run(["./app"], work).stdout == _run_clang_app(work)
    proc = _run(["cc", "-Oz", "-c", "src/app.cpp", "-o", "x.o"], work, env)
    # clang compiles .cpp as C++ even as `cc`, but links without libstdc++
    assert proc.returncode == 0, proc.stderr
    proc = _run(["cc", "-Oz", "x.o", "-o", "app2"], work, env)
    assert proc.returncode != 0 and "undefined reference" in proc.stderr


def _run_clang_app(work: Path) -> str:
    subprocess.run(["clang++-19", "-Oz", "src/app.cpp", "-o", "app_ref"], cwd=work, check=True)
    return _run(["./app_ref"], work).stdout


def test_disable_makes_mlcc_plain_clang(work: Path, tmp_path: Path):
    log = tmp_path / "log"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_DISABLE="1", MLCC_LOG=str(log)))
    assert proc.returncode == 0
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "b.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    assert [e["path"] for e in entries] == ["clang"] and entries[0]["reason"] == "MLCC_DISABLE"


def test_mlcc_flags_are_stripped_and_verbose_goes_to_stderr(work: Path):
    proc = _run([MLCC, "-fmlcc-verbose", "-Oz", "-c", "src/util.c", "-fmlcc-timeout=100"], work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcc: src/util.c: ")


def test_bad_mlcc_option_is_one_line(work: Path):
    proc = _run([MLCC, "-fmlcc-trials=many", "-Oz", "-c", "src/util.c"], work)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mlcc: error: invalid value 'many' for -fmlcc-trials")
    assert len(proc.stderr.splitlines()) == 1
    assert not (work / "util.o").exists()


def test_log_records_each_unit_and_survives_parallel_writers(work: Path, tmp_path: Path):
    log = tmp_path / "build.log"
    env = _env(MLCC_LOG=str(log))
    procs = [subprocess.Popen([MLCC, "-Oz", "-c", "src/util.c", "-o", f"u{i}.o"], cwd=work,
                              env=env, stderr=subprocess.PIPE) for i in range(8)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 8
    for e in entries:
        assert e["path"] == "optimize" and e["source"] == "src/util.c"
        assert e["pipeline"] and e["size"] > 0
        # the split route (the first, which asks clang about the flags) or one process
        assert (set(e["seconds"]) >= {"frontend", "opt", "codegen"} and e["cache"] in ("hit", "miss")
                or set(e["seconds"]) == {"whole"} and e["route"] in ("one process", "cache"))
    sizes = {e["size"] for e in entries}
    assert len(sizes) == 1
    objects = {(work / f"u{i}.o").read_bytes() for i in range(8)}
    assert len(objects) == 1, "same input must give the same object"


def _stderr_on_a_terminal(argv, cwd: Path, env: dict) -> bytes:
    """What `argv` writes to its stderr when that is a terminal (a pseudo-terminal)."""
    import pty
    main_fd, sub_fd = pty.openpty()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=sub_fd, timeout=600)
        os.close(sub_fd)
        sub_fd = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: every writer has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(main_fd)
        if sub_fd >= 0:
            os.close(sub_fd)
    assert proc.returncode == 0
    return b"".join(chunks)


@pytest.mark.parametrize("pipeline", ["clang", ""], ids=["clang-pipeline", "model"])
def test_warnings_on_a_terminal_are_coloured_as_clangs(work: Path, tmp_path: Path, pipeline):
    """On a terminal clang colours its diagnostics; so does mlcc, whose front end and
    code generation run with their stderr captured."""
    argv = ["-Oz", "-Wall", "-c", "src/warn.c", "-o", "w.o"]
    theirs = _stderr_on_a_terminal(["clang-19", *argv], work, _env())
    ours = _stderr_on_a_terminal([MLCC, *argv], work,
                                 _env(MLCC_PIPELINE=pipeline, MLCC_TINY_SOURCE="0", MLCC_SMALL_UNIT="0"))
    assert b"\x1b[" in theirs
    assert ours == theirs


@pytest.mark.parametrize("argv, reason", [
    (["-O2", "-c", "src/util.c"], "-O2"),
    (["-Oz", "-E", "src/util.c", "-o", "u.i"], "preprocess"),
    (["-Oz", "-c", "src/util.c", "-o"], "-o without its argument"),
    (["-Oz", "-mllvm", "-inline-threshold=1", "-c", "src/util.c"], "-mllvm"),
    (["-Oz", "-S", "-emit-llvm", "src/util.c"], "-emit-llvm"),
    (["-Oz", "-fprofile-generate", "-c", "src/util.c"], "profile flags"),
    (["-Oz", "-save-temps", "-c", "src/util.c"], "-save-temps"),
], ids=["O2", "E", "o-missing", "mllvm", "emit-llvm", "profile", "save-temps"])
def test_log_says_why_plain_clang(work: Path, tmp_path: Path, argv, reason):
    """A command mlcc leaves to clang is clang's, exit code and messages, and the log
    says why (tiny sources are another reason: off here)."""
    log = tmp_path / "build.log"
    ours = _run([MLCC, *argv], work, _env(MLCC_LOG=str(log), MLCC_TINY_SOURCE="0"))
    theirs = _run(["clang-19", *argv], work)
    assert ours.returncode == theirs.returncode and ours.stderr == theirs.stderr
    entry = json.loads(log.read_text())
    assert entry["path"] == "clang" and entry["reason"] == reason


def _big_source(path: Path, functions: int = 4000) -> None:
    body = "\n".join(
        f"int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i} ^ (s >> 3);"
        f" return s + {i}; }}" for i in range(functions))
    path.write_text(body + "\n")


def test_ctrl_c_kills_it_as_clang_and_leaves_nothing(work: Path, tmp_path: Path):
    # A cache of its own (a hit would be over before the signal comes), and SIGINT
    # as a terminal gives it: a test run started in the background (`make test &`)
    # ignores SIGINT, and so, rightly, would mlcc and clang under it.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    _big_source(work / "big.c")
    proc = subprocess.Popen([MLCC, "-Oz", "-c", "big.c", "-o", "big.o"], cwd=work,
                            env=_env(tmp_path / "cache", TMPDIR=str(tmpdir)), stderr=subprocess.PIPE,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmpdir.iterdir()):
        time.sleep(0.02)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    # killed by SIGINT, as clang is (the shell's 130): so a shell loop over compiles stops
    assert proc.returncode == -signal.SIGINT, err
    assert b"Traceback" not in err
    assert list(tmpdir.iterdir()) == []
    assert not (work / "big.o").exists()


def test_sigterm_cleans_up(work: Path, tmp_path: Path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    _big_source(work / "big.c")
    proc = subprocess.Popen([MLCC, "-Oz", "-c", "big.c"], cwd=work,
                            env=_env(tmp_path / "cache", TMPDIR=str(tmpdir)), stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmpdir.iterdir()):
        time.sleep(0.02)
    time.sleep(0.5)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM and b"Traceback" not in err
    assert list(tmpdir.iterdir()) == []
    assert not (work / "big.o").exists()


def test_temporary_files_never_in_the_working_directory(work: Path, tmp_path: Path):
    before = set(os.listdir(work))
    proc = _run([MLCC, "-Oz", "-MMD", "src/main.c", "src/util.c", "-o", "prog"], work,
                _env(TMPDIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(work)) - before == {"prog", "prog.d"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mlcc-")]


@pytest.mark.parametrize("argv", [
    ["-Oz", "-c", "src/bad.c"],                        # the front end fails
    ["-Oz", "-c", "src/asmerr.c", "-o", "a.o"],          # code generation fails
    ["-Oz", "src/undefined.c", "src/main.c", "-o", "prog"],  # the link fails
], ids=["front-end", "codegen", "link"])
def test_a_failed_command_leaves_no_temporary_files(work: Path, tmp_path: Path, argv):
    """A command that fails as clang's does removes what it made under TMPDIR, and
    leaves nothing new in the working directory (small units optimized too)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = set(os.listdir(work))
    proc = _run([MLCC, *argv], work, _env(TMPDIR=str(scratch), MLCC_SMALL_UNIT="0",
                                           MLCC_TINY_SOURCE="0"))
    assert proc.returncode != 0
    _no_traceback(proc)
    assert set(os.listdir(work)) == before
    assert not list(scratch.iterdir())


def test_tmpdir_on_another_file_system_still_puts_the_output_in_place(work: Path, tmp_path: Path):
    """The object is built under TMPDIR; on another file system it cannot be renamed into
    place, so it is copied beside the output and renamed there: same bytes, the mode
    clang gives (0666 less the umask), no temporary left in the output's directory."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(work).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    other = Path(__import__("tempfile").mkdtemp(dir=shm, prefix="mlcc-test-"))
    try:
        out = work / "out"
        out.mkdir()
        built = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "out/across.o"], work,
                     _env(tmp_path / "cache-a", TMPDIR=str(other)))
        assert built.returncode == 0, built.stderr
        same = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "out/same.o"], work,
                    _env(tmp_path / "cache-b", TMPDIR=str(tmp_path)))
        assert same.returncode == 0, same.stderr
        assert (out / "across.o").read_bytes() == (out / "same.o").read_bytes()
        umask = os.umask(0)
        os.umask(umask)
        assert (out / "across.o").stat().st_mode & 0o777 == 0o666 & ~umask
        assert sorted(p.name for p in out.iterdir()) == ["across.o", "same.o"]
        assert list(other.iterdir()) == []
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_missing_clang_is_one_clear_line(work: Path):
    proc = _run([MLCC, "-Oz", "-c", "src/util.c"], work, _env(MLCC_CLANG="/nonexistent/clang-19"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("mlcc: error: cannot find clang")
    assert "apt-get install clang-19" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_missing_opt_falls_back_to_clangs_pipeline(work: Path):
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_OPT="/nonexistent/opt-19", MLCC_ONE_PROCESS="0"))  # one process runs no opt
    assert proc.returncode == 0
    assert "mlcc: warning: cannot find opt" in proc.stderr
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "b.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_never_calls_itself_as_clang(work: Path):
    """MLCC_CLANG pointing at mlcc itself must not recurse."""
    proc = _run([MLCC, "-Oz", "-c", "src/util.c"], work, _env(MLCC_CLANG=MLCC))
    assert proc.returncode == 1 and "cannot find clang" in proc.stderr


def test_clang_19_on_path_may_be_mlcc_itself(work: Path, tmp_path: Path):
    """A directory first on PATH with `clang-19` (and `cc`) linked to mlcc: mlcc finds the
    real clang-19 further down PATH, and builds what clang-19 builds."""
    links = tmp_path / "bin"
    links.mkdir()
    for name in ("clang-19", "clang", "cc"):
        (links / name).symlink_to(MLCC)
    env = _env(PATH=f"{links}{os.pathsep}{os.environ['PATH']}", MLCC_PIPELINE="clang")
    for name in ("clang-19", "cc"):
        proc = _run([str(links / name), "-Oz", "-c", "src/util.c", "-o", f"{name}.o"], work, env)
        assert proc.returncode == 0, proc.stderr
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "ref.o"], cwd=work, check=True)
    assert (work / "cc.o").read_bytes() == (work / "clang-19.o").read_bytes() == (work / "ref.o").read_bytes()


def test_a_closed_output_pipe_ends_like_clang(work: Path):
    """`-S -o -` into a pipe nobody reads: clang exits 74 and says nothing; so does mlcc."""
    results = []
    for compiler in ("clang-19", MLCC):
        proc = subprocess.Popen([compiler, "-Oz", "-S", "src/util.c", "-o", "-"], cwd=work,
                                env=_env(MLCC_SMALL_UNIT="0"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first byte
        stderr = proc.stderr.read().decode()
        results.append((proc.wait(timeout=120), stderr))
    assert results[1] == results[0] == (74, "")


def test_version_into_head_ends_like_clang(work: Path):
    """`mlcc --version | head -1`: the reader leaves after clang's first line, before
    mlcc's own line; clang's text got through, so exit 0 and nothing on stderr."""
    for compiler in ("clang-19", MLCC, MLCCXX):
        proc = subprocess.Popen([compiler, "--version"], cwd=work, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert (proc.wait(timeout=60), stderr) == (0, ""), compiler
        assert b"clang version 19" in first


def test_verbose_link_prints_what_clang_prints(work: Path):
    """`-v` on a compile-and-link: clang's own output, temporary file names aside."""
    import re

    def verbose(compiler: str) -> tuple[int, str]:
        proc = _run([compiler, "-Oz", "-v", "src/main.c", "src/util.c", "-o", "prog"], work)
        return proc.returncode, re.sub(r"/tmp/[\w.-]+", "TMP", proc.stderr)

    ours, theirs = verbose(MLCC), verbose("clang-19")
    assert ours == theirs and ours[0] == 0 and "-cc1" in ours[1]


def test_mlcc_clang_answers_version_queries(work: Path, tmp_path: Path):
    """With MLCC_CLANG set, --version and -dumpversion come from that clang."""
    fake = tmp_path / "clang-fake"
    real = shutil.which("clang-19")
    fake.write_text(f'#!/bin/sh\n[ "$1" = -dumpversion ] && echo 19.0.99 && exit 0\n'
                    f'[ "$1" = --version ] && echo "fake clang version 19.0.99" && exit 0\nexec {real} "$@"\n')
    fake.chmod(0o755)
    env = _env(MLCC_CLANG=str(fake))
    version = _run([MLCC, "--version"], work, env).stdout
    assert version.startswith("fake clang version 19.0.99\n") and "mlcc " in version
    assert _run([MLCC, "-dumpversion"], work, env).stdout == "19.0.99\n"


def test_version_is_clangs_first(work: Path):
    ours = _run([MLCC, "--version"], work).stdout
    theirs = _run(["clang-19", "--version"], work).stdout
    assert ours.startswith(theirs)
    assert "mlcc " in ours[len(theirs):]


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache not installed")
def test_ccache_chaining(work: Path, tmp_path: Path):
    env = _env(CCACHE_DIR=str(tmp_path / "ccache"), MLCC_PIPELINE="clang")
    for _ in range(2):
        (work / "util.o").unlink(missing_ok=True)
        proc = _run(["ccache", MLCC, "-Oz", "-c", "src/util.c"], work, env)
        assert proc.returncode == 0, proc.stderr
    stats = _run(["ccache", "-s", "-v"], work, env).stdout
    assert "Hits:" in stats and " 1 " in stats.split("Hits:")[1].splitlines()[0] + " "
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "ref.o"], cwd=work, check=True)
    assert (work / "util.o").read_bytes() == (work / "ref.o").read_bytes()


def _cmake_project(root: Path, launcher: str | None = None) -> subprocess.CompletedProcess:
    (root / "CMakeLists.txt").write_text(textwrap.dedent("""\
        cmake_minimum_required(VERSION 3.16)
        project(probe C CXX)
        add_executable(prog src/main.c src/util.c)
        add_executable(app src/app.cpp)
        message(STATUS "ID=${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}")
        message(STATUS "CXXID=${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
        """))
    from mlcc.tool import DATA
    args = ["cmake", "-S", str(root), "-B", str(root / "build"),
            f"-DCMAKE_TOOLCHAIN_FILE={DATA / 'mlcc-toolchain.cmake'}",
            "-DCMAKE_C_FLAGS=-Oz", "-DCMAKE_CXX_FLAGS=-Oz"]
    if launcher:
        args += [f"-DCMAKE_C_COMPILER_LAUNCHER={launcher}"]
    return _run(args, root)


def test_cmake_identifies_clang_19_through_the_toolchain_file(work: Path, tmp_path: Path):
    log = tmp_path / "log"
    proc = _cmake_project(work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ID=Clang 19." in proc.stdout and "CXXID=Clang 19." in proc.stdout
    build = _run(["cmake", "--build", str(work / "build"), "-j2"], work, _env(MLCC_LOG=str(log)))
    assert build.returncode == 0, build.stdout + build.stderr
    assert _run([str(work / "build" / "prog")], work).returncode == 0
    assert "optimize" in log.read_text()


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache not installed")
def test_cmake_compiler_launcher(work: Path, tmp_path: Path):
    proc = _cmake_project(work, launcher="ccache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = _run(["cmake", "--build", str(work / "build"), "-j2", "--verbose"], work,
                 _env(CCACHE_DIR=str(tmp_path / "ccache")))
    assert build.returncode == 0, build.stdout + build.stderr
    assert "ccache" in build.stdout and "mlcc" in build.stdout


def test_autoconf_configure_accepts_mlcc(work: Path):
    (work / "configure.ac").write_text(textwrap.dedent("""\
        AC_INIT([probe], [1.0])
        AC_CONFIG_SRCDIR([src/util.c])
        AC_PROG_CC
        AC_C_CONST
        AC_C_INLINE
        AC_CHECK_HEADERS([stdio.h string.h unistd.h])
        AC_CHECK_FUNCS([strlen memcpy])
        AC_CHECK_SIZEOF([long])
        AC_OUTPUT
        """))
    assert _run(["autoreconf", "-fi"], work).returncode == 0
    proc = _run(["./configure", f"CC={MLCC}", "CFLAGS=-Oz"], work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config_log = (work / "config.log").read_text()
    assert "checking whether the C compiler works... yes" in proc.stdout
    assert "checking for suffix of object files... o" in proc.stdout
    assert "checking for suffix of executables... \n" in proc.stdout
    assert "ac_cv_sizeof_long=8" in config_log
    _no_traceback(proc)


def test_parallel_make(work: Path, tmp_path: Path):
    """`make -j2` with dependency files: every object right, nothing shared."""
    srcs = []
    for i in range(12):
        (work / f"m{i}.c").write_text(
            f'#include "src/util.h"\nint m{i}(int x) {{ return scale(x) + {i}; }}\n')
        srcs.append(f"m{i}.c")
    (work / "main2.c").write_text(
        "#include <stdio.h>\n" + "".join(f"int m{i}(int);\n" for i in range(12))
        + "int main(void){int s=0;\n" + "".join(f"s+=m{i}({i});\n" for i in range(12))
        + 'printf("%d\\n", s); return 0;}\n')
    objs = " ".join(s.replace(".c", ".o") for s in srcs + ["main2.c"])
    (work / "Makefile").write_text(
        f"CFLAGS=-Oz -MMD\nprog: {objs} src/util.o\n\t$(CC) $^ -o $@\n-include *.d\n")
    for cc in ("clang-19", MLCC):
        subprocess.run(["make", "clean"], cwd=work, capture_output=True)
        for p in work.glob("*.o"):
            p.unlink()
        (work / "src/util.o").unlink(missing_ok=True)
        proc = _run(["make", "-j2", f"CC={cc}"], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = _run(["./prog"], work).stdout
        if cc == "clang-19":
            expected = out
        else:
            assert out == expected
    assert (work / "m3.d").read_text().startswith("m3.o: m3.c src/util.h")


@pytest.mark.parametrize("behaviour", ["crash", "hang", "garbage-output"])
def test_broken_opt_falls_back_to_clangs_pipeline(behaviour: str, work: Path, tmp_path: Path):
    """opt crashing, hanging (then the timeout) or writing garbage: clang's pipeline, one
    warning. (Without the pass plugin, which would run the pipeline inside clang, opt unrun.)"""
    fake = tmp_path / "opt-19"
    body = {"crash": 'kill -SEGV $$',
            "hang": 'sleep 60',
            "garbage-output": 'out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; '
                              'echo garbage > "$out"'}[behaviour]
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_OPT=str(fake), MLCC_TIMEOUT="3", MLCC_NO_CACHE="1", MLCC_PLUGIN="0"))
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcc: warning:") and "clang's own pipeline" in lines[0]
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "b.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_binary_garbage_named_c_gets_clangs_diagnostics(work: Path):
    (work / "junk.c").write_bytes(bytes(range(256)) * 8)
    ours = _run([MLCC, "-Oz", "-c", "junk.c", "-o", "j.o"], work)
    theirs = _run(["clang-19", "-Oz", "-c", "junk.c", "-o", "k.o"], work)
    assert ours.returncode == theirs.returncode != 0
    assert ours.stderr == theirs.stderr
    assert not (work / "j.o").exists()


@pytest.mark.parametrize("mode", ["-c", "-S"])
def test_small_units_go_to_clang_whole_and_match_it(mode: str, work: Path, tmp_path: Path):
    """Under `small_unit` bytes of bitcode (the default), clang optimizes and generates
    in one process: the output is clang's, byte for byte, and the model is not asked."""
    log = tmp_path / "log"
    suffix = ".o" if mode == "-c" else ".s"
    proc = _run([MLCC, "-Oz", mode, "src/util.c", "-o", "a" + suffix], work,
                _env(MLCC_SMALL_UNIT="8192", MLCC_TINY_SOURCE="0", MLCC_LOG=str(log), MLCC_VERBOSE="1",
                     MLCC_ONE_PROCESS="0"))  # the split route, whose stages are checked below
    assert proc.returncode == 0, proc.stderr
    assert "(clang-default: small unit)" in proc.stderr
    subprocess.run(["clang-19", "-Oz", mode, "src/util.c", "-o", "b" + suffix], cwd=work, check=True)
    assert (work / ("a" + suffix)).read_bytes() == (work / ("b" + suffix)).read_bytes()
    entry = json.loads(log.read_text())
    assert entry["decision"] == "clang-default: small unit"
    assert set(entry["seconds"]) == {"frontend", "codegen"}


def test_small_unit_threshold_zero_asks_the_model(work: Path, tmp_path: Path):
    """... even for a tiny source: the tiny-source rule stands in for the small-unit one."""
    log = tmp_path / "log"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_SMALL_UNIT="0", MLCC_TINY_SOURCE="1000", MLCC_LOG=str(log),
                     MLCC_ONE_PROCESS="0"))  # the split route: one process asks no model
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(log.read_text())
    assert entry["decision"] != "clang-default: small unit" and "opt" in entry["seconds"]


@pytest.mark.parametrize("argv", [["-c", "src/util.c", "-o", "a.o"], ["-S", "src/util.c", "-o", "a.s"],
                                  ["src/main.c", "src/util.c", "-o", "app"]],
                         ids=["object", "assembly", "compile and link"])
def test_a_tiny_source_goes_to_clang_whole_without_its_front_end_run_first(argv, work: Path, tmp_path: Path):
    """A source with under `tiny_source` bytes of code (directives not counted) is taken to
    be a small unit: clang alone compiles it, in one process; the output is clang's and the
    log says why, naming the source and the object."""
    log = tmp_path / "log"
    env = _env(MLCC_SMALL_UNIT="8192", MLCC_LOG=str(log), MLCC_TRACE="1")
    proc = _run([MLCC, "-Oz", *argv], work, env)
    assert proc.returncode == 0, proc.stderr
    traced = [line for line in proc.stderr.splitlines() if line.startswith("mlcc: + ")]
    assert len(traced) == 1 and traced[0].endswith(" -Oz " + " ".join(argv)), traced  # clang, nothing before
    theirs = [a.replace("a.", "b.") if a.startswith("a.") else "app2" if a == "app" else a for a in argv]
    subprocess.run(["clang-19", "-Oz", *theirs], cwd=work, check=True)
    if argv[-1] != "app":
        assert (work / argv[-1]).read_bytes() == (work / theirs[-1]).read_bytes()
    entry = json.loads(log.read_text())
    assert (entry["path"], entry["reason"]) == ("clang", "tiny source")
    if argv[0] == "-c":
        assert (entry["source"], entry["output"]) == ("src/util.c", "a.o")


@pytest.mark.parametrize("extra", [{"MLCC_TINY_SOURCE": "0"}, {"MLCC_TINY_SOURCE": "100"},
                                   {"MLCC_SEARCH": "4"}, {"MLCC_PIPELINE": "clang"}],
                         ids=["off", "threshold below the source", "search", "forced pipeline"])
def test_a_tiny_source_takes_mlccs_path_when_asked(extra, work: Path, tmp_path: Path):
    log = tmp_path / "log"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_SMALL_UNIT="8192", MLCC_LOG=str(log), **extra))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(log.read_text())["path"] == "optimize"


def test_a_tiny_source_goes_to_clang_whole_under_trials_too(work: Path, tmp_path: Path):
    """Trials would build a configure probe four times; clang's object is what trials
    could keep at worst, so a tiny source gets it in one clang process."""
    log = tmp_path / "log"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(MLCC_SMALL_UNIT="8192", MLCC_TRIALS="3", MLCC_LOG=str(log)))
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(log.read_text())
    assert (entry["path"], entry["reason"]) == ("clang", "tiny source")
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "b.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_a_small_unit_gets_clangs_pipeline_under_trials_too(work: Path, tmp_path: Path):
    """Past the front end, a unit of under `small_unit` bytes of bitcode is built once with
    clang's pipeline under trials as in single-shot; with the rule off, trials build it."""
    objects = {}
    for rule, expected in (("100000", "small unit"), ("0", "best of 4 trials")):
        log = tmp_path / f"log-{rule}"
        proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", f"{rule}.o"], work,
                    _env(MLCC_SMALL_UNIT=rule, MLCC_TINY_SOURCE="0", MLCC_TRIALS="3", MLCC_LOG=str(log)))
        assert proc.returncode == 0, proc.stderr
        entry = json.loads(log.read_text())
        assert entry["path"] == "optimize" and expected in entry["decision"], entry["decision"]
        objects[rule] = work / f"{rule}.o"
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "b.o"], cwd=work, check=True)
    assert objects["100000"].read_bytes() == (work / "b.o").read_bytes()
    assert object_size(objects["0"]) <= object_size(work / "b.o")


def test_code_bytes_leave_out_directives(tmp_path: Path):
    from mlcc.plan import TINY_SOURCE_READ, code_bytes
    src = tmp_path / "c.c"
    src.write_text("#include <stdio.h>\n#define LONG(x) \\\n   ((x) + 1)\n  int f(void) { return 1; }  \n\n")
    assert code_bytes(str(src), 1000) == len("int f(void) { return 1; }")
    assert code_bytes(str(src), 10) == 10
    assert code_bytes(str(tmp_path / "missing.c"), 1000) == 1000
    src.write_bytes(b"#define A 1\n" * (TINY_SOURCE_READ // 12 + 1))
    assert code_bytes(str(src), 1000) == 1000  # too long to read: not tiny


def test_code_bytes_count_the_project_headers_a_source_includes(tmp_path: Path, monkeypatch):
    """A header-only library's implementation file is all code from its header: the code
    of project headers counts (beside the file for "x.h", -iquote, -I, -include), that of
    system headers does not, and a header is read once."""
    from mlcc.plan import code_bytes
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "lib.h").write_text("int twice(int x) { return 2 * x; }\n" * 50)
    (tmp_path / "inc" / "config.h").write_text("#pragma once\n#define HAVE_X 1\n")
    (tmp_path / "impl.c").write_text('#define LIB_IMPLEMENTATION\n#include "inc/lib.h"\n')
    (tmp_path / "angled.c").write_text("#include <lib.h>\nint y;\n")
    (tmp_path / "probe.c").write_text('#include <stdio.h>\n#include "config.h"\nint main(void) { return 0; }\n')
    (tmp_path / "loop.h").write_text('#include "loop.h"\nint z;\n')
    assert code_bytes("impl.c", 1000) == 1000
    assert code_bytes("angled.c", 1000) == len("int y;")  # <lib.h> is a system header here
    assert code_bytes("angled.c", 1000, ("-Iinc",)) == 1000
    assert code_bytes("probe.c", 1000, ("-I", "inc")) == len("int main(void) { return 0; }")
    assert code_bytes("probe.c", 1000, ("-Iinc", "-include", "lib.h")) == 1000
    assert code_bytes("loop.h", 1000) == len("int z;")


def test_a_header_only_librarys_implementation_file_is_not_a_tiny_source(work: Path, tmp_path: Path):
    """`#define LIB_IMPLEMENTATION` and `#include "lib.h"`: a few bytes of its own, the
    library's code from the header, so it takes mlcc's path."""
    (work / "src" / "lib.h").write_text("".join(
        f"int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++) s += k * {i}; return s; }}\n"
        for i in range(60)))
    (work / "src" / "lib.c").write_text('#define LIB_IMPLEMENTATION\n#include "lib.h"\n')
    log = tmp_path / "log"
    proc = _run([MLCC, "-Oz", "-c", "src/lib.c", "-o", "lib.o"], work,
                _env(MLCC_SMALL_UNIT="8192", MLCC_LOG=str(log)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(log.read_text())["path"] == "optimize"


def test_opt_limit_scales_with_the_front_end():
    """opt or codegen may take 30x the front end's time, at least 60 s, at most `timeout`."""
    from mlcc.driver import stage_timeout
    from mlcc.settings import Settings

    assert stage_timeout(Settings(), 0.2) == 60.0
    assert stage_timeout(Settings(), 5.0) == 150.0
    assert stage_timeout(Settings(), 100.0) == 600.0
    assert stage_timeout(Settings(timeout=3.0), 5.0) == 3.0


def test_without_a_model_mlcc_is_clang_itself(work: Path, tmp_path: Path):
    """MLCC_MODEL=none (as a level with no bundled model): clang's pipeline either way, so
    mlcc execs clang (same bytes, no split into three processes) and logs why; collecting
    still goes through."""
    log = tmp_path / "build.log"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "mlcc.o"], work,
                _env(MLCC_LOG=str(log), MLCC_MODEL="none"))
    assert proc.returncode == 0, proc.stderr
    subprocess.run([CLANG, "-Oz", "-c", "src/util.c", "-o", "clang.o"], cwd=work, check=True)
    assert (work / "mlcc.o").read_bytes() == (work / "clang.o").read_bytes()
    [entry] = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["path"] == "clang" and entry["reason"] == "no model for -Oz"

    units = tmp_path / "units"
    proc = _run([MLCC, "-Oz", "-c", "src/util.c", "-o", "collected.o"], work,
                _env(MLCC_LOG=str(log), MLCC_MODEL="none", MLCC_COLLECT=str(units)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(log.read_text().splitlines()[-1])["path"] == "optimize"
    assert len(list(units.glob("*.bc"))) == 1


@pytest.mark.parametrize("closed", ["1", "2"])
def test_a_closed_stdout_or_stderr_is_no_failure(work: Path, tmp_path: Path, closed: str):
    # `mlcc ... >&-` as a build script may run it: clang compiles, so must mlcc
    for args in (["-Oz", "-c", "src/util.c", "-o", "u.o"], ["-O2", "-c", "src/util.c", "-o", "u.o"]):
        (work / "u.o").unlink(missing_ok=True)
        line = " ".join([MLCC, *args]) + f" {closed}>&-"
        proc = subprocess.run(line, shell=True, cwd=work, env=_env(tmp_path / "cache"))
        assert proc.returncode == 0, line
        assert (work / "u.o").stat().st_size > 0
