"""What the machine can do to a build: special and full outputs, read-only outputs,
a very large generated file, many mlcc processes on one output directory and cache.

In every case mlcc exits as clang does, prints no traceback, leaves no partial
output and never replaces a device or a file it cannot write.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import mlcc_env

FIXTURE = Path(__file__).parent / "data" / "compare"
MLCC = shutil.which("mlcc")


def run(argv, cwd, **env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=mlcc_env(**env), capture_output=True, text=True,
                          timeout=900)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def large_source(functions: int) -> str:
    """A generated C file: many functions, each with its own table (tens of KiB of object)."""
    lines = ["#include <stddef.h>"]
    for i in range(functions):
        table = ",".join(str((j * (i + 3)) % 251) for j in range(48))
        lines.append(f"static const unsigned char t{i}[48] = {{{table}}};\n"
                     f"int f{i}(const int *p, size_t n) {{ int s = {i}; "
                     f"for (size_t k = 0; k < n; k++) s = s * 31 + t{i}[(p[k] + k) % 48]; "
                     f"return s ^ (int)n; }}")
    return "\n".join(lines) + "\n"


def test_dev_null_is_written_through_not_replaced(work: Path):
    """`-o /dev/null` (configure scripts and flag probes do it): the device stays a device."""
    before = os.stat("/dev/null")
    proc = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "/dev/null"], work)
    assert proc.returncode == 0, proc.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_fifo_output_receives_the_object(work: Path):
    fifo = work / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = run([MLCC, "-Oz", "-c", "src/util.c", "-o", str(fifo), "-fmlcc-pipeline=clang"], work)
    reader.join(timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "ref.o"], cwd=work, check=True)
    assert received == [(work / "ref.o").read_bytes()]


def test_full_device_is_one_error_line(work: Path):
    """/dev/full: clang exits 1 (with a crash report); mlcc exits 1 with one line."""
    proc = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "/dev/full"], work)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "mlcc: error: unable to write output file '/dev/full': 'No space left on device'"]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.fixture
def small_filesystem(tmp_path: Path):
    """A 64 KiB tmpfs (needs the right to mount, which root has on the CI machines)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("tmpdir_on_full_disk", [False, True])
def test_full_disk_leaves_no_partial_output(work: Path, small_filesystem: Path,
                                            tmpdir_on_full_disk: bool):
    """The output's file system fills up while the object (about 100 KiB) is written; with
    TMPDIR there too, already while the bitcode is. Exit 1 as clang, nothing left behind."""
    (work / "big.c").write_text(large_source(500))
    target = small_filesystem / "big.o"
    env = {"TMPDIR": str(small_filesystem)} if tmpdir_on_full_disk else {}
    proc = run([MLCC, "-Oz", "-c", "big.c", "-o", str(target)], work, **env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "No space left on device" in proc.stderr
    leftovers = [p.name for p in small_filesystem.iterdir() if not p.name.startswith("symbolizer-")]
    assert leftovers == []  # (llvm's crash handler leaves empty symbolizer-* files when clang fails)


@pytest.fixture
def immutable(work: Path):
    """Files that even root cannot replace or create in (chattr +i, on ext4 and most others)."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {proc.stderr.strip()}")
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_read_only_output_file_is_left_alone(work: Path, immutable):
    old = work / "old.o"
    old.write_bytes(b"previous build")
    immutable(old)
    ours = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "old.o"], work)
    theirs = run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "old.o"], work)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.splitlines() == [
        "mlcc: error: unable to open output file 'old.o': 'Operation not permitted'"]
    assert old.read_bytes() == b"previous build"
    assert sorted(p.name for p in work.iterdir()) == ["old.o", "src"]


def test_read_only_output_directory_gets_clangs_error(work: Path, immutable):
    out = work / "out"
    out.mkdir()
    immutable(out)
    ours = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "out/u.o"], work)
    theirs = run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "out/u.o"], work)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
    assert list(out.iterdir()) == []


def test_very_large_generated_file(work: Path):
    """About 1 MB of generated C (3,000 functions and tables): mlcc's split compile with
    clang's pipeline gives clang's object byte for byte; the model's choice links and runs
    as clang's object does."""
    (work / "huge.c").write_text(large_source(3000))
    assert (work / "huge.c").stat().st_size > 1_000_000
    forced = run([MLCC, "-Oz", "-c", "huge.c", "-o", "forced.o", "-fmlcc-pipeline=clang"], work,
                 MLCC_NO_CACHE="1")
    assert forced.returncode == 0, forced.stderr
    subprocess.run(["clang-19", "-Oz", "-c", "huge.c", "-o", "ref.o"], cwd=work, check=True)
    assert (work / "forced.o").read_bytes() == (work / "ref.o").read_bytes()

    chosen = run([MLCC, "-Oz", "-c", "huge.c", "-o", "chosen.o"], work, MLCC_NO_CACHE="1")
    assert chosen.returncode == 0, chosen.stderr
    assert "Traceback" not in chosen.stderr
    (work / "main.c").write_text("int f2999(const int *, unsigned long);\n"
                                 "int main(void) { int v[3] = {1, 2, 3}; return f2999(v, 3) == 0; }\n")
    for obj, exe in (("chosen.o", "a"), ("ref.o", "b")):
        subprocess.run(["clang-19", "main.c", obj, "-o", exe], cwd=work, check=True)
    assert (subprocess.run(["./a"], cwd=work).returncode
            == subprocess.run(["./b"], cwd=work).returncode)


def test_eight_processes_on_one_output_directory_and_cache(work: Path, tmp_path: Path):
    """8 mlcc at once, three rounds, one cache: each writes its own object and all write
    the same shared object; every object is the one a lone mlcc makes."""
    cache = tmp_path / "cache"
    sources = ["src/util.c", "src/lib.c", "src/main.c", "src/use_lib.c"]
    expected = {}
    for i, src in enumerate(sources):
        solo = run([MLCC, "-Oz", "-c", src, "-o", f"solo{i}.o"], work, MLCC_NO_CACHE="1")
        assert solo.returncode == 0, solo.stderr
        expected[src] = (work / f"solo{i}.o").read_bytes()
    out = work / "out"
    out.mkdir()
    for round_ in range(3):
        procs = []
        for i in range(8):
            src = sources[i % len(sources)]
            for target in (f"out/p{i}.o", "out/shared-util.o" if i % 2 else None):
                if target is None:
                    continue
                argv = [MLCC, "-Oz", "-c", "src/util.c" if "shared" in target else src,
                        "-o", target]
                procs.append(subprocess.Popen(argv, cwd=work, env=mlcc_env(MLCC_CACHE=str(cache)),
                                              stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
            assert "Traceback" not in err
        for i in range(8):
            assert (out / f"p{i}.o").read_bytes() == expected[sources[i % len(sources)]], round_
        assert (out / "shared-util.o").read_bytes() == expected["src/util.c"]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"p{i}.o" for i in range(8)] + ["shared-util.o"])


def test_unreadable_input_gets_clangs_error(work: Path):
    """As root every file is readable; a directory named like a source is not."""
    (work / "d.c").mkdir()
    ours = run([MLCC, "-Oz", "-c", "d.c", "-o", "d.o"], work)
    theirs = run(["clang-19", "-Oz", "-c", "d.c", "-o", "d.o"], work)
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) != (0, "")
    assert not (work / "d.o").exists()


def test_full_cache_directory_is_no_error(work: Path, small_filesystem: Path):
    """The decision cache on a full file system: the compile succeeds, quietly, with
    the object a cache-less build gives, and no partial entry is left behind."""
    subprocess.run(["dd", "if=/dev/zero", f"of={small_filesystem / 'filler'}", "bs=4k"],
                   capture_output=True)  # stops with "No space left on device"
    cache = small_filesystem / "cache"
    proc = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "a.o"], work, MLCC_CACHE=str(cache))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    alone = run([MLCC, "-Oz", "-c", "src/util.c", "-o", "b.o"], work, MLCC_NO_CACHE="1")
    assert alone.returncode == 0, alone.stderr
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size == 0] if cache.exists() else []
    assert leftovers == []
