"""The one door through which mlcc runs external tools.

Every tool runs through `run_tool`, which logs the command when asked,
enforces a timeout and raises `ToolFailed` carrying argv, exit code and
stderr. `exec_tool` replaces this process (used for plain clang, so exit
codes, signals and streaming are exactly clang's). `spawn_detached` starts
the model server, which outlives the compile.
"""

from __future__ import annotations

import os
import signal
import sys

from mlcc.errors import ToolFailed

TYPE_CHECKING = False  # not `from typing import ...`: typing costs every command ~5 ms to import
if TYPE_CHECKING:
    import subprocess

_TRACE = os.environ.get("MLCC_TRACE") == "1"

# Set in a compile server's child: instead of replacing the child, hand `argv` to the
# native client, which execs it itself (compile_server.py). Never returns either.
exec_elsewhere = None
# Set in a compile server's child: a `fork_server.Client`, through which `run_tool` runs
# the clang it serves, without clang's start-up (fork_server.py).
fork_server = None


def trace(argv) -> None:
    """Print a command on stderr when MLCC_TRACE=1 (for debugging mlcc itself)."""
    if _TRACE:
        import shlex
        print("mlcc: + " + shlex.join(str(a) for a in argv), file=sys.stderr, flush=True)


def run_tool(argv, *, timeout=None, capture_stderr=False, capture_stdout=False,
             env=None, cwd=None) -> subprocess.CompletedProcess:
    """Run one tool to completion; raise ToolFailed unless it exits 0.

    stderr streams through live unless `capture_stderr` (then it is kept for
    the error). A timeout kills the tool and its children and raises
    ToolFailed(timed_out=<the limit>). In a compile server's child, the clang
    its fork server serves runs there (`fork_server`), else as a process of its own.
    """
    import subprocess  # here, not above: the pass-through path only execs

    argv = [str(a) for a in argv]
    trace(argv)
    done = None
    if fork_server is not None and fork_server.serves(argv[0]):
        done = fork_server.run(argv, env=env, cwd=cwd, capture_stdout=capture_stdout,
                               capture_stderr=capture_stderr, timeout=timeout)
    if done is None:
        done = _run_process(argv, timeout=timeout, capture_stdout=capture_stdout,
                            capture_stderr=capture_stderr, env=env, cwd=cwd)
    returncode, out, err = done
    if returncode is None:
        raise ToolFailed(argv, None, err.decode(errors="replace") if err else "", timed_out=timeout)
    if returncode != 0:
        message = err.decode(errors="replace") if capture_stderr and err else ""
        raise ToolFailed(argv, returncode, message)
    return subprocess.CompletedProcess(argv, returncode, out, err)


def _run_process(argv: list[str], *, timeout, capture_stdout, capture_stderr, env, cwd):
    """`run_tool`'s tool as a process of its own: (returncode, stdout, stderr), the
    returncode None when the timeout killed it."""
    import subprocess

    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else None,
            stderr=subprocess.PIPE if capture_stderr else None,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except OSError as exc:
        raise ToolFailed(argv, 127, f"{exc.strerror}") from None
    with proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a child of the tool still holds the pipes
                out, err = b"", b""
            proc.wait()
            return None, out, err
        except BaseException:  # Ctrl-C, SIGTERM: the tool is not in the terminal's group
            _kill_group(proc)
            proc.wait()
            raise
    return proc.returncode, out, err


def spawn_detached(argv) -> None:
    """Start a background process that outlives this one: its own session, no
    terminal, nothing inherited but the environment (the model server)."""
    import subprocess

    argv = [str(a) for a in argv]
    trace(argv)
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, cwd="/", start_new_session=True,
                     close_fds=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()


def exec_tool(argv) -> None:
    """Replace this process by the tool; never returns."""
    argv = [str(a) for a in argv]
    trace(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if exec_elsewhere is not None:
        exec_elsewhere(argv)
    os.execv(argv[0], argv)
