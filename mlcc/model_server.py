"""The model kept loaded for a whole build.

Importing numpy, onnxruntime and llvmlite costs a compile about 0.3 s of CPU,
more than features and inference take on most units. So the first compile
that needs the model starts this server in the background: it imports them
once, then answers "which pipeline for this bitcode?" over a Unix socket in a
private directory, one request at a time, until it has been idle for
`server_idle` seconds.

The server can make a build faster, never break it: when it is not there, is
stale, slow or answers nonsense, the compile decides in its own process, as it
would without it. Its answers are those of `model.rank` in the compile itself,
so objects are the same with or without it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time

from mlcc.user_dirs import runtime_dir, this_python

PROTOCOL = 2  # 2: the reply names the unit's `slow_size` (was `instructions`)
START_WAIT = 2.0      # seconds a compile waits for a server it started (it listens in ~0.1 s)
REPLY_WAIT = 60.0     # seconds a compile waits for an answer (features of a huge unit: ~2 s)
RETRY_AFTER = 300.0   # seconds compiles do without a server that failed to start
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
_MAX_REQUEST = 1 << 16

# Set in a compile server's child: the model is loaded in this very process already,
# so there is nothing to ask of a model server.
warm = False

# The server's own code and data: an edited or upgraded mlcc gets its own server.
_CODE = ("model_server.py", "model.py", "model_file.py", "features.py", "pipeline.py", "toolchain.py",
         "errors.py", "data/feature-schema.json")


def socket_path(directory: str) -> str:
    """The socket of the server that runs this very code (short: sun_path holds 108 bytes)."""
    import hashlib
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256(f"{PROTOCOL}\0{this_python()}\0{here}".encode())
    for name in _CODE:
        try:
            st = os.stat(os.path.join(here, name))
            h.update(f"\0{name}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"\0{name}:missing".encode())
    return os.path.join(directory, f"model-{h.hexdigest()[:16]}.sock")


# --- the compile's side -------------------------------------------------------

def choose(bitcode: str, opt_level: str, settings, triple: str = ""):
    """`model.choose` for `bitcode` compiled for `triple`, asked of the build's server
    when allowed and a model is to be run; decided in this process when the server
    cannot answer."""
    from mlcc import model

    if warm:
        return model.choose(bitcode, opt_level, settings, via="compile server", triple=triple)
    target = None if settings.pipeline else model.target_of(triple)
    path = None if target is None else model.deciding_model(opt_level, settings, target)
    if path is None or not settings.server:
        return model.choose(bitcode, opt_level, settings, triple=triple)
    decision, via = ask(bitcode, opt_level, path, settings.server_idle, target.name)
    if decision is not None:
        return decision
    return model.choose(bitcode, opt_level, settings, via=via, triple=triple)


def ask(bitcode: str, opt_level: str, model_path: str, idle: float, target: str = "x86_64"):
    """The server's decision for `bitcode`, starting the server if none runs.

    Returns (Decision or None, how): None means decide in this process, `how`
    says why ("no private runtime directory", "server failed: ...").
    """
    from mlcc.model import Decision

    directory = runtime_dir()
    if directory is None:
        return None, "in process (no private runtime directory for the server)"
    path = socket_path(directory)
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        return None, "in process (the runtime directory's path is too long for a socket)"
    failed = path + ".failed"  # a server that would not start: don't wait for it every compile
    try:
        if time.time() - os.stat(failed).st_mtime < RETRY_AFTER:
            return None, "in process (the server failed to start recently)"
    except OSError:
        pass
    request = (json.dumps({"protocol": PROTOCOL, "bitcode": os.path.abspath(bitcode),
                           "opt_level": opt_level, "model": os.path.abspath(model_path),
                           "target": target})
               + "\n").encode()
    how = "server"
    try:
        reply = _exchange(path, request)
        if reply is None:
            _start(path, idle)
            how = "server (started)"
            deadline = time.monotonic() + START_WAIT
            while reply is None and time.monotonic() < deadline:
                time.sleep(0.02)
                reply = _exchange(path, request)
            if reply is None:
                with open(failed, "w"):
                    pass
                return None, "in process (the server did not start)"
        answer = json.loads(reply)
        if "error" in answer:
            return None, f"in process (server: {answer['error']})"
        decision = Decision(pipeline=str(answer["pipeline"]), source=str(answer["source"]),
                            ranked=tuple(str(p) for p in answer["ranked"]),
                            scores={str(k): float(v) for k, v in answer["scores"].items()},
                            via=how, slow_size=(None if answer.get("slow_size") is None
                                                else float(answer["slow_size"])),
                            trial_sets=tuple(tuple(str(p) for p in s) for s in answer.get("trial_sets", ())))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"in process (server failed: {type(exc).__name__})"
    return decision, how


def _exchange(path: str, request: bytes) -> bytes | None:
    """Send one request, read the whole reply; None if nobody listens at `path`."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(1.0)
        try:
            conn.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return None
        except OSError as exc:  # not a socket, or a socket file left by a dead server
            if exc.errno in (errno.ENOTSOCK, errno.ECONNREFUSED):
                return None
            raise
        conn.settimeout(REPLY_WAIT)
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        if not chunks:
            raise ConnectionResetError("empty reply")
        return b"".join(chunks)
    finally:
        conn.close()


def servers(directory: str | None = None) -> list[dict]:
    """Every server of this user that answers, with its status (pid, CPU seconds,
    units answered, start time, idle limit, socket); for `mlcc-tool server`."""
    directory = directory or runtime_dir()
    if directory is None:
        return []
    from mlcc import compile_server
    current = {socket_path(directory), os.path.join(directory, compile_server.socket_name(
        compile_server.package_parent()))}
    return [{**answer, "socket": path, "current": path in current}
            for path, answer in _ask_each(directory, "status")]


def stop_all(directory: str) -> dict:
    """Stop every server with a socket in `directory` (a runtime directory's mlcc/), the
    compile servers (compile_server.py) among them; return {"servers": how many
    answered, "compile": how many of them were compile servers, "cpu": their CPU
    seconds, those that exited on their own since the last call included, and "exited":
    how many of those}. For benchmarks, which must count the servers' CPU time with the
    build's."""
    found = {"servers": 0, "compile": 0, "cpu": 0.0, "exited": 0}
    # compile servers that exited on their own meanwhile (idle, stale) left their CPU
    for name, cpu in exited_cpu(directory).items():
        found["cpu"] += cpu
        found["exited"] += 1
        try:
            os.unlink(os.path.join(directory, name))  # counted once
        except OSError:
            pass
    for path, answer in _ask_each(directory, "stop"):
        found["cpu"] += float(answer["cpu"])
        found["servers"] += 1
        found["compile"] += answer.get("kind") == "compile"
        deadline = time.monotonic() + 5.0  # stopped means gone: it removes its socket last
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
    return found


def exited_cpu(directory: str) -> dict[str, float]:
    """{file name: CPU seconds} of the compile servers in `directory` that exited on
    their own (`compile_server._record_exit_cpu`)."""
    from mlcc.compile_server import EXITED_PREFIX
    found = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        if name.startswith(EXITED_PREFIX) and name.endswith(".cpu"):
            try:
                with open(os.path.join(directory, name)) as f:
                    found[name] = float(f.read())
            except (OSError, ValueError):
                pass
    return found


def _ask_each(directory: str, op: str):
    """(socket path, answer) of every server in `directory` that answers `op`; files
    left by servers that died are passed over."""
    request = (json.dumps({"protocol": PROTOCOL, "op": op}) + "\n").encode()
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        if not name.endswith(".sock"):
            continue
        path = os.path.join(directory, name)
        try:
            reply = _exchange(path, request)
            answer = json.loads(reply) if reply is not None else None
        except (OSError, ValueError):
            continue
        if isinstance(answer, dict) and isinstance(answer.get("cpu"), (int, float)):
            yield path, answer


def _start(path: str, idle: float) -> None:
    """Start a server for `path` in the background, detached from this compile."""
    from mlcc.process import spawn_detached
    # this very package, whatever the compile's directory or PYTHONPATH holds
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from mlcc.model_server import main; sys.exit(main())")
    spawn_detached([sys.executable, "-c", code, path, str(idle)])


# --- the server's side --------------------------------------------------------

_STATUS: dict = {}  # what `status` reports besides pid and CPU

def serve(path: str, idle: float) -> None:
    """Answer requests at `path` until idle for `idle` seconds; return at once if
    another server already holds the socket's lock."""
    import fcntl

    lock = open(path + ".lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return  # another server for this socket is running or starting
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            os.unlink(path)  # left by a server that died; we hold the lock
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o077)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        listener.listen(64)
        _STATUS.update(started=time.time(), idle=idle, answered=0)
        try:
            os.unlink(path + ".failed")
        except FileNotFoundError:
            pass
        from mlcc import features, model  # the imports this server exists to pay once
        del features
        listener.settimeout(idle)
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                break
            with conn:
                op = _answer(conn, model)
            if op == "stop":
                break
            if op == "rank":
                _STATUS["answered"] += 1
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        listener.close()
        lock.close()


def _answer(conn: socket.socket, model) -> str:
    """Answer one request; returns its operation ("rank", "stop")."""
    import resource
    from mlcc.errors import MlccError

    conn.settimeout(10.0)  # a client that stops talking must not stall the others
    try:
        data = b""
        while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        request = json.loads(data)
        op = request.get("op", "rank")
        if request.get("protocol") != PROTOCOL:
            reply = {"error": f"protocol {request.get('protocol')} is not {PROTOCOL}"}
        elif op in ("stop", "status"):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.sendall(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "pid": os.getpid(),
                                     **_STATUS}).encode())
            return op
        else:
            try:
                d = model.rank(str(request["bitcode"]), str(request["opt_level"]),
                               str(request["model"]), str(request.get("target", "x86_64")))
                reply = {"pipeline": d.pipeline, "source": d.source,
                         "ranked": list(d.ranked), "scores": d.scores,
                         "slow_size": d.slow_size, "trial_sets": [list(s) for s in d.trial_sets]}
            except MlccError as exc:
                reply = {"error": str(exc)}
        conn.sendall(json.dumps(reply).encode())
    except Exception as exc:  # one bad request must not end the server
        try:
            conn.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        except OSError:
            pass
    return "rank"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m mlcc.model_server SOCKET IDLE_SECONDS", file=sys.stderr)
        return 2
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    private_tmpdir(argv[0])
    serve(argv[0], float(argv[1]))
    return 0


def private_tmpdir(socket: str) -> None:
    """A server's own files go beside its socket, in the private runtime directory, not in
    the TMPDIR of the command that started it: onnxruntime writes `.ses` there when
    imported, and a build may clean or check its TMPDIR."""
    os.environ["TMPDIR"] = os.path.dirname(os.path.abspath(socket))


if __name__ == "__main__":
    sys.exit(main())
