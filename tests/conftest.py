"""Shared by the tests that run mlcc as a user would."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="mlcc-test-cache-")


def _use_native_client() -> None:
    """MLCC_TEST_CLIENT=1: the tests' `mlcc` and `mlcc++` (found on PATH) are the native
    client of this tree (mlcc/client_build.py), talking to its compile server."""
    from mlcc import client_build
    bindir = tempfile.mkdtemp(prefix="mlcc-test-client-")
    client_build.build(bindir)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


if os.environ.get("MLCC_TEST_CLIENT") == "1":
    _use_native_client()


def mlcc_env(cache=None, **extra) -> dict:
    """The environment without the caller's MLCC_* settings, with a private decision cache.

    The test fixtures are tiny files, which mlcc hands to clang whole by default
    (`small_unit`); here every unit takes the full path (model, opt, code generation)
    unless a test sets MLCC_SMALL_UNIT itself.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
    env["MLCC_CACHE"] = str(cache) if cache else _CACHE
    env["MLCC_SMALL_UNIT"] = "0"
    env.update(extra)
    return env


@pytest.fixture
def runtime():
    """A private XDG_RUNTIME_DIR for the model and compile servers (short: a socket's
    path holds 108 bytes); its servers are stopped at the end."""
    from mlcc import model_server
    base = Path(tempfile.mkdtemp(prefix="mlcc-run-", dir="/tmp"))
    yield base
    model_server.stop_all(str(base / "mlcc"))
    shutil.rmtree(base, ignore_errors=True)


def as_user(uid: int, gid: int, talk) -> str:
    """Run `talk()` in a child process that has become `uid`/`gid`; what it returned (a
    string), or "refused: ..." when it raised OSError."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgid(gid)
            os.setuid(uid)
            try:
                what = talk()
            except OSError as exc:
                what = f"refused: {exc.strerror}"
            os.write(write, what.encode())
        finally:
            os._exit(0)
    os.close(write)
    what = b""
    while chunk := os.read(read, 1 << 16):
        what += chunk
    os.waitpid(pid, 0)
    return what.decode()
