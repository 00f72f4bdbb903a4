"""The clang fork server (mlcc/client/mlcc-fork-server.c, mlcc/fork_server.py): clang's
bytes, exit codes, streams, directory and environment as a clang process gives them;
timeouts and Ctrl-C stop the forked clang before run_tool returns; a dead, stale or
foreign fork server costs a clang process, never the compile; one user only.

The compile server starts it; the rest of the suite (MLCC_TEST_CLIENT=1) runs through it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import as_user, mlcc_env
from mlcc import client_build, fork_server, fork_server_build, model_server, process
from mlcc.errors import ToolFailed

CLANG = shutil.which("clang-19")
FIXTURE = Path(__file__).parent / "data" / "compare"

pytestmark = pytest.mark.skipif(CLANG is None, reason="needs clang-19")


@pytest.fixture(scope="module")
def library() -> str:
    """The fork server built for clang-19 (scripts/setup.sh builds it; here if not)."""
    return fork_server_build.installed(CLANG) or str(fork_server_build.build(CLANG))


@pytest.fixture
def served(library):
    """A fork server of clang-19 and a client of it, as a compile server's child has them."""
    directory = _short_dir()
    path = os.path.join(directory, "fork.sock")
    proc = fork_server.start(CLANG, path, library)
    _wait_for(lambda: os.path.exists(path))
    yield proc, fork_server.Client(path, CLANG)
    proc.terminate()
    proc.wait()
    shutil.rmtree(directory, ignore_errors=True)


def _short_dir() -> str:
    """A private directory for a socket (its path holds 108 bytes at most)."""
    return tempfile.mkdtemp(prefix="mlcc-fs-", dir="/tmp")


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _big_source(path: Path, functions: int = 4000) -> None:
    path.write_text("\n".join(
        f"int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i} ^ (s >> 3);"
        f" return s + {i}; }}" for i in range(functions)) + "\n")


def _through(client, monkeypatch):
    monkeypatch.setattr(process, "fork_server", client)


def test_a_forked_clang_is_clangs_process(served, tmp_path: Path, monkeypatch):
    _, client = served
    _through(client, monkeypatch)
    src = tmp_path / "u.c"
    src.write_text('#include <stdio.h>\nint main(void) { printf("%s\\n", __FILE__); return 0; }\n')
    for flags in (["-Oz", "-c"], ["-O2", "-g", "-c"], ["-Os", "-S"]):
        ext = ".s" if "-S" in flags else ".o"
        process.run_tool([CLANG, *flags, "u.c", "-o", "forked" + ext], cwd=tmp_path)
        subprocess.run([CLANG, *flags, "u.c", "-o", "alone" + ext], cwd=tmp_path, check=True)
        assert (tmp_path / ("forked" + ext)).read_bytes() == (tmp_path / ("alone" + ext)).read_bytes()
    assert client.forked == 3
    # its streams and environment are the caller's
    done = process.run_tool([CLANG, "-E", "-dM", "-x", "c", os.devnull], capture_stdout=True)
    assert b"#define __clang_major__ 19" in done.stdout
    verbose = process.run_tool([CLANG, "-v", "-E", "-x", "c", os.devnull, "-o", os.devnull],
                               capture_stderr=True, env={**os.environ, "CPATH": str(tmp_path)})
    assert str(tmp_path) in verbose.stderr.decode()
    # an error's exit code and diagnostics
    with pytest.raises(ToolFailed) as failed:
        process.run_tool([CLANG, "-c", "missing.c"], cwd=tmp_path, capture_stderr=True)
    alone = subprocess.run([CLANG, "-c", "missing.c"], cwd=tmp_path, capture_output=True, text=True)
    assert failed.value.returncode == alone.returncode == 1
    assert failed.value.stderr == alone.stderr and "missing.c" in alone.stderr
    assert client.forked == 6


def test_a_timeout_kills_and_reaps_the_forked_clang(served, tmp_path: Path, monkeypatch):
    proc, client = served
    _through(client, monkeypatch)
    _big_source(tmp_path / "big.c")
    with pytest.raises(ToolFailed) as failed:
        process.run_tool([CLANG, "-Oz", "-c", "big.c", "-o", "big.o"], cwd=tmp_path, timeout=0.5)
    assert failed.value.timed_out == 0.5
    assert _children(proc.pid) == [], "the forked clang outlived its timeout"
    assert not (tmp_path / "big.o").exists()
    # the fork server serves on
    process.run_tool([CLANG, "-dumpmachine"], capture_stdout=True)
    assert client.forked == 2


def test_ctrl_c_stops_the_forked_clang_first(served, tmp_path: Path, monkeypatch):
    proc, client = served
    _through(client, monkeypatch)
    _big_source(tmp_path / "big.c")

    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            process.run_tool([CLANG, "-Oz", "-c", "big.c", "-o", "big.o"], cwd=tmp_path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _children(proc.pid) == []
    assert not (tmp_path / "big.o").exists()


def test_a_fork_server_killed_mid_command_costs_a_clang_process(served, tmp_path: Path, monkeypatch):
    proc, client = served
    _through(client, monkeypatch)
    _big_source(tmp_path / "big.c")

    def kill_when_forked():
        _wait_for(lambda: _children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_forked)
    killer.start()
    process.run_tool([CLANG, "-Oz", "-c", "big.c", "-o", "big.o"], cwd=tmp_path)
    killer.join()
    subprocess.run([CLANG, "-Oz", "-c", "big.c", "-o", "alone.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "big.o").read_bytes() == (tmp_path / "alone.o").read_bytes()
    assert client.broken and not client.serves(CLANG)
    assert client.forked == 0


def test_a_replaced_clang_is_not_answered_by_the_old_one(library, tmp_path: Path, monkeypatch):
    # a copy of clang's small binary (its libraries are found in the system's path)
    copy = tmp_path / "bin" / "clang"
    copy.parent.mkdir()
    shutil.copy2(os.path.realpath(CLANG), copy)
    path = os.path.join(_short_dir(), "fork.sock")
    proc = fork_server.start(str(copy), path, library)
    try:
        _wait_for(lambda: os.path.exists(path))
        client = fork_server.Client(path, str(copy))
        _through(client, monkeypatch)
        assert process.run_tool([copy, "-dumpmachine"], capture_stdout=True).stdout
        assert client.forked == 1
        replacement = tmp_path / "bin" / "clang.new"
        shutil.copy2(os.path.realpath(CLANG), replacement)
        os.replace(replacement, copy)  # as a package upgrade replaces it
        assert process.run_tool([copy, "-dumpmachine"], capture_stdout=True).stdout
        assert client.forked == 1, "the old clang answered"
        assert proc.wait(timeout=10) == 0, "a stale fork server exits"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_only_the_clang_it_was_started_for(served):
    _, client = served
    assert client.serves(CLANG)
    assert client.serves(os.path.realpath(CLANG))
    assert not client.serves(shutil.which("opt-19") or "/usr/bin/true")


def _connect_as(uid: int, gid: int, path: str) -> str:
    """As `uid`: ask the fork server at `path` to run `clang -dumpmachine`; what came back
    ("pid N", "hung up" or "refused: ...")."""
    def talk() -> str:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10)
        conn.connect(path)
        body = b"\0".join([b"/", b"22", b"2", CLANG.encode(), b"-dumpmachine", b"0"]) + b"\0"
        socket.send_fds(conn, [b"MLFS" + len(body).to_bytes(4, "little")], [0, 1, 2])
        conn.sendall(body)
        answer = conn.recv(4)
        return f"pid {int.from_bytes(answer, 'little')}" if answer else "hung up"
    return as_user(uid, gid, talk)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_user_cannot_use_it(served):
    proc, client = served
    path = client.path
    nobody = pwd.getpwnam("nobody")
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o777)  # opened up: the fork server's own peer check must refuse
    answer = _connect_as(nobody.pw_uid, nobody.pw_gid, path)
    assert answer in ("hung up", "refused: Connection reset by peer", "refused: Broken pipe"), answer
    assert _connect_as(0, 0, path).startswith("pid "), "the owner is served"


def test_the_compile_servers_commands_run_clang_through_it(library, tmp_path: Path, runtime: Path):
    bindir = tmp_path / "client"
    client_build.build(bindir)
    work = tmp_path / "w"
    shutil.copytree(FIXTURE, work)
    log = work / "log.jsonl"
    env = mlcc_env(MLCC_NO_CACHE="1", XDG_RUNTIME_DIR=str(runtime), MLCC_LOG=str(log))
    mlcc = str(bindir / "mlcc")

    def compile_(*extra):
        done = subprocess.run([mlcc, "-Oz", "-fmlcc-trials=3", "-c", "src/util.c", "-o", "util.o",
                               *extra], cwd=work, env=env, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return (work / "util.o").read_bytes(), json.loads(log.read_text().splitlines()[-1])

    compile_()  # starts the compile server, which starts the fork server
    servers = [s for s in model_server.servers(str(runtime / "mlcc")) if s.get("kind") == "compile"]
    assert servers and servers[0]["fork_server"]["clang"] == CLANG
    _wait_for(lambda: any(p.name.startswith("fork-") for p in (runtime / "mlcc").iterdir()))
    forked, entry = compile_()
    assert entry["clang_forked"] >= 5  # front end and four builds at least
    alone, entry = compile_("-fmlcc-no-fork-server")
    assert entry["clang_forked"] == 0
    assert forked == alone
    version = subprocess.run([mlcc, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert "clang from its fork server" in version.stdout
