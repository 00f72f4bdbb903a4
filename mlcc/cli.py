"""Console entry points `mlcc` (C) and `mlcc++` (C++): the only place that
decides exit codes. Under another name (a symlink called `cc`, `c++`,
`clang++`) the language comes from the name.

`run` is the one code path of a command: the Python entry points call it in
their own process, the compile server (`compile_server.py`) in a child forked
for the native client's request.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from mlcc import __version__


class NotServed(Exception):
    """The settings turn the compile server off (`-fmlcc-no-compile-server`, or the
    config file): the client is to run this command in its own process."""


def _driver_from_name(program: str, default: str) -> str:
    """C++ under a name ending in `++` (c++, g++, clang++), else the entry point's own."""
    name = os.path.basename(program)
    return "c++" if name.endswith("++") else default


def _print_version_extra() -> None:
    from mlcc import model, plugin_build
    from mlcc.compile_server import route
    from mlcc.toolchain import find
    plugin = plugin_build.installed(find("clang"))
    pipelines = ("chosen pipelines inside clang (pass plugin)" if plugin
                 else "chosen pipelines through opt (no pass plugin built for this clang)")
    print(f"mlcc {__version__} ({model.identities()}; {route()}; {pipelines})")


def _reopen_closed_streams() -> None:
    """Started with stdout or stderr closed (`>&-`), clang runs fine; mlcc gives the
    descriptor /dev/null, so that its own writes and its tools' go nowhere. (A shell
    script in between, such as pyenv's shim, may leave a file of its own open there,
    read-only: that counts as closed.)"""
    import fcntl
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY:
                continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "w", closefd=False))


def _die_of(signum: int) -> int:
    """End as clang does on Ctrl-C or SIGTERM: killed by the signal, so that a shell
    loop or make sees it (status 130 or 143 in the shell), after mlcc cleaned up."""
    import signal
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum  # only if the signal is blocked


@dataclass
class Route:
    """What a command line is: "plain" (clang as given, after logging `reason`),
    "version", "lto" (an LTO link of `plan`) or "optimize" (`plan`'s units)."""

    kind: str
    driver: str
    clang_argv: list
    settings: object = None
    reason: str = ""
    logged: dict | None = None
    plan: object = None


def decide_route(argv, default_driver: str, served: bool = False) -> Route:
    """Read a command line (`argv[0]` is the program's path), in this process's
    directory and environment, into its `Route`, with no side effect: the compile
    server decides pass-through commands this way without a fork. Raises what `run`
    handles (NotServed when `served` and the settings turn the server off)."""
    driver_kind = _driver_from_name(argv[0], default_driver)
    clang_argv = list(argv[1:])
    from mlcc import settings as settings_mod
    clang_argv, flags = settings_mod.split_mlcc_flags(clang_argv)
    settings = settings_mod.load(flags)
    if served and not settings.compile_server:
        raise NotServed
    if settings.disable:
        return Route("plain", driver_kind, clang_argv, settings, "MLCC_DISABLE")
    from mlcc.args import parse
    cmd = parse(clang_argv, driver_kind)
    if clang_argv == ["--version"]:
        return Route("version", driver_kind, clang_argv, settings)
    from mlcc.plan import PlainClang, make_plan
    plan = make_plan(cmd)
    if isinstance(plan, PlainClang):
        return Route("plain", cmd.driver, clang_argv, settings, plan.reason)
    from mlcc.model import nothing_to_decide
    reason = nothing_to_decide(cmd.opt_level, settings)
    if reason:
        return Route("plain", cmd.driver, clang_argv, settings, reason)
    from mlcc.lto import LtoLink
    if isinstance(plan, LtoLink):
        return Route("lto", cmd.driver, clang_argv, settings, plan=plan)
    from mlcc.plan import tiny_sources
    if tiny_sources(plan, settings):
        # the log names a lone unit's source, and its output when that is an object file
        unit = plan.units[0] if len(plan.units) == 1 else None
        logged = {"source": unit.source} if unit else {}
        if unit and unit.output and not unit.emit_assembly:
            logged["output"] = unit.output
        return Route("plain", cmd.driver, clang_argv, settings, "tiny source", logged)
    return Route("optimize", cmd.driver, clang_argv, settings, plan=plan)


def run(argv, default_driver: str, served: bool = False) -> int:
    """Run one compiler command line (`argv[0]` is the program's path); return its exit
    code. `served`: in a compile server's child, which raises NotServed when the
    settings turn the compile server off."""
    # numpy (under features and onnxruntime) starts an OpenBLAS thread per core at
    # import, about 0.1 s of CPU per compile; mlcc multiplies no matrices.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _reopen_closed_streams()
    from mlcc.errors import MlccError

    driver_kind = _driver_from_name(argv[0], default_driver)
    clang_argv = list(argv[1:])
    try:
        route = decide_route(argv, default_driver, served)
        driver_kind, clang_argv = route.driver, route.clang_argv
        if not route.settings.fork_server:
            from mlcc import process
            process.fork_server = None
        if route.kind == "plain":
            from mlcc.plain import run_plain_clang
            run_plain_clang(route.driver, route.clang_argv, route.reason, route.settings, route.logged)
        if route.kind == "version":
            return _version(route.driver)
        if route.kind == "lto":
            from mlcc.lto import run_link
            run_link(route.plan, route.clang_argv, route.settings)
        from mlcc import driver  # the optimizing path: model, cache, temporary files
        return driver.execute(route.plan, route.settings)
    except NotServed:
        raise
    except KeyboardInterrupt as exc:
        import signal
        return _die_of(getattr(exc, "signum", signal.SIGINT))
    except MlccError as exc:
        if str(exc):
            print(f"mlcc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an mlcc bug must not break the user's build
        print(f"mlcc: warning: internal error ({type(exc).__name__}: {exc}); "
              "running plain clang", file=sys.stderr)
        try:
            from mlcc.settings import split_mlcc_flags
            clang_argv = split_mlcc_flags(clang_argv)[0]  # clang is not to see mlcc's own
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
    sys.exit(run(sys.argv, "c"))


def main_cxx() -> None:
    """`mlcc++`: a drop-in clang++."""
    sys.exit(run(sys.argv, "c++"))
