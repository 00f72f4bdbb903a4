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
import os
import sys
from pathlib import Path

from mlcc import clang_library

SOURCE = Path(__file__).parent / "plugin" / "mlcc-pipeline.cpp"
CXXFLAGS = ("-shared", "-fPIC", "-O2", "-Wall")
NAME = "mlcc-pipeline"


def path_for(clang: str) -> Path:
    """Where the plugin for `clang` is (or would be) installed (`clang_library.path_for`)."""
    return clang_library.path_for(clang, SOURCE, NAME)


@functools.lru_cache(maxsize=8)
def installed(clang: str) -> str | None:
    """The plugin built for `clang`, or None (not built, or built for another LLVM).
    Asked once per process and clang: a compile server restarts when LLVM changes."""
    return clang_library.found(clang, SOURCE, NAME)


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
    out = clang_library.compile_into_place([cxx, *cxxflags, *CXXFLAGS, str(SOURCE)], clang, SOURCE, NAME)
    installed.cache_clear()
    return out


def main(argv=None) -> int:
    """`python -m mlcc.plugin_build` (scripts/setup.sh)."""
    import argparse
    argparse.ArgumentParser(description="Build mlcc's pass plugin for the clang it drives.").parse_args(argv)
    return clang_library.build_main(build, "the pass plugin", "mlcc runs opt and clang as separate processes")


if __name__ == "__main__":
    sys.exit(main())
