"""A project's sources, and the commands that fetch and build them.

`run_logged` is the corpus's one door to subprocesses: each command's output
goes to the project's log, its process group ends at a deadline or on an
interrupt. Sources are the upstream tarballs of Debian source packages
(`apt-get source --download-only`), extracted afresh for every build.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from rich.console import Console

from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.projects import CorpusError, Project

# Variables of the calling shell that would change what a project's build does.
SCRUBBED_VARIABLES = (
    "CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS",
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CMAKE_GENERATOR",
    "CMAKE_BUILD_TYPE", "CMAKE_BUILD_PARALLEL_LEVEL",
)


class FetchFailed(CorpusError):
    """`apt-get source` could not provide a project's upstream tarball."""


class TimedOut(CorpusError):
    """A project's build ran past its time box (what compiled so far is kept)."""


class Interrupted(CorpusError):
    """The collection was interrupted (Ctrl-C or SIGTERM)."""

    exit_code = 130


# ----------------------------------------------------------------------------- running tools


def run_logged(argv, *, cwd: Path, log: Path, env: dict[str, str],
               deadline: float | None = None) -> int:
    """Run one command with its output appended to `log`; return its exit code.

    The learning side's one door to subprocesses. The command runs in its own
    process group so that a deadline ends the whole build (make and every
    compiler under it); then TimedOut is raised.
    """
    argv = [str(a) for a in argv]
    with open(log, "a") as handle:
        handle.write(f"\n$ cd {shlex.quote(str(cwd))} && {shlex.join(argv)}\n")
        handle.flush()
        with _RUNNING_LOCK:
            if _STOPPING.is_set():
                raise Interrupted("interrupted")
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            except OSError as exc:
                handle.write(f"cannot run {argv[0]}: {exc.strerror}\n")
                return 127
            _RUNNING.add(proc)
        try:
            timeout = None if deadline is None else max(1.0, deadline - time.monotonic())
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            handle.write("\n*** time box reached: build stopped ***\n")
            raise TimedOut(f"{argv[0]} stopped at the time box") from None
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc)
        if _STOPPING.is_set():
            raise Interrupted("interrupted")
        handle.write(f"[exit {code}]\n")
        return code


# Commands running now, so that an interrupted collection ends their process groups too.
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


def stop_everything() -> None:
    """End every running command's process group and refuse new ones."""
    _STOPPING.set()
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """End a command and everything it started: TERM, then KILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def base_environment() -> dict[str, str]:
    """The caller's environment without build variables and without mlcc's own settings."""
    return {k: v for k, v in os.environ.items()
            if k not in SCRUBBED_VARIABLES and not k.startswith("MLCC_")}


# ----------------------------------------------------------------------------- sources

_FETCH_LOCK = threading.Lock()


def _dsc_files(dsc: Path) -> list[str]:
    """File names listed in a .dsc's Files field."""
    names, inside = [], False
    for line in dsc.read_text(errors="replace").splitlines():
        if line.startswith("Files:"):
            inside = True
        elif inside and line.startswith(" "):
            names.append(line.split()[-1])
        else:
            inside = False
    return names


def _upstream_tarball(sources: Path, package: str) -> Path | None:
    """The downloaded upstream tarball of `package` (the .orig, else a native package's tarball)."""
    for dsc in sorted(sources.glob(f"{package}_*.dsc"), key=lambda p: p.stat().st_mtime,
                      reverse=True):
        names = _dsc_files(dsc)
        chosen = ([n for n in names if ".orig.tar." in n]
                  or [n for n in names if ".tar." in n and ".debian.tar." not in n])
        if chosen and (sources / chosen[0]).is_file():
            return sources / chosen[0]
    # The mirror may lack a security update's .dsc while the tarball, shared by
    # every Debian revision of the same upstream version, did download.
    origs = [p for p in sources.glob(f"{package}_*.orig.tar.*") if not p.name.endswith(".asc")]
    return max(origs, key=lambda p: p.stat().st_mtime) if origs else None


def source_versions(package: str) -> list[str]:
    """Every version of a source package that apt knows of (`apt-cache showsrc`)."""
    try:
        out = subprocess.run(["apt-cache", "showsrc", "--only-source", package], capture_output=True,
                             text=True, timeout=60, env=base_environment()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return list(dict.fromkeys(line.split(":", 1)[1].strip() for line in out.splitlines()
                              if line.startswith("Version:")))


def fetch(project: Project, layout: Layout) -> Path:
    """Return the project's upstream tarball, downloading the source package if needed."""
    layout.sources.mkdir(parents=True, exist_ok=True)
    with _FETCH_LOCK:
        tarball = _upstream_tarball(layout.sources, project.package)
        if tarball is not None:
            return tarball
        code = run_logged(["apt-get", "source", "--download-only", project.package],
                          cwd=layout.sources, log=layout.log(project), env=base_environment(),
                          deadline=time.monotonic() + 600)
        tarball = _upstream_tarball(layout.sources, project.package)
        # A mirror may list a security update it does not serve (404); an earlier Debian
        # revision of the same package often shares its upstream tarball.
        for version in source_versions(project.package) if tarball is None else ():
            code = run_logged(["apt-get", "source", "--download-only", f"{project.package}={version}"],
                              cwd=layout.sources, log=layout.log(project), env=base_environment(),
                              deadline=time.monotonic() + 600)
            tarball = _upstream_tarball(layout.sources, project.package)
            if tarball is not None:
                break
    if tarball is None:
        # apt-get fails as a whole when only a signature or the Debian patch is missing.
        raise FetchFailed(f"apt-get source {project.package} exited {code} without the upstream "
                          f"tarball (is deb-src enabled? see {layout.log(project)})")
    return tarball


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack a release tarball so that its single top directory becomes `dest`."""
    staging = dest.with_name(dest.name + ".extract")
    for stale in (staging, dest):
        if stale.exists():
            shutil.rmtree(stale)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        try:
            archive.extractall(staging, filter="data")
        except tarfile.FilterError:
            # Some tarballs carry absolute symlinks; the tree is ours and thrown away.
            shutil.rmtree(staging)
            staging.mkdir()
            archive.extractall(staging, filter="tar")
    entries = list(staging.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(dest)
    shutil.rmtree(staging, ignore_errors=True)
    return dest


def install_dependencies(projects: list[Project], layout: Layout, console: Console) -> None:
    """apt-get install the -dev packages the projects list, in one go, if any are missing."""
    wanted = sorted({d for p in projects for d in p.deps})
    missing = [d for d in wanted if not Path(f"/var/lib/dpkg/info/{d}.list").exists()
               and not list(Path("/var/lib/dpkg/info").glob(f"{d}:*.list"))]
    if not missing:
        return
    console.print(f"installing build dependencies: {' '.join(missing)}")
    log = layout.logs / "apt-install.log"
    env = {**base_environment(), "DEBIAN_FRONTEND": "noninteractive"}
    code = run_logged(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                      cwd=layout.root, log=log, env=env)
    if code != 0:
        raise CorpusError(f"apt-get install {' '.join(missing)} exited {code}; see {log}")
