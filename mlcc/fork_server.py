"""The clang fork server, mlcc's side: start it in the compile server, run clang
through it from the compile server's children.

A clang process costs about 40 ms of CPU before its main() runs (loading and
relocating libLLVM and libclang-cpp, their static constructors), and mlcc runs
clang several times per unit: the front end, each build of a trial, code
generation. The compile server therefore starts one clang, with
mlcc/client/mlcc-fork-server.c preloaded, which listens on a socket in the
server's private directory instead of compiling. `run` hands it one command
(argv, directory, umask, environment, streams); it forks, and the child runs
clang's own main() with them: the same clang code on the same input, without
the start-up (docs/DESIGN.md has the measurements). `run` returns None whenever
the fork server does not take a command, and the caller then starts clang as
before (`process.run_tool`).

Only commands mlcc runs for itself, with their output captured or going to the
command's own streams, go through it; a command that becomes clang (a link, -E, a
configure probe) is exec'd by the client as before.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time

SOCKET_VARIABLE = "MLCC_FORK_SERVER_SOCKET"
MAGIC = b"MLFS"
CONNECT_WAIT = 1.0  # seconds to connect to the fork server
ANSWER_WAIT = 5.0  # seconds for its answer with the command's pid (else it kills the command)


def start(clang: str, path: str, library: str | None = None):
    """Start the fork server for `clang`, listening at `path`, as a child of this process
    (its CPU is the compile server's, once reaped); a Popen, or None without one built
    for this clang (`library`: the one built, found when not given)."""
    import subprocess
    from mlcc import fork_server_build
    library = library or fork_server_build.installed(clang)
    if library is None:
        return None
    env = dict(os.environ, LD_PRELOAD=library, LD_BIND_NOW="1")
    env[SOCKET_VARIABLE] = path
    try:
        return subprocess.Popen([clang], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd="/", close_fds=True)
    except OSError:
        return None


class Client:
    """Runs the commands of one clang binary through its fork server at `path`."""

    def __init__(self, path: str, clang: str):
        self.path = path
        self.clang = os.path.realpath(clang)
        self._serves: dict[str, bool] = {}
        self.broken = False  # the fork server went away: the rest of this command starts clang itself
        self.forked = 0  # commands it ran

    def serves(self, program: str) -> bool:
        """Whether `program` is this fork server's clang (by its real path)."""
        known = self._serves.get(program)
        if known is None:
            known = self._serves[program] = os.path.realpath(program) == self.clang
        return known and not self.broken

    def run(self, argv: list[str], *, env=None, cwd=None, capture_stdout=False,
            capture_stderr=False, timeout=None):
        """Run `argv` in a child of the fork server: (returncode, stdout, stderr), the
        returncode None when `timeout` ran out (the command is killed and reaped),
        negative for a signal as subprocess has it; None when the fork server did not
        run it (refused, or died, killing the command: it may run again elsewhere)."""
        try:
            directory = os.path.abspath(cwd) if cwd is not None else os.getcwd()
        except OSError:
            return None
        umask = os.umask(0o022)
        os.umask(umask)
        environ = os.environ if env is None else env
        fields = [os.fsencode(directory), b"%o" % umask, b"%d" % len(argv),
                  *(os.fsencode(a) for a in argv), b"%d" % len(environ),
                  *(os.fsencode(k) + b"=" + os.fsencode(v) for k, v in environ.items())]
        body = b"\0".join(fields) + b"\0"
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        readers, keep = [], []  # our ends of the command's pipes; its ends, closed once sent
        try:
            conn.settimeout(CONNECT_WAIT)
            try:
                conn.connect(self.path)
            except OSError:
                return None
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            keep.append(stdin)
            streams = [stdin]
            for captured, own in ((capture_stdout, 1), (capture_stderr, 2)):
                if captured:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    readers.append(r)
                    keep.append(w)
                    streams.append(w)
                else:
                    readers.append(None)
                    streams.append(own)
            conn.settimeout(ANSWER_WAIT)
            try:
                socket.send_fds(conn, [MAGIC + struct.pack("<I", len(body))], streams)
                conn.sendall(body)
                pid = _read_int(conn)
            except OSError:
                pid = None
            for fd in keep:
                os.close(fd)
            keep = []
            if not pid:
                return None  # refused (stale, full) or gone
            try:
                done = self._wait(conn, readers, timeout)
            except OSError:  # the fork server died, and its children with it
                self.broken = True
                return None
            except BaseException:  # Ctrl-C, SIGTERM: the command goes before this one does
                _stop(conn)
                raise
            self.forked += done is not None
            return done
        finally:
            for fd in keep + [r for r in readers if r is not None]:
                try:
                    os.close(fd)
                except OSError:
                    pass
            conn.close()  # while the command runs (Ctrl-C, SIGTERM): the fork server kills it

    def _wait(self, conn: socket.socket, readers, timeout):
        """The command's output and status; see `run`."""
        out = {r: bytearray() for r in readers if r is not None}
        open_readers = list(out)
        status = bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        conn.setblocking(False)
        while len(status) < 4 or open_readers:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(open_readers + ([conn] if len(status) < 4 else []), [], [], wait)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                _stop(conn)
                break
            for fd in ready:
                if fd is conn:
                    chunk = conn.recv(4 - len(status))
                    if not chunk:
                        raise ConnectionError("the fork server hung up")
                    status += chunk
                    continue
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    out[fd] += chunk
                else:
                    open_readers.remove(fd)
        captured = [bytes(out[r]) if r is not None else None for r in readers]
        if len(status) < 4:
            return None, *captured
        code = struct.unpack("<i", bytes(status))[0]
        returncode = -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)
        return returncode, *captured


def _stop(conn: socket.socket) -> None:
    """Have the fork server kill the command's process group, and wait until it is reaped
    (the fork server then hangs up), as `process.run_tool` waits for a tool it kills."""
    try:
        conn.setblocking(True)
        conn.settimeout(10.0)
        conn.send(b"k")
        while conn.recv(64):
            pass
    except OSError:
        pass


def _read_int(conn: socket.socket) -> int | None:
    data = b""
    while len(data) < 4:
        chunk = conn.recv(4 - len(data))
        if not chunk:
            return None
        data += chunk
    return struct.unpack("<i", data)[0]
