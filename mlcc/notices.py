"""Warnings said once per build, not once per compile.

A build (`make -j`, `ninja`, a configure script) runs many compiles in one
process group: the shell gives each job its own. A warning that would repeat
for every unit, such as a missing or unusable model, is printed by the first
compile of the group and noted in the private runtime directory; the others
stay quiet.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

_NOTE_PREFIX = "said-"
_KEEP_NOTES = 24 * 3600.0  # seconds: older notes belong to builds long gone

# The process group of the command's own process when another process runs the
# command for it (a compile server's child runs in the server's group).
build_group: int | None = None


def _build_id() -> str:
    """This compile's build: its process group and when the group's leader started
    (a later build may reuse the number, not the start time)."""
    group = os.getpgrp() if build_group is None else build_group
    try:
        with open(f"/proc/{group}/stat", "rb") as f:
            started = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        started = "?"
    return f"{group}-{started}"


class WouldWarn(Exception):
    """Raised by `warn_once` while `refusing` is set: the compile server deciding a
    command in its own process (which has not the client's stderr) leaves it to a child."""


refusing = False


def warn_once(message: str) -> None:
    """`mlcc: warning: MESSAGE` on stderr, once per build (every time when there is no
    private runtime directory to note it in)."""
    if refusing:
        raise WouldWarn(message)
    from mlcc.user_dirs import runtime_dir

    directory = runtime_dir()
    if directory is not None:
        digest = hashlib.sha256(f"{_build_id()}\0{message}".encode()).hexdigest()[:24]
        note = os.path.join(directory, _NOTE_PREFIX + digest)
        try:
            os.close(os.open(note, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return  # said already in this build
        except OSError:
            pass  # a full or read-only directory: say it, every time
        else:
            _forget_old_notes(directory)
    print(f"mlcc: warning: {message}", file=sys.stderr)


def _forget_old_notes(directory: str) -> None:
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(_NOTE_PREFIX):
            path = os.path.join(directory, name)
            try:
                if now - os.stat(path).st_mtime > _KEEP_NOTES:
                    os.unlink(path)
            except OSError:
                pass
