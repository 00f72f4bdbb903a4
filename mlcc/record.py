"""Records a compile leaves behind on request: the MLCC_LOG line and MLCC_COLLECT files.

Both are safe when many compiler processes write at once: a log line is one
append under an exclusive lock; collected files are written under a temporary
name and renamed into place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time


def append_log(path: str, entry: dict) -> None:
    """Append `entry` as one JSON line to `path` (atomic with respect to other writers)."""
    entry = {"time": round(time.time(), 3), **entry}
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)


def file_digest(path: str) -> str:
    """sha256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def collect_unit(directory: str, bitcode: str, meta: dict) -> str:
    """Keep `bitcode` and its compile description in `directory`; return the unit's id.

    Files are named by the bitcode's content hash, so a unit built twice is kept once.
    """
    os.makedirs(directory, exist_ok=True)
    digest = file_digest(bitcode)[:24]
    target = os.path.join(directory, digest + ".bc")
    if not os.path.exists(target):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".bc")
        os.close(fd)
        shutil.copyfile(bitcode, tmp)
        os.replace(tmp, target)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"id": digest, **meta}, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(directory, digest + ".json"))
    return digest
