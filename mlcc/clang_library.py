"""Libraries mlcc builds for the clang it drives: the pass plugin (plugin_build.py) and
the clang fork server (fork_server_build.py). Each is named by a stamp of that clang
and of its source, so a clang upgraded since finds none of its own, and is compiled
into place whole."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def stamp(clang: str, source: Path) -> str:
    """The real path, size and modification time of `clang`'s binary (a Debian upgrade of
    LLVM replaces it too) and the library's `source`, hashed."""
    real = os.path.realpath(clang)
    st = os.stat(real)
    digest = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def path_for(clang: str, source: Path, name: str) -> Path:
    """Where the library `name` built from `source` for `clang` is (or would be): beside
    its source, named by `stamp`."""
    return source.parent / f"{name}-{stamp(clang, source)}.so"


def found(clang: str, source: Path, name: str) -> str | None:
    """`path_for`'s file when it is there (built for this very clang), else None."""
    try:
        path = path_for(clang, source, name)
    except OSError:
        return None
    return str(path) if path.is_file() else None


def compile_into_place(command: list[str], clang: str, source: Path, name: str) -> Path:
    """Run `command` (a compile of `source`, without its `-o`) into `path_for`'s file,
    replaced whole by a rename; then remove the ones beside it built for other clangs.
    Returns the path; raises ToolFailed."""
    from mlcc.process import run_tool
    out = path_for(clang, source, name)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        run_tool([*command, "-o", str(partial)], capture_stderr=True)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    for old in out.parent.glob(f"{name}-*.so"):
        if old != out:
            old.unlink(missing_ok=True)
    return out


def build_main(build, what: str, without: str) -> int:
    """A build script's `main`: build, say where it went; on failure say what mlcc does
    `without` it and return 1."""
    from mlcc.errors import MlccError
    try:
        print(f"installed {build()}")
    except (MlccError, OSError) as exc:
        print(f"mlcc: error: cannot build {what}: {exc}; {without}", file=sys.stderr)
        return 1
    return 0
