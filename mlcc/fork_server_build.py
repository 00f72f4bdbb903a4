"""Build mlcc's clang fork server (mlcc/client/mlcc-fork-server.c) for the clang mlcc
drives, and find it at compile time.

The fork server is a small library that clang loads with LD_PRELOAD: clang then
starts once, in the compile server, and forks itself for each command mlcc runs,
without the 40 ms of start-up each clang process costs (mlcc/fork_server.py). Its
file name carries a stamp of the clang it was built for, as the pass plugin's does
(`clang_library.stamp`): a clang upgraded since finds none, and mlcc starts clang
as a process of its own until `mlcc-tool install-client` (or scripts/setup.sh)
builds it again.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from mlcc import clang_library

SOURCE = Path(__file__).parent / "client" / "mlcc-fork-server.c"
CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra")
NAME = "mlcc-fork-server"


def path_for(clang: str) -> Path:
    """Where the fork server for `clang` is (or would be) installed (`clang_library.path_for`)."""
    return clang_library.path_for(clang, SOURCE, NAME)


@functools.lru_cache(maxsize=8)
def installed(clang: str) -> str | None:
    """The fork server built for `clang`, or None (not built, or for another clang)."""
    return clang_library.found(clang, SOURCE, NAME)


def build(clang: str | None = None) -> Path:
    """Compile the fork server for `clang` (default: the one mlcc finds) with that clang;
    returns its path. Ones built for other clangs are removed. Raises ToolFailed or
    ToolchainMissing."""
    from mlcc.toolchain import find
    clang = clang or find("clang")
    out = clang_library.compile_into_place([clang, *CFLAGS, str(SOURCE)], clang, SOURCE, NAME)
    installed.cache_clear()
    return out


def main(argv=None) -> int:
    """`python -m mlcc.fork_server_build` (scripts/setup.sh)."""
    import argparse
    argparse.ArgumentParser(description="Build mlcc's clang fork server.").parse_args(argv)
    return clang_library.build_main(build, "the clang fork server",
                                    "each clang run mlcc makes starts as a process of its own")


if __name__ == "__main__":
    sys.exit(main())
