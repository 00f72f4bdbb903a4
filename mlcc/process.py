"""The one door through which mlcc runs external tools.

Every tool runs through `run_tool`, which logs the command when asked,
enforces a timeout and raises `ToolFailed` carrying argv, exit code and
stderr. `exec_tool` replaces this process (used for plain clang, so exit
codes, signals and streaming are exactly clang's).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from mlcc.errors import ToolFailed

_TRACE = os.environ.get("MLCC_TRACE") == "1"


def trace(argv) -> None:
    """Print a command on stderr when MLCC_TRACE=1 (for debugging mlcc itself)."""
    if _TRACE:
        print("mlcc: + " + shlex.join(str(a) for a in argv), file=sys.stderr, flush=True)


def run_tool(argv, *, timeout=None, capture_stderr=False, capture_stdout=False,
             env=None) -> subprocess.CompletedProcess:
    """Run one tool to completion; raise ToolFailed unless it exits 0.

    stderr streams through live unless `capture_stderr` (then it is kept for
    the error). A timeout kills the tool and raises ToolFailed(timed_out=True).
    """
    argv = [str(a) for a in argv]
    trace(argv)
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else None,
            stderr=subprocess.PIPE if capture_stderr else None,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if exc.stderr else ""
        raise ToolFailed(argv, None, err, timed_out=True) from None
    except OSError as exc:
        raise ToolFailed(argv, 127, f"{exc.strerror}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if capture_stderr and proc.stderr else ""
        raise ToolFailed(argv, proc.returncode, err)
    return proc


def exec_tool(argv) -> None:
    """Replace this process by the tool; never returns."""
    argv = [str(a) for a in argv]
    trace(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
