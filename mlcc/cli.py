"""Console entry points `mlcc` (C) and `mlcc++` (C++): the only place that
decides exit codes. Under another name (a symlink called `cc`, `c++`,
`clang++`) the language comes from the name.
"""

from __future__ import annotations

import os
import sys

from mlcc import __version__


def _driver_from_name(default: str) -> str:
    """C++ under a name ending in `++` (c++, g++, clang++), else the entry point's own."""
    name = os.path.basename(sys.argv[0])
    return "c++" if name.endswith("++") else default


def _print_version_extra() -> None:
    from mlcc import model
    print(f"mlcc {__version__} ({model.identities()})")


def _main(default_driver: str) -> int:
    # numpy (under features and onnxruntime) starts an OpenBLAS thread per core at
    # import, about 0.1 s of CPU per compile; mlcc multiplies no matrices.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from mlcc.errors import MlccError

    driver_kind = _driver_from_name(default_driver)
    clang_argv = sys.argv[1:]
    try:
        from mlcc import settings as settings_mod
        clang_argv, flags = settings_mod.split_mlcc_flags(clang_argv)
        settings = settings_mod.load(flags)
        from mlcc.plain import run_plain_clang
        if settings.disable:
            run_plain_clang(driver_kind, clang_argv, "MLCC_DISABLE", settings)
        from mlcc.args import parse
        cmd = parse(clang_argv, driver_kind)
        if clang_argv == ["--version"]:
            return _version(driver_kind)
        from mlcc.plan import PlainClang, make_plan
        plan = make_plan(cmd)
        if isinstance(plan, PlainClang):
            run_plain_clang(cmd.driver, clang_argv, plan.reason, settings)
        from mlcc.model import nothing_to_decide
        reason = nothing_to_decide(cmd.opt_level, settings)
        if reason:
            run_plain_clang(cmd.driver, clang_argv, reason, settings)
        from mlcc import driver  # the optimizing path: model, cache, temporary files
        return driver.execute(plan, settings)
    except KeyboardInterrupt:
        return 130
    except MlccError as exc:
        if str(exc):
            print(f"mlcc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an mlcc bug must not break the user's build
        print(f"mlcc: warning: internal error ({type(exc).__name__}: {exc}); "
              "running plain clang", file=sys.stderr)
        try:
            from mlcc.toolchain import find
            from mlcc.process import exec_tool
            exec_tool([find("clang++" if driver_kind == "c++" else "clang"), *clang_argv])
        except Exception as second:
            print(f"mlcc: error: {second}", file=sys.stderr)
        return 1


def _version(driver_kind: str) -> int:
    """clang's own version text first (build systems parse it), then mlcc's."""
    from mlcc.errors import ToolFailed
    from mlcc.process import run_tool
    from mlcc.toolchain import find
    try:
        run_tool([find("clang++" if driver_kind == "c++" else "clang"), "--version"])
    except ToolFailed as exc:
        return exc.exit_code
    try:
        sys.stdout.flush()
        _print_version_extra()
        sys.stdout.flush()
    except BrokenPipeError:
        # `mlcc --version | head -1`: clang's text got through, which is all a reader
        # of clang's version asks for; nothing more can reach it, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main_c() -> None:
    """`mlcc`: a drop-in clang."""
    sys.exit(_main("c"))


def main_cxx() -> None:
    """`mlcc++`: a drop-in clang++."""
    sys.exit(_main("c++"))
