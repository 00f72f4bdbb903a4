"""This user's private runtime directory: where the model server's socket and the
notes of warnings already given in a build live; and which of the servers there
are this Python's."""

from __future__ import annotations

import os
import stat
import sys


def runtime_dir() -> str | None:
    """The private directory (mode 0700, ours) for this user's servers and notes, or
    None if there is no safe one."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    # not $TMPDIR: builds point it at directories they delete, and the server outlives them
    path = os.path.join(base, "mlcc") if base else f"/tmp/mlcc-{os.getuid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or others could reach the socket: don't use it
    return path


def this_python() -> str:
    """This interpreter and its environment, however it was started: `python`, `python3`
    and `python3.11` (links to one binary) are one Python and share its servers; a venv
    is a Python of its own (its prefix), with its own libraries."""
    return f"{os.path.realpath(sys.executable)}\0{sys.prefix}"
