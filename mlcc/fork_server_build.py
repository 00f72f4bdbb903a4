"""Build mlcc's clang fork server (mlcc/client/mlcc-fork-server.c) for the clang mlcc
drives, and find it at compile time.

The fork server is a small library that clang loads with LD_PRELOAD: clang then
starts once, in the compile server, and forks itself for each command mlcc runs,
without the 40 ms of start-up each clang process costs (mlcc/fork_server.py). Its
file name carries a stamp of the clang it was built for, as the pass plugin's does
(`plugin_build.stamp`): a clang upgraded since finds none, and mlcc starts clang
as a process of its own until `mlcc-tool install-client` (or scripts/setup.sh)
builds it again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path

SOURCE = Path(__file__).parent / "client" / "mlcc-fork-server.c"
CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra")


def stamp(clang: str) -> str:
    """The real path, size and time of `clang`'s binary, and the library's source."""
    real = os.path.realpath(clang)
    st = os.stat(real)
    digest = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    digest.update(SOURCE.read_bytes())
    return digest.hexdigest()[:16]


def path_for(clang: str) -> Path:
    """Where the fork server for `clang` is (or would be) installed."""
    return SOURCE.parent / f"mlcc-fork-server-{stamp(clang)}.so"


@functools.lru_cache(maxsize=8)
def installed(clang: str) -> str | None:
    """The fork server built for `clang`, or None (not built, or for another clang)."""
    try:
        found = path_for(clang)
    except OSError:
        return None
    return str(found) if found.is_file() else None


def build(clang: str | None = None) -> Path:
    """Compile the fork server for `clang` (default: the one mlcc finds) with that clang;
    returns its path. Ones built for other clangs are removed. Raises ToolFailed or
    ToolchainMissing."""
    from mlcc.process import run_tool
    from mlcc.toolchain import find
    clang = clang or find("clang")
    out = path_for(clang)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        run_tool([clang, *CFLAGS, str(SOURCE), "-o", str(partial)], capture_stderr=True)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    for old in SOURCE.parent.glob("mlcc-fork-server-*.so"):
        if old != out:
            old.unlink(missing_ok=True)
    installed.cache_clear()
    return out


def main(argv=None) -> int:
    """`python -m mlcc.fork_server_build` (scripts/setup.sh)."""
    import argparse
    from mlcc.errors import MlccError
    argparse.ArgumentParser(description="Build mlcc's clang fork server.").parse_args(argv)
    try:
        print(f"installed {build()}")
    except (MlccError, OSError) as exc:
        print(f"mlcc: error: cannot build the clang fork server: {exc}; "
              "each clang mlcc runs starts as a process of its own", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
