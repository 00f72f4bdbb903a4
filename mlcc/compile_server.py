"""The compile server: `mlcc` commands run in a warm process, for the native client.

Every `mlcc` command started as Python pays the interpreter's start-up and its
imports, and an optimized unit also numpy, onnxruntime, llvmlite and the model:
about 0.05 s for a pass-through command and 0.3 s more for a unit the model
decides, on a compile that takes clang 0.02 s. The native client
(`mlcc/client/mlcc-client.c`, built by `client_build.py`) instead hands its
command to this per-user server over a Unix socket: argv, working directory,
environment, umask and its standard streams (file descriptors 0, 1, 2, passed
with SCM_RIGHTS). The server has the driver and the model imported and loaded;
for each command it forks a child, which becomes the command's process
(directory, environment, streams, signal dispositions) and runs `cli.run`,
the code path of the Python entry point. The server sends the child's exit
status or the signal that killed it back to the client, which exits the same way.

A pass-through command (link, `-E`, configure probes, `-O0`, a tiny source) is
decided in the server's own process, without a fork (`_pass_through_here`: the
client's directory, umask and environment are lent to it while `cli.decide_route`
reads the command and the reason is logged), and the server hands clang's argv to
the client, which execs clang itself (faster than exec'ing it from a forked server,
whose address space is large: scripts/bench_client.py). clang then sees the client's
own environment and directory, as it would under the Python entry point. A command
whose deciding would print or warn gets a child, as every other command does.

Protocol (one connection per command; PROTOCOL in the socket's name):
  client -> server  b"MLCC", u32 protocol, u32 length, then NUL-terminated fields:
                    program path, working directory, default driver ("c", "c++"),
                    umask, process group, nice value, argument count, arguments,
                    environment count, environment entries; fds 0, 1, 2 attached.
  server -> client  records of one type byte, u32 length, payload:
                    P pid (the child: signals go to it), X exit code, K signal,
                    E argv to exec (NUL-separated), F run in your own process,
                    R run in your own process and start a new server (this one is stale).
A JSON line `{"protocol": 1, "op": "status"|"stop"}` instead gets the answer of the
model server's protocol (`model_server.servers`, `stop_all`, `mlcc-tool server`).

The server also starts mlcc's clang fork server (fork_server.py) as its child, at its
first forked command, for the clang it finds in its environment: its commands' clang
runs are then forks of one clang started once (`process.run_tool`), without clang's
start-up. Its CPU counts in the server's `status` answer.

The server serves one user: its socket lives in the private runtime directory
(mode 0700, `user_dirs.py`) and a peer of another uid (SO_PEERCRED) is hung up on
unanswered. It exits after `server_idle` seconds without a command, and as soon
as mlcc's code, its data, its models or the Python libraries it loaded change on
disk (checked before each command: the command then runs in the client's own
process and the next one starts a new server).
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time

PROTOCOL = 1
MAGIC = b"MLCC"
SOCKET_PREFIX = "compile-"
LOCK_WAIT = 10.0  # seconds a new server waits for the stale one it replaces to let go
RETRY_AFTER = 300.0  # seconds clients run in process after a server failed to start (the client's)
START_WAIT = 5.0  # seconds at most a client waits for a starting server to listen (the client's)
REQUEST_WAIT = 2.0  # seconds the server waits for a connected client's request
FORK_SERVER_RETRY = 10.0  # seconds before the clang fork server is started again once gone
EXITED_PREFIX = "exited-"  # <prefix><pid>.cpu: the CPU of a server that exited on its own

# Third-party code the server keeps imported: an upgrade restarts it.
_LIBRARIES = ("numpy", "onnxruntime", "llvmlite")


def socket_name(package_parent: str) -> str:
    """The socket's file name for a server run by this Python on the mlcc package in
    `package_parent`: another mlcc install, Python or protocol gets its own server."""
    import hashlib
    from mlcc.user_dirs import this_python
    h = hashlib.sha256(f"{PROTOCOL}\0{this_python()}\0{package_parent}".encode()).hexdigest()
    return f"{SOCKET_PREFIX}{h[:16]}.sock"


def package_parent() -> str:
    """The directory holding this very mlcc package."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Set in a served child: which server runs the command, for `mlcc --version`.
_served_by: int | None = None


def route() -> str:
    """How this command is being run, for `mlcc --version`."""
    if _served_by is not None:
        from mlcc import process
        forks = process.fork_server
        clang = (f", clang from its fork server ({forks.path})" if forks is not None
                 else ", clang started per command")
        return f"native client, compile server pid {_served_by}{clang}"
    return "Python entry point, in process"


# --- the server ---------------------------------------------------------------

def stamp() -> tuple:
    """What the running code is made of: mlcc's modules, data, models and pass plugin,
    the Python and the libraries kept imported (path, size, time of each file). A
    change means the server runs stale code."""
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [sys.executable]
    for sub in ("", "data", "models", "plugin", "client"):
        directory = os.path.join(here, sub)
        try:
            paths.extend(os.path.join(directory, n) for n in sorted(os.listdir(directory))
                         if not n.endswith((".pyc", "__pycache__")))
        except OSError:
            pass
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            paths.append(module.__file__)
    found = []
    for path in paths:
        try:
            st = os.stat(path)
            found.append((path, st.st_size, st.st_mtime_ns))
        except OSError:
            found.append((path, None, None))
    return tuple(found)


def _warm_up() -> None:
    """Import and load what commands need, once, before the first fork."""
    import json, shutil, subprocess, tempfile, tomllib  # noqa: F401  (the compile path's)
    # every module a command may import: what a child imports itself costs every command
    from mlcc import (args, cache, cli, codegen, decide, driver, features, frontend,  # noqa: F401
                      ir_reader, job, knobs, link, lto, model, notices, objective, output_cache,
                      passes, pipeline, plain, plan, plugin_build, process, profile_heat, record,
                      settings, targets, toolchain, trials, user_dirs)
    ir_reader.api()
    for level in model.SHIPPED_LEVELS:
        try:
            model.load(str(model.bundled_model_path(level)))
        except Exception:  # a missing or broken model: the commands say so themselves
            pass
    import gc
    gc.freeze()  # the children's collections then leave the shared pages alone


class _Server:
    def __init__(self, path: str, idle: float, exec_in_client: bool):
        import selectors
        import signal
        self.path = path
        self.idle = idle
        self.exec_in_client = exec_in_client
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pid -> (pidfd, conn)
        self.listener: socket.socket | None = None
        self.lock = None
        self.stopping = False
        self.status = {"kind": "compile", "started": time.time(), "idle": idle, "answered": 0,
                       "answered_unforked": 0, "exec": "client" if exec_in_client else "server"}
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        # a flag, not the pipe's bytes: a child that gets SIGTERM before it resets its
        # handlers writes into the same pipe
        self.stop_requested = False
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.selector.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        # a client's hang-up, not its unread request nor a half-close after it: an
        # epoll of its own, registered for nothing (EPOLLHUP is always reported)
        self.hangups = select.epoll()
        self.hung_up: dict[int, int] = {}  # conn fd -> pid
        self.selector.register(self.hangups.fileno(), selectors.EVENT_READ, ("hangup", None))
        # the clang fork server (fork_server.py), a child of this process
        self.fork_server = None  # its Popen
        self.fork_server_clang = ""
        self.fork_server_pidfd = -1
        self.fork_server_path = os.path.join(os.path.dirname(path), f"fork-{os.getpid()}.sock")
        self.fork_server_tried = -FORK_SERVER_RETRY

    def start_fork_server(self) -> None:
        """Start the clang fork server for the clang mlcc finds in this environment (the
        one of the client that started this server), if one is built for it."""
        import selectors
        from mlcc import fork_server, toolchain
        from mlcc.errors import ToolchainMissing
        self.fork_server_tried = time.monotonic()
        try:
            clang = toolchain.find("clang")
        except (ToolchainMissing, OSError):
            return
        proc = fork_server.start(clang, self.fork_server_path)
        if proc is None:
            return
        self.fork_server, self.fork_server_clang = proc, clang
        self.fork_server_pidfd = os.pidfd_open(proc.pid)
        self.selector.register(self.fork_server_pidfd, selectors.EVENT_READ, ("fork-server", None))
        self.status["fork_server"] = {"pid": proc.pid, "clang": clang}

    def stop_fork_server(self, *, gone: bool = False) -> None:
        """Stop the fork server (`gone`: it has exited) and reap it: its CPU, and its
        commands', become this server's."""
        if self.fork_server is None:
            return
        self.selector.unregister(self.fork_server_pidfd)
        os.close(self.fork_server_pidfd)
        if not gone:
            self.fork_server.terminate()
        self.fork_server.wait()
        self.fork_server = None
        self.status.pop("fork_server", None)
        _unlink(self.fork_server_path)

    def _on_sigterm(self, *_) -> None:
        self.stop_requested = True

    def own_fds(self) -> list[int]:
        fds = [self.wake_r, self.wake_w, self.hangups.fileno()]
        if self.listener is not None:
            fds.append(self.listener.fileno())
        if self.lock is not None:
            fds.append(self.lock.fileno())
        for pidfd, conn in self.children.values():
            fds.extend((pidfd, conn.fileno()))
        if self.fork_server is not None:
            fds.append(self.fork_server_pidfd)
        return fds

    def take_lock(self, wait: float = LOCK_WAIT) -> bool:
        """False when another server for this socket runs or starts. A stale server lets
        go of the lock just after it told a client to start this one: wait that long."""
        import fcntl
        self.lock = open(self.path + ".lock", "a")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        self.lock.close()
        self.lock = None
        return False

    def listen(self) -> None:
        import selectors
        try:
            os.unlink(self.path)  # left by a server that died; we hold the lock
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        listener.listen(128)
        self.listener = listener
        self.bound = os.stat(self.path).st_ino
        self.selector.register(listener, selectors.EVENT_READ, ("listen", None))

    def stop_listening(self) -> None:
        """No more commands: the socket goes (so that the next client starts a new
        server), the commands running finish."""
        self.stopping = True
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        try:
            if os.stat(self.path).st_ino == self.bound:
                os.unlink(self.path)
        except OSError:
            pass
        self.listener.close()
        self.listener = None
        self.lock.close()  # after the unlink: a new server may bind now
        self.lock = None

    def loop(self) -> None:
        first = stamp()
        while True:
            if self.stopping and not self.children:
                return
            timeout = None if self.children or self.stopping else self.idle
            events = self.selector.select(timeout)
            if not events and not self.children:
                return  # idle
            for key, _ in events:
                kind, item = key.data
                if kind == "wake":
                    self._wake()
                elif kind == "listen":
                    self._accept(first)
                elif kind == "child":
                    self._reap(item)
                elif kind == "hangup":
                    self._clients_gone()
                elif kind == "fork-server":
                    self.stop_fork_server(gone=True)  # stale, or killed: started again when asked

    def _wake(self) -> None:
        try:
            os.read(self.wake_r, 512)
        except BlockingIOError:
            pass
        if self.stop_requested:
            self.stop_listening()

    def _accept(self, first: tuple) -> None:
        import selectors
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            conn.close()  # another user: no answer at all
            return
        if stamp() != first:
            self.stop_listening()  # first: the server the client starts takes the socket
            _send(conn, b"R", b"the compile server's code changed on disk")
            conn.close()
            return
        try:
            request = _read_here(conn)
        except (OSError, ValueError, struct.error) as exc:
            _send(conn, b"F", f"bad request: {exc}".encode())
            conn.close()
            return
        if request is not None and self.exec_in_client and _pass_through_here(conn, request):
            self.status["answered"] += 1
            self.status["answered_unforked"] += 1
            return
        if (self.fork_server is None and request is not None
                and time.monotonic() - self.fork_server_tried > FORK_SERVER_RETRY):
            self.start_fork_server()
        try:
            pid = os.fork()
        except OSError:
            _send(conn, b"F", b"fork failed")
            _close_fds(request)
            conn.close()
            return
        if pid == 0:
            try:
                _child(conn, self, request)
            finally:
                os._exit(70)
        _close_fds(request)  # the child has them
        self.status["answered"] += 1
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (pidfd, conn)
        self.selector.register(pidfd, selectors.EVENT_READ, ("child", pid))
        self.hangups.register(conn.fileno(), 0)
        self.hung_up[conn.fileno()] = pid

    def _reap(self, pid: int) -> None:
        pidfd, conn = self.children.pop(pid)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            record = (b"K", struct.pack("<i", os.WTERMSIG(status)))
        else:
            record = (b"X", struct.pack("<i", os.waitstatus_to_exitcode(status)))
        _send(conn, *record)
        if self.hung_up.pop(conn.fileno(), None) is not None:
            self.hangups.unregister(conn.fileno())
        conn.close()

    def _clients_gone(self) -> None:
        """Clients hung up (killed, or they exec'd clang). A command nobody waits for is
        stopped as SIGTERM stops it: its temporary files go, no output is left."""
        import signal
        for fd, _ in self.hangups.poll(0):
            pid = self.hung_up.pop(fd, None)
            self.hangups.unregister(fd)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def _send(conn: socket.socket, kind: bytes, payload: bytes) -> None:
    try:
        conn.sendall(kind + struct.pack("<I", len(payload)) + payload)
    except OSError:  # the client is gone
        pass


# --- the child: one command ------------------------------------------------------

def _child(conn: socket.socket, server: _Server, request: dict | None) -> None:
    """Become the client's command (`request`; None: a status request) and run it;
    never returns."""
    import signal
    signal.set_wakeup_fd(-1)
    for fd in server.own_fds():
        if fd != conn.fileno():
            try:
                os.close(fd)
            except OSError:
                pass
    # as a fresh Python would be; SIGPIPE stays ignored, as Python has it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with_parent(signal.SIGTERM)
    if request is None:
        conn.settimeout(10.0)  # a client that stops talking must not leave a child behind
        try:
            _answer_status(conn, server)
        except (OSError, ValueError) as exc:
            _send(conn, b"F", f"bad request: {exc}".encode())
        os._exit(0)
    _send(conn, b"P", struct.pack("<i", os.getpid()))
    try:
        _become(request)
    except OSError as exc:  # a directory gone, an unusable descriptor
        _send(conn, b"F", f"cannot take the command over: {exc}".encode())
        os._exit(0)
    from mlcc import cli, model_server, notices, process
    global _served_by
    _served_by = os.getppid()
    notices.build_group = request["pgid"]
    model_server.warm = True
    process._TRACE = os.environ.get("MLCC_TRACE") == "1"
    if server.fork_server is not None:
        from mlcc import fork_server
        process.fork_server = fork_server.Client(server.fork_server_path, server.fork_server_clang)
    if server.exec_in_client:
        def exec_in_client(argv):
            _send(conn, b"E", b"\0".join(os.fsencode(a) for a in argv))
            os._exit(0)
        process.exec_elsewhere = exec_in_client
    try:
        code = cli.run(request["argv"], request["driver"], served=True)
    except cli.NotServed:
        _send(conn, b"F", b"the compile server is off")
        os._exit(0)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _read_here(conn: socket.socket) -> dict | None:
    """The client's request, read in the server (None: a status request, which a child
    answers); raises OSError, ValueError or struct.error for one it cannot read."""
    conn.settimeout(REQUEST_WAIT)  # a client that stops talking must not hold the server
    try:
        return None if conn.recv(1, socket.MSG_PEEK) == b"{" else _read_request(conn)
    finally:
        conn.settimeout(None)


def _close_fds(request) -> None:
    """Close the client's streams as received here (a child has its own copies)."""
    for fd in (request or {}).get("fds", ()):
        try:
            os.close(fd)
        except OSError:
            pass


def _pass_through_here(conn: socket.socket, request: dict) -> bool:
    """Answer a command that goes to clang as given (`cli.decide_route`: a link, a
    configure probe, -E, a tiny source) without forking: the route is decided in this
    process, in the client's directory, umask and environment for the time it takes,
    the reason logged, and the client told to exec clang. False (nothing said to the
    client, nothing logged) when the command is anything else, when deciding it would
    print or warn (MLCC_TRACE, a missing model) or fails: a child then runs it as before."""
    if request["environ"].get("MLCC_TRACE") == "1":
        return False
    import io
    from mlcc import cli, notices, plain, toolchain
    umask, environ, argv0 = os.umask(request["umask"]), dict(os.environ), sys.argv
    stderr, said = sys.stderr, io.StringIO()
    try:
        sys.stderr = said  # anything said here belongs on the client's stderr: a child says it
        notices.refusing = True
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["environ"])
        sys.argv = list(request["argv"])  # toolchain.find must not take the client for clang
        toolchain.find.cache_clear()  # found on the client's PATH, not on another's
        route = cli.decide_route(request["argv"], request["driver"], served=True)
        if route.kind != "plain" or said.getvalue():
            return False
        argv = plain.plain_command(route.driver, route.clang_argv, route.reason, route.settings,
                                   route.logged)
    except (Exception, cli.NotServed):
        return False
    finally:
        notices.refusing = False
        sys.stderr = stderr
        toolchain.find.cache_clear()
        sys.argv = argv0
        os.environ.clear()
        os.environ.update(environ)
        os.umask(umask)
        os.chdir("/")  # the server's own (`serve`)
    _send(conn, b"E", b"\0".join(os.fsencode(a) for a in argv))
    _close_fds(request)
    conn.close()
    return True


def _die_with_parent(signum: int) -> None:
    """Stopped as with Ctrl-C when the server dies: the client then reruns the command
    in its own process and must not race a leftover."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signum)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os._exit(70)


def _read_request(conn: socket.socket) -> dict:
    import array
    fds = array.array("i")
    data, ancdata, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, cdata in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
    if len(data) < 12 or data[:4] != MAGIC:
        raise ValueError("not an mlcc client")
    protocol, length = struct.unpack("<II", data[4:12])
    if protocol != PROTOCOL:
        raise ValueError(f"protocol {protocol} is not {PROTOCOL}")
    if len(fds) != 3:
        raise ValueError("standard streams missing")
    body = [data[12:]]
    got = len(body[0])
    while got < length:
        chunk = conn.recv(min(1 << 20, length - got))
        if not chunk:
            raise ValueError("request cut short")
        body.append(chunk)
        got += len(chunk)
    fields = b"".join(body).split(b"\0")
    program, cwd, driver, umask, pgid, nice = fields[:6]
    argc = int(fields[6])
    args = fields[7:7 + argc]
    envc = int(fields[7 + argc])
    env = fields[8 + argc:8 + argc + envc]
    if len(args) != argc or len(env) != envc:
        raise ValueError("request cut short")
    environ = {}
    for entry in env:
        key, sep, value = entry.partition(b"=")
        if sep and key:
            environ[os.fsdecode(key)] = os.fsdecode(value)
    return {"fds": list(fds), "argv": [os.fsdecode(program), *map(os.fsdecode, args)],
            "cwd": cwd, "driver": driver.decode(), "umask": int(umask), "pgid": int(pgid),
            "nice": int(nice), "environ": environ}


def _become(request: dict) -> None:
    """Take on the client's directory, umask, priority, environment and streams."""
    import tempfile
    for target, fd in enumerate(request["fds"]):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    try:
        if request["nice"] > os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, request["nice"])
    except OSError:
        pass
    os.environ.clear()  # putenv/unsetenv too: what exec'd tools see
    os.environ.update(request["environ"])
    tempfile.tempdir = None  # TMPDIR is the command's
    sys.argv = list(request["argv"])
    sys.stdin = sys.__stdin__ = _text_stream(0, "r", line_buffering=False)
    sys.stdout = sys.__stdout__ = _text_stream(1, "w", line_buffering=os.isatty(1))
    sys.stderr = sys.__stderr__ = _text_stream(2, "w", line_buffering=True, errors="backslashreplace")


def _text_stream(fd: int, mode: str, *, line_buffering: bool, errors: str = "strict"):
    import io
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding="utf-8", errors=errors,
                            line_buffering=line_buffering)


def process_cpu(pid: int) -> float:
    """CPU seconds so far of process `pid` and of the children it has waited for (utime,
    stime, cutime, cstime in /proc); raises OSError when there is no such process."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def _answer_status(conn: socket.socket, server: _Server) -> None:
    """The model server's `status`/`stop` answer, for `mlcc-tool server` and the
    benchmarks: CPU seconds count the commands' children (clang, opt) too."""
    import json
    data = b""
    while not data.endswith(b"\n") and len(data) < 1 << 16:
        chunk = conn.recv(1 << 12)
        if not chunk:
            break
        data += chunk
    request = json.loads(data)
    parent = os.getppid()
    cpu = process_cpu(parent)
    forks = server.status.get("fork_server")
    if forks is not None:  # not reaped yet, so not in the server's own figure
        try:
            cpu += process_cpu(forks["pid"])
        except OSError:
            pass
    if request.get("op") == "stop":
        # before the answer: once the asker has it, it hangs up, and the server then
        # stops this child as it stops any command nobody waits for
        import signal
        os.kill(parent, signal.SIGTERM)
    conn.sendall(json.dumps({"cpu": cpu, "pid": parent, **server.status}).encode())
    conn.shutdown(socket.SHUT_WR)  # for every holder: the server's exit record cannot follow


def serve(path: str, idle: float, exec_in_client: bool = True) -> None:
    """Serve commands at `path` until idle for `idle` seconds, stopped, or stale."""
    path = os.path.abspath(path)
    os.chdir("/")  # a build directory the server started in may go; commands say their own
    server = _Server(path, idle, exec_in_client)
    marker = path + ".spawned"  # made by the client that started this server
    if not server.take_lock():
        _unlink(marker)  # one runs already
        return
    try:
        try:
            _warm_up()  # before listening: meanwhile, clients wait (START_WAIT at most)
            server.listen()
        except BaseException:
            _say_failed(marker)
            raise
        _unlink(marker)
        server.loop()
    finally:
        server.stop_listening()
        server.stop_fork_server()
        if not server.stop_requested and server.status["answered"]:
            _record_exit_cpu(os.path.dirname(path))


def _record_exit_cpu(directory: str) -> None:
    """A server that exits on its own (idle, or its code changed) leaves its CPU seconds,
    its commands' and fork server's included, in `directory`: a benchmark that stops the
    servers at the end of a build counts them there (`model_server.stop_all`); a server
    stopped by a request was counted in its answer, and leaves none."""
    try:
        with open(os.path.join(directory, f"{EXITED_PREFIX}{os.getpid()}.cpu"), "w") as f:
            f.write(f"{process_cpu(os.getpid())}\n")
    except OSError:
        pass


def _say_failed(marker: str) -> None:
    """Keep the start marker, not empty: waiting clients stop waiting, and for
    RETRY_AFTER clients run commands themselves without starting another server."""
    try:
        with open(marker, "a") as f:
            f.write("failed\n")
    except OSError:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def main(argv=None) -> int:
    """`python -c ... compile_server.main() SOCKET [--exec-in-server]`, as the client
    starts it (detached, in its own session, streams on /dev/null)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m mlcc.compile_server SOCKET [--exec-in-server]", file=sys.stderr)
        return 2
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from mlcc import model_server
    model_server.private_tmpdir(argv[0])  # a command's child takes its own TMPDIR back
    from mlcc import settings as settings_mod
    from mlcc.errors import MlccError
    try:
        idle = settings_mod.load({}).server_idle
    except MlccError:
        idle = settings_mod.Settings().server_idle
    serve(argv[0], idle, exec_in_client="--exec-in-server" not in argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
