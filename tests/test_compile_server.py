"""The native client and the compile server (mlcc/client/mlcc-client.c,
mlcc/compile_server.py): the same bytes, exit codes and signals as the Python
entry point; a build that never depends on the server (absent, stale, foreign,
killed mid-command, another version); one user only.

The rest of the suite runs through the client with MLCC_TEST_CLIENT=1.
"""

from __future__ import annotations

import json
import re
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import as_user, mlcc_env
from mlcc import client_build, compile_server, model_server

FIXTURE = Path(__file__).parent / "data" / "compare"
PYTHON_MLCC = [sys.executable, "-c", "import sys; del sys.argv[0]; from mlcc.cli import main_c; main_c()",
               "mlcc"]

pytestmark = pytest.mark.skipif(shutil.which("clang-19") is None, reason="needs clang-19")


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> str:
    bindir = tmp_path_factory.mktemp("client")
    client_build.build(bindir)
    return str(bindir / "mlcc")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def _env(runtime: Path, **extra) -> dict:
    return mlcc_env(MLCC_NO_CACHE="1", XDG_RUNTIME_DIR=str(runtime), **extra)


def _sock(runtime: Path) -> Path:
    name = compile_server.socket_name(compile_server.package_parent())
    return runtime / "mlcc" / name


def _status(runtime: Path) -> list[dict]:
    return [s for s in model_server.servers(str(runtime / "mlcc")) if s.get("kind") == "compile"]


def _wait_server(runtime: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _status(runtime)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no compile server started")


def _start(client: str, work: Path, runtime: Path) -> dict:
    """Run one command (which starts the server), then wait until the server answers."""
    proc = subprocess.run([client, "-dumpmachine"], cwd=work, env=_env(runtime),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return _wait_server(runtime)


def _run(argv, work, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, timeout=600, **kw)


def test_served_commands_give_the_bytes_of_the_python_entry(client, work: Path, runtime: Path):
    server = _start(client, work, runtime)
    log = work / "log.jsonl"
    env = _env(runtime, MLCC_LOG=str(log))
    for argv in (["-Oz", "-c", "src/util.c", "-o", "served.o"],
                 ["-Os", "-S", "src/main.c", "-o", "served.s"]):
        assert _run([client, *argv], work, env).returncode == 0
    python = _env(runtime)
    assert _run([*PYTHON_MLCC, "-Oz", "-c", "src/util.c", "-o", "py.o"], work, python).returncode == 0
    assert _run([*PYTHON_MLCC, "-Os", "-S", "src/main.c", "-o", "py.s"], work, python).returncode == 0
    assert (work / "served.o").read_bytes() == (work / "py.o").read_bytes()
    assert (work / "served.s").read_bytes() == (work / "py.s").read_bytes()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["model_via"] for e in entries] == ["compile server", "compile server"]
    # pass-through: the client execs clang, whose stdout is the client's
    served = _run([client, "-E", "src/util.c"], work, env)
    clang = _run(["clang-19", "-E", "src/util.c"], work, env)
    assert served.returncode == 0 and served.stdout == clang.stdout
    assert _status(runtime)[0]["pid"] == server["pid"]
    assert _status(runtime)[0]["answered"] >= 4


def test_exit_codes_and_diagnostics_are_those_of_the_python_entry(client, work: Path, runtime: Path):
    _start(client, work, runtime)
    env = _env(runtime)
    for argv in (["-Oz", "-c", "src/bad.c", "-o", "bad.o"], ["-fsyntax-only", "src/bad.c"],
                 ["-Oz", "src/undefined.c", "-o", "u"], ["-Oz", "-c", "nonexistent.c"],
                 ["-fmlcc-trials=many", "-c", "src/util.c"]):
        ours = _run([client, *argv], work, env)
        theirs = _run([*PYTHON_MLCC, *argv], work, env)
        assert ours.returncode == theirs.returncode != 0, argv
        # a link's messages name mlcc's temporary objects
        tmp = re.compile(rb"/tmp/mlcc-\w+/")
        assert tmp.sub(b"", ours.stderr) == tmp.sub(b"", theirs.stderr)
    assert not (work / "bad.o").exists()
    version = _run([client, "--version"], work, env).stdout.decode()
    assert "native client, compile server pid" in version


def test_pass_through_commands_are_answered_without_a_fork_and_logged_as_before(
        client, work: Path, runtime: Path, tmp_path: Path):
    """A link, -E, a tiny source: the server decides them in its own process, in the
    client's directory and environment (its PATH finds clang, its MLCC_LOG is written,
    relative to its directory), and the client execs clang. Anything that would print
    (an unknown -fmlcc option) still gets a child, and says it."""
    _start(client, work, runtime)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "clang"  # the client's MLCC_CLANG: it must be the one exec'd
    wrapper.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'ran'}\nexec {shutil.which('clang-19')} \"$@\"\n")
    wrapper.chmod(0o755)
    env = _env(runtime, MLCC_LOG="log.jsonl", MLCC_CLANG=str(bindir / "clang"), MLCC_SMALL_UNIT="8192")
    before = _status(runtime)[0]["answered_unforked"]
    for argv in (["-E", "src/util.c", "-o", "u.i"], ["-Oz", "-c", "src/util.c", "-o", "tiny.o"],
                 ["-O2", "src/main.c", "src/util.c", "src/lib.c", "-o", "prog"]):
        done = _run([client, *argv], work, env)
        assert done.returncode == 0 and done.stderr == b"", (argv, done.stderr)
        before += 1
        assert _status(runtime)[0]["answered_unforked"] == before, argv
    entries = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [e["path"] for e in entries] == ["clang"] * 3
    assert {e["cwd"] for e in entries} == {str(work)}
    assert entries[1]["reason"] == "tiny source"
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "clang.o"], cwd=work, check=True)
    assert (work / "tiny.o").read_bytes() == (work / "clang.o").read_bytes()
    bad = _run([client, "-fmlcc-no-such-option", "-c", "src/util.c"], work, env)
    theirs = _run([*PYTHON_MLCC, "-fmlcc-no-such-option", "-c", "src/util.c"], work, env)
    assert bad.returncode == theirs.returncode != 0 and bad.stderr == theirs.stderr
    assert _status(runtime)[0]["answered_unforked"] == before
    assert len((tmp_path / "ran").read_text().splitlines()) >= 3


def test_standard_streams_and_directory_are_the_callers(client, work: Path, runtime: Path):
    _start(client, work, runtime)
    env = _env(runtime)
    source = (work / "src" / "util.c").read_bytes()
    stdin = _run([client, "-Oz", "-Isrc", "-x", "c", "-c", "-", "-o", "stdin.o"], work, env, input=source)
    assert stdin.returncode == 0, stdin.stderr
    to_stdout = _run([client, "-Oz", "-c", "src/util.c", "-o", "-"], work, env)
    assert to_stdout.returncode == 0 and to_stdout.stdout[:4] == b"\x7fELF"
    sub = work / "src"
    assert _run([client, "-Oz", "-c", "util.c"], sub, env).returncode == 0
    assert (sub / "util.o").exists()
    # a closed stdout: clang runs fine, and so does mlcc
    closed = subprocess.run(f"{client} -Oz -c src/util.c -o closed.o >&-", shell=True, cwd=work,
                            env=env, capture_output=True, timeout=600)
    assert closed.returncode == 0 and (work / "closed.o").exists()


def _mlcc_temporaries(tmpdir: Path) -> list[Path]:
    return [p for p in tmpdir.iterdir() if p.name.startswith("mlcc-")]


def _big_source(path: Path, functions: int = 4000) -> None:
    path.write_text("\n".join(
        f"int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += j * {i} ^ (s >> 3);"
        f" return s + {i}; }}" for i in range(functions)) + "\n")


def _started_compile(client, work: Path, runtime: Path, tmpdir: Path, out: str, **popen):
    _big_source(work / "big.c")
    env = _env(runtime, TMPDIR=str(tmpdir))
    proc = subprocess.Popen([client, "-Oz", "-c", "big.c", "-o", out], cwd=work, env=env,
                            stderr=subprocess.PIPE, **popen)
    deadline = time.time() + 60
    while time.time() < deadline and not _mlcc_temporaries(tmpdir):
        time.sleep(0.02)
    assert _mlcc_temporaries(tmpdir), "the compile did not start"
    time.sleep(0.3)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_reach_the_compile_and_kill_the_client_alike(client, work: Path, runtime: Path,
                                                            tmp_path: Path, signum):
    _start(client, work, runtime)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _started_compile(client, work, runtime, tmpdir, "big.o",
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signum, err
    assert b"Traceback" not in err
    assert _mlcc_temporaries(tmpdir) == [], "temporary files left"
    assert not (work / "big.o").exists()
    time.sleep(0.5)
    assert _status(runtime)[0]["pid"], "the server lives on"


def test_a_client_killed_outright_leaves_no_compile_behind(client, work: Path, runtime: Path,
                                                          tmp_path: Path):
    _start(client, work, runtime)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _started_compile(client, work, runtime, tmpdir, "big.o")
    proc.kill()
    proc.wait()
    deadline = time.time() + 60
    while time.time() < deadline and _mlcc_temporaries(tmpdir):
        time.sleep(0.05)
    assert _mlcc_temporaries(tmpdir) == [], "the server's child went on without its client"
    assert not (work / "big.o").exists()


def test_a_server_killed_mid_command_costs_a_rerun_not_the_compile(client, work: Path,
                                                                   runtime: Path, tmp_path: Path):
    server = _start(client, work, runtime)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _started_compile(client, work, runtime, tmpdir, "big.o")
    os.kill(server["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    alone = _run([*PYTHON_MLCC, "-Oz", "-c", "big.c", "-o", "alone.o"], work, _env(runtime))
    assert alone.returncode == 0
    assert (work / "big.o").read_bytes() == (work / "alone.o").read_bytes()
    assert _mlcc_temporaries(tmpdir) == []


def test_stale_or_foreign_socket_files_fall_back(client, work: Path, runtime: Path):
    (runtime / "mlcc").mkdir(mode=0o700)
    sock = _sock(runtime)
    sock.write_text("not a socket")
    env = _env(runtime)
    assert _run([client, "-Oz", "-c", "src/util.c", "-o", "a.o"], work, env).returncode == 0
    _wait_server(runtime)  # the client started one, which replaced the file
    model_server.stop_all(str(runtime / "mlcc"))
    deadline = time.monotonic() + 30  # a loaded machine: the stopped server goes slowly
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sock.unlink(missing_ok=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock))  # bound, never listening: a server that died
    dead.close()
    proc = _run([client, "-Oz", "-c", "src/util.c", "-o", "b.o"], work, env)
    assert proc.returncode == 0 and proc.stderr == b""
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    _wait_server(runtime)


def test_an_impostor_answering_nonsense_costs_a_rerun(client, work: Path, runtime: Path):
    """A server of another mlcc version, or anything else at the socket that does not
    speak the protocol: the command runs in the client's own process."""
    (runtime / "mlcc").mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(_sock(runtime)))
    listener.listen(8)
    import threading

    def impostor():
        conn, _ = listener.accept()
        with conn:
            conn.recv(1 << 16)
            conn.sendall(b"Zgarbage\x00\x01")

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    try:
        proc = _run([client, "-Oz", "-c", "src/util.c", "-o", "a.o"], work, _env(runtime))
    finally:
        thread.join(10)
        listener.close()
    assert proc.returncode == 0, proc.stderr
    assert _run([*PYTHON_MLCC, "-Oz", "-c", "src/util.c", "-o", "b.o"], work,
                _env(runtime)).returncode == 0
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_changed_code_restarts_the_server(work: Path, runtime: Path, tmp_path: Path):
    """An edited or upgraded mlcc: the stale server hands over to a new one, and the
    command in between runs in the client's own process."""
    copy = tmp_path / "pkg"
    shutil.copytree(Path(compile_server.package_parent()) / "mlcc", copy / "mlcc",
                    ignore=shutil.ignore_patterns("__pycache__", "learn"))
    bindir = tmp_path / "bin"
    subprocess.run([sys.executable, "-m", "mlcc.client_build", "--bindir", str(bindir)],
                   env={**os.environ, "PYTHONPATH": str(copy)}, cwd=copy, check=True,
                   capture_output=True)
    client = str(bindir / "mlcc")
    env = _env(runtime)
    assert _run([client, "-dumpmachine"], work, env).returncode == 0
    first = _wait_server(runtime)
    assert first["current"] is False  # another install's server (the copy's)
    os.utime(copy / "mlcc" / "plain.py")
    log = work / "log.jsonl"
    proc = _run([client, "-Oz", "-c", "src/util.c", "-fmlcc-log=" + str(log)], work, env)
    assert proc.returncode == 0 and proc.stderr == b""
    assert json.loads(log.read_text())["model_via"] != "compile server"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [s["pid"] for s in _status(runtime)] in ([], [first["pid"]]):
        time.sleep(0.05)
    assert [s["pid"] for s in _status(runtime)] not in ([], [first["pid"]])


def test_the_compile_server_can_be_turned_off(client, work: Path, runtime: Path):
    log = work / "log.jsonl"
    off = _run([client, "-Oz", "-c", "src/util.c"], work,
               _env(runtime, MLCC_COMPILE_SERVER="0", MLCC_LOG=str(log), MLCC_SERVER="0"))
    assert off.returncode == 0
    time.sleep(1)
    assert not _sock(runtime).exists()
    _start(client, work, runtime)
    flag = _run([client, "-Oz", "-c", "src/util.c", "-fmlcc-no-compile-server"], work,
                _env(runtime, MLCC_LOG=str(log), MLCC_SERVER="0"))
    assert flag.returncode == 0
    assert [json.loads(line)["model_via"] for line in log.read_text().splitlines()] == \
        ["in process", "in process"]


@pytest.mark.parametrize("home", ["missing", "read-only"])
def test_no_home_or_a_read_only_one(client, work: Path, runtime: Path, tmp_path: Path, home):
    env = _env(runtime)
    env.pop("MLCC_CACHE", None)
    env.pop("MLCC_NO_CACHE", None)
    if home == "missing":
        env["HOME"] = str(tmp_path / "nowhere")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        env["HOME"] = str(ro)
        ro.chmod(0o500)
    try:
        _run([client, "-dumpmachine"], work, env)
        _wait_server(runtime)
        ours = _run([client, "-Oz", "-c", "src/util.c", "-o", "a.o"], work, env)
        assert ours.returncode == 0 and b"Traceback" not in ours.stderr
        assert len(ours.stderr.splitlines()) <= 1
        alone = _run([*PYTHON_MLCC, "-Oz", "-c", "src/util.c", "-o", "b.o"], work,
                     {**env, "MLCC_COMPILE_SERVER": "0"})
        assert alone.returncode == 0
        assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()
    finally:
        if home == "read-only":
            (tmp_path / "ro").chmod(0o700)


def test_the_server_exits_when_idle(client, work: Path, runtime: Path):
    env = _env(runtime, MLCC_SERVER_IDLE="1")
    assert _run([client, "-dumpmachine"], work, env).returncode == 0
    _wait_server(runtime)
    deadline = time.monotonic() + 30
    while _sock(runtime).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sock(runtime).exists()


def test_a_server_that_exits_on_its_own_leaves_its_cpu_for_the_benchmarks(client, work: Path,
                                                                          runtime: Path):
    """A benchmark counts the servers' CPU when it stops them at the end of a build; one
    that went idle (or stale) before that leaves its CPU behind, counted once."""
    env = _env(runtime, MLCC_SERVER_IDLE="1")
    assert _run([client, "-Oz", "-c", "src/util.c", "-o", "util.o"], work, env).returncode == 0
    _wait_server(runtime)
    directory = str(runtime / "mlcc")
    deadline = time.monotonic() + 30
    while not model_server.exited_cpu(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = model_server.exited_cpu(directory)
    assert len(left) == 1 and list(left.values())[0] > 0
    found = model_server.stop_all(directory)
    assert found["exited"] == 1 and found["cpu"] >= list(left.values())[0]
    assert model_server.stop_all(directory)["exited"] == 0
    # a server stopped by a request was counted in its answer: it leaves nothing
    _start(client, work, runtime)
    assert model_server.stop_all(directory)["compile"] == 1
    time.sleep(1.0)
    assert model_server.exited_cpu(directory) == {}


def _connect_as(uid: int, gid: int, path: str) -> str:
    """As `uid`: connect to `path`, send a status request; what happened ("refused: ...",
    "hung up", or the answer)."""
    def talk() -> str:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10)
        conn.connect(path)
        conn.sendall(b'{"protocol": 1, "op": "status"}\n')
        answer = conn.recv(1 << 16)
        return answer.decode() if answer else "hung up"
    return as_user(uid, gid, talk)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_user_cannot_connect(client, work: Path, runtime: Path):
    _start(client, work, runtime)
    nobody = pwd.getpwnam("nobody")
    path = str(_sock(runtime))
    # the private directory keeps them out
    assert _connect_as(nobody.pw_uid, nobody.pw_gid, path).startswith("refused")
    # and with the directory and socket opened up, the server's peer check does
    os.chmod(runtime, 0o755)
    os.chmod(runtime / "mlcc", 0o755)
    os.chmod(path, 0o777)
    try:
        answer = _connect_as(nobody.pw_uid, nobody.pw_gid, path)
        # connected, then hung up on unanswered (however the write or read notices)
        assert answer in ("hung up", "refused: Connection reset by peer", "refused: Broken pipe"), answer
        assert '"kind": "compile"' in _connect_as(0, 0, path)  # the owner still gets answers
    finally:
        os.chmod(runtime / "mlcc", 0o700)


def test_a_server_leaves_nothing_in_the_tmpdir_of_the_command_that_started_it(client, work: Path,
                                                                            runtime: Path, tmp_path: Path):
    """The servers' own files (onnxruntime writes `.ses` into TMPDIR when imported) go to the
    private runtime directory; the command's temporary files are its own and removed."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = _env(runtime, TMPDIR=str(tmpdir))
    assert _run([client, "-Oz", "-c", "src/util.c", "-o", "first.o"], work, env).returncode == 0
    _wait_server(runtime)
    assert _run([client, "-Oz", "-c", "src/util.c", "-o", "served.o"], work, env).returncode == 0
    assert list(tmpdir.iterdir()) == []


def test_the_first_command_waits_for_the_server_it_starts(client, work: Path, runtime: Path):
    """No server yet: the command starts one and waits for it to listen (no CPU spent
    meanwhile) instead of running as Python in its own process, with a model server of
    its own beside it."""
    log = work / "log.jsonl"
    env = _env(runtime, MLCC_LOG=str(log))
    proc = _run([client, "-Oz", "-c", "src/util.c", "-o", "a.o"], work, env)
    assert proc.returncode == 0 and proc.stderr == b""
    assert json.loads(log.read_text())["model_via"] == "compile server"
    assert [s["kind"] for s in model_server.servers(str(runtime / "mlcc"))] == ["compile"]
    alone = _run([*PYTHON_MLCC, "-Oz", "-c", "src/util.c", "-o", "b.o"], work,
                 _env(runtime, MLCC_SERVER="0"))
    assert alone.returncode == 0
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_a_server_that_failed_to_start_is_not_waited_for(client, work: Path, runtime: Path):
    """A start marker the failed server filled in: clients run commands themselves at
    once, and start no other server until RETRY_AFTER has passed."""
    (runtime / "mlcc").mkdir(mode=0o700)
    Path(str(_sock(runtime)) + ".spawned").write_text("failed\n")
    log = work / "log.jsonl"
    started = time.monotonic()
    proc = _run([client, "-Oz", "-c", "src/util.c", "-o", "a.o"], work,
                _env(runtime, MLCC_LOG=str(log), MLCC_SERVER="0"))
    assert proc.returncode == 0 and proc.stderr == b""
    assert time.monotonic() - started < compile_server.START_WAIT
    assert json.loads(log.read_text())["model_via"] == "in process"
    assert not _sock(runtime).exists()


def test_the_server_says_when_it_cannot_start(runtime: Path, monkeypatch):
    """A server whose start fails fills in the marker its client made."""
    directory = runtime / "mlcc"
    directory.mkdir(mode=0o700)
    path = str(directory / "compile-test.sock")
    Path(path + ".spawned").touch()

    def broken():
        raise OSError("no room")

    monkeypatch.setattr(compile_server, "_warm_up", broken)
    with pytest.raises(OSError):
        compile_server.serve(path, idle=1.0)
    assert Path(path + ".spawned").read_text() == "failed\n"
