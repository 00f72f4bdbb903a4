"""The model server (mlcc/model_server.py): same decisions and objects as without it,
and a build that never depends on it: stale, broken, unsafe or absent, the compile
decides in its own process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc import model, model_server

FIXTURE = Path(__file__).parent / "data" / "compare"
MLCC = shutil.which("mlcc")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def _compile(work: Path, runtime: Path, out: str, **extra) -> dict:
    """Compile src/util.c at -Oz (no decision cache); return its MLCC_LOG entry."""
    log = work / f"{out}.log"
    # the model server serves the Python entry point (the compile server has the model
    # itself), where a model decides: named, single-shot asks it (the bundled one ranks
    # only trials: targets.toml's single_shot)
    env = mlcc_env(MLCC_NO_CACHE="1", MLCC_LOG=str(log), XDG_RUNTIME_DIR=str(runtime),
                   MLCC_COMPILE_SERVER="0", **{"MLCC_MODEL": str(model.bundled_model_path("z")), **extra})
    proc = subprocess.run([MLCC, "-Oz", "-c", "src/util.c", "-o", out], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(log.read_text().splitlines()[-1])


def _sockets(runtime: Path) -> list[Path]:
    return sorted((runtime / "mlcc").glob("model-*.sock"))


def test_server_gives_the_decision_and_object_of_the_compile_itself(work: Path, runtime: Path):
    first = _compile(work, runtime, "a.o")
    second = _compile(work, runtime, "b.o")
    alone = _compile(work, runtime, "c.o", MLCC_SERVER="0")
    assert first["model_via"] == "server (started)"
    assert second["model_via"] == "server"
    assert alone["model_via"] == "in process"
    for entry in (first, second):
        assert (entry["pipeline"], entry["decision"], entry["scores"]) == \
            (alone["pipeline"], alone["decision"], alone["scores"])
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes() == (work / "c.o").read_bytes()
    assert len(_sockets(runtime)) == 1
    assert (runtime / "mlcc").stat().st_mode & 0o777 == 0o700
    stopped = model_server.stop_all(str(runtime / "mlcc"))
    assert stopped["servers"] == 1 and stopped["cpu"] > 0
    assert _sockets(runtime) == []


def test_idle_server_exits(work: Path, runtime: Path):
    _compile(work, runtime, "a.o", MLCC_SERVER_IDLE="1")
    deadline = time.monotonic() + 30
    while _sockets(runtime) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sockets(runtime) == [], "an idle server must exit and remove its socket"
    assert _compile(work, runtime, "b.o", MLCC_SERVER_IDLE="1")["model_via"] == "server (started)"


def test_a_file_left_at_the_socket_path_is_replaced(work: Path, runtime: Path):
    _compile(work, runtime, "a.o")
    [sock] = _sockets(runtime)
    model_server.stop_all(str(runtime / "mlcc"))
    sock.write_text("not a socket")
    entry = _compile(work, runtime, "b.o")
    assert entry["model_via"] == "server (started)"
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_a_server_answering_nonsense_is_not_trusted(work: Path, runtime: Path):
    _compile(work, runtime, "a.o", MLCC_SERVER="0")
    _compile(work, runtime, "probe.o")  # learn the socket's name, then put an impostor there
    [sock] = _sockets(runtime)
    model_server.stop_all(str(runtime / "mlcc"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.listen(8)
    lock = open(str(sock) + ".lock", "a")
    import fcntl
    fcntl.flock(lock, fcntl.LOCK_EX)  # as a live server holds it: no real server can start

    def impostor():
        for _ in range(1):
            conn, _ = listener.accept()
            with conn:
                conn.recv(1 << 16)
                conn.sendall(b'{"pipeline": 42}')

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    try:
        entry = _compile(work, runtime, "b.o")
    finally:
        listener.close()
        lock.close()
    assert entry["model_via"].startswith("in process (server failed"), entry["model_via"]
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_a_runtime_directory_others_can_enter_is_not_used(work: Path, runtime: Path):
    (runtime / "mlcc").mkdir(mode=0o777)
    os.chmod(runtime / "mlcc", 0o777)
    entry = _compile(work, runtime, "a.o")
    assert entry["model_via"] == "in process (no private runtime directory for the server)"
    assert _sockets(runtime) == []


def test_a_server_that_cannot_start_costs_one_wait_then_none(work: Path, runtime: Path):
    _compile(work, runtime, "probe.o")
    [sock] = _sockets(runtime)
    model_server.stop_all(str(runtime / "mlcc"))
    lock = Path(str(sock) + ".lock")
    lock.unlink()
    lock.mkdir()  # the server cannot open its lock file: it dies at start
    start = time.monotonic()
    first = _compile(work, runtime, "a.o")
    waited = time.monotonic() - start
    assert first["model_via"] == "in process (the server did not start)"
    start = time.monotonic()
    second = _compile(work, runtime, "b.o")
    assert second["model_via"] == "in process (the server failed to start recently)"
    assert time.monotonic() - start < waited
    assert (work / "a.o").read_bytes() == (work / "b.o").read_bytes()


def test_a_runtime_directory_too_deep_for_a_socket_is_not_used(work: Path, tmp_path: Path):
    deep = tmp_path / ("d" * 60)
    deep.mkdir(mode=0o700)
    entry = _compile(work, deep, "a.o")
    assert entry["model_via"] == "in process (the runtime directory's path is too long for a socket)"


def test_mlcc_tool_shows_and_stops_the_server(work: Path, runtime: Path):
    _compile(work, runtime, "a.o")
    env = mlcc_env(XDG_RUNTIME_DIR=str(runtime))
    tool = shutil.which("mlcc-tool")
    status = subprocess.run([tool, "server", "status", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    [server] = json.loads(status.stdout)
    assert server["answered"] == 1 and server["current"] and server["cpu"] > 0
    stop = subprocess.run([tool, "server", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stop.stdout.strip() == "stopped 1 model server(s)"
    after = subprocess.run([tool, "server", "status"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert after.stdout.strip() == "no model server running"


def test_the_server_passes_the_trial_sets_on(work: Path, runtime: Path, monkeypatch):
    from mlcc import model

    bitcode = work / "util.bc"
    subprocess.run(["clang-19", "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(work / "src" / "util.c"), "-o", str(bitcode)], check=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    path = str(model.bundled_model_path("z"))
    served, via = model_server.ask(str(bitcode), "z", path, 60)
    assert via.startswith("server") and served is not None
    alone = model.rank(str(bitcode), "z", path)
    assert served.trial_sets == alone.trial_sets and len(alone.trial_sets) == len(alone.ranked) - 1


def test_one_python_by_another_name_has_the_same_servers(tmp_path: Path):
    """`python3` and `python` (links to one binary) are one Python: a client built by one
    and `mlcc-tool` run by the other name the same sockets; a venv is a Python of its own."""
    from mlcc import compile_server
    parent = compile_server.package_parent()
    code = ("from mlcc import compile_server, model_server; "
            "print(model_server.socket_path('/run'), compile_server.socket_name('/pkg'))")

    def names(python) -> list[str]:
        proc = subprocess.run([str(python), "-c", code], env={**os.environ, "PYTHONPATH": parent},
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    alias = tmp_path / "python-by-another-name"
    alias.symlink_to(os.path.realpath(sys.executable))
    assert names(alias) == names(sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    other = names(venv / "bin" / "python")
    assert [a != b for a, b in zip(other, names(sys.executable))] == [True, True]
