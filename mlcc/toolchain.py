"""Find the LLVM 19 tools mlcc drives, once per run.

Explicit settings come first (`MLCC_CLANG`, `MLCC_CLANGXX`, `MLCC_OPT`, ...,
or a directory in `MLCC_LLVM_BIN`), then the versioned names on PATH.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from dataclasses import dataclass

from mlcc.errors import ToolchainMissing

LLVM_MAJOR = 19

# tool -> (environment variable, name on PATH, Debian package)
TOOLS = {
    "clang": ("MLCC_CLANG", f"clang-{LLVM_MAJOR}", f"clang-{LLVM_MAJOR}"),
    "clang++": ("MLCC_CLANGXX", f"clang++-{LLVM_MAJOR}", f"clang-{LLVM_MAJOR}"),
    "opt": ("MLCC_OPT", f"opt-{LLVM_MAJOR}", f"llvm-{LLVM_MAJOR}"),
    "llc": ("MLCC_LLC", f"llc-{LLVM_MAJOR}", f"llvm-{LLVM_MAJOR}"),
}

# Names under which a tool sits in an LLVM bin directory (MLCC_LLVM_BIN).
_BIN_NAMES = {"clang": ("clang", f"clang-{LLVM_MAJOR}"),
              "clang++": ("clang++", f"clang++-{LLVM_MAJOR}"),
              "opt": ("opt", f"opt-{LLVM_MAJOR}"), "llc": ("llc", f"llc-{LLVM_MAJOR}")}


def _is_self(path: str) -> bool:
    """True when `path` is this mlcc (a wrapper must never call itself as clang)."""
    try:
        me = os.path.realpath(sys.argv[0])
        return os.path.realpath(path) == me
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def find(tool: str) -> str:
    """Absolute path of one tool; raise ToolchainMissing naming what to install."""
    env_name, path_name, package = TOOLS[tool]
    explicit = os.environ.get(env_name)
    candidates = []
    if explicit:
        candidates.append(explicit)
    bindir = os.environ.get("MLCC_LLVM_BIN")
    if bindir:
        candidates.extend(os.path.join(bindir, n) for n in _BIN_NAMES[tool])
    for cand in candidates:
        found = shutil.which(cand)
        if found and not _is_self(found):
            return os.path.abspath(found)
    if not explicit and not bindir:
        # every `clang-19` on PATH in order: one may be a link to mlcc itself
        for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
            found = shutil.which(path_name, path=directory or os.curdir)
            if found and not _is_self(found):
                return os.path.abspath(found)
    where = explicit or (f"{bindir}/{_BIN_NAMES[tool][0]}" if bindir else f"'{path_name}' on PATH")
    raise ToolchainMissing(
        f"cannot find {tool} ({where}); install LLVM {LLVM_MAJOR} "
        f"(apt-get install {package}) or set {env_name} or MLCC_LLVM_BIN")


@dataclass(frozen=True)
class Toolchain:
    """Paths of the tools one compile needs."""

    clang: str   # the driver matching mlcc's language (clang or clang++)

    @property
    def opt(self) -> str:
        """Looked up when first needed: without opt, mlcc falls back to clang's pipeline."""
        return find("opt")


def for_driver(driver: str) -> Toolchain:
    """The toolchain for `mlcc` (driver "c") or `mlcc++` (driver "c++")."""
    return Toolchain(clang=find("clang++" if driver == "c++" else "clang"))
