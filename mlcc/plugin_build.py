"""Build mlcc's pass plugin (mlcc/plugin/mlcc-pipeline.cpp) for the clang mlcc drives,
and find it at compile time.

With the plugin, clang runs the pipeline mlcc chose and generates code in one
process, from the front end's bitcode: one tool process and one bitcode round trip
fewer per unit than opt and then clang (`trials.UnitBuilder.build_in_one`). A
plugin must be built against the very LLVM that loads it, so its file name carries
a stamp of the clang it was built for (`stamp`); a clang upgraded since finds no
plugin of its own, and mlcc runs opt and clang as before until `mlcc-tool
install-client` (or scripts/setup.sh) builds it again. Building needs LLVM's
headers: Debian's llvm-19-dev, with its `llvm-config-19`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path

SOURCE = Path(__file__).parent / "plugin" / "mlcc-pipeline.cpp"
CXXFLAGS = ("-shared", "-fPIC", "-O2", "-Wall")


def stamp(clang: str) -> str:
    """What the plugin built for `clang` is named by: the LLVM binary's real path, size
    and modification time (a Debian upgrade of LLVM replaces clang's binary too), and
    the plugin's source."""
    real = os.path.realpath(clang)
    st = os.stat(real)
    digest = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    digest.update(SOURCE.read_bytes())
    return digest.hexdigest()[:16]


def path_for(clang: str) -> Path:
    """Where the plugin for `clang` is (or would be) installed."""
    return SOURCE.parent / f"mlcc-pipeline-{stamp(clang)}.so"


@functools.lru_cache(maxsize=8)
def installed(clang: str) -> str | None:
    """The plugin built for `clang`, or None (not built, or built for another LLVM).
    Asked once per process and clang: a compile server restarts when LLVM changes."""
    try:
        found = path_for(clang)
    except OSError:
        return None
    return str(found) if found.is_file() else None


def _llvm_config(clang: str) -> str:
    """llvm-config of the LLVM `clang` belongs to (beside its real binary), else on PATH."""
    from mlcc.errors import ToolchainMissing
    from mlcc.toolchain import LLVM_MAJOR
    import shutil
    beside = Path(os.path.realpath(clang)).parent / "llvm-config"
    if beside.is_file():
        return str(beside)
    found = shutil.which(f"llvm-config-{LLVM_MAJOR}") or shutil.which("llvm-config")
    if found is None:
        raise ToolchainMissing(f"cannot find llvm-config for {clang}; "
                               f"install LLVM's headers (apt-get install llvm-{LLVM_MAJOR}-dev)")
    return found


def build(clang: str | None = None) -> Path:
    """Compile the plugin for `clang` (default: the one mlcc finds) with the clang++
    beside it; returns its path. Plugins built for other LLVMs are removed. Raises
    ToolFailed or ToolchainMissing."""
    from mlcc.process import run_tool
    from mlcc.toolchain import find
    clang = clang or find("clang")
    cxx = find("clang++")
    config = _llvm_config(clang)
    cxxflags = run_tool([config, "--cxxflags"], capture_stdout=True).stdout.decode().split()
    out = path_for(clang)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        run_tool([cxx, *cxxflags, *CXXFLAGS, str(SOURCE), "-o", str(partial)], capture_stderr=True)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    for old in SOURCE.parent.glob("mlcc-pipeline-*.so"):
        if old != out:
            old.unlink(missing_ok=True)
    installed.cache_clear()
    return out


def main(argv=None) -> int:
    """`python -m mlcc.plugin_build` (scripts/setup.sh)."""
    import argparse
    from mlcc.errors import MlccError
    argparse.ArgumentParser(description="Build mlcc's pass plugin for the clang it drives.").parse_args(argv)
    try:
        print(f"installed {build()}")
    except (MlccError, OSError) as exc:
        print(f"mlcc: error: cannot build the pass plugin: {exc}; "
              "mlcc runs opt and clang as separate processes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
