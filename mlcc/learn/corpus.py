"""The training corpus: real projects built by mlcc in collect mode, and their manifest.

`collect` takes each project of `data/corpus-projects.toml` through
download (`apt-get source --download-only`) → extraction of the upstream
tarball → configure → `make -k` with mlcc at -Oz and `MLCC_COLLECT` set, so
that every translation unit leaves its pre-optimization bitcode and compile
description in `<data>/corpus/<project>/`. A `.done` marker with the counts
makes the command resumable. `index` turns those directories into
`models/corpus-manifest.json`, whose sha256 is the training-data hash.

    python -m mlcc.learn.corpus collect [--only NAME ...] [--jobs 2] [--force]
    python -m mlcc.learn.corpus index

`<data>` is `$MLCC_DATA`, else `~/.cache/mlcc`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlcc.errors import MlccError
from mlcc.learn.paths import LEARN_DATA, MODELS

PROJECTS_FILE = LEARN_DATA / "corpus-projects.toml"
MANIFEST_FILE = MODELS / "corpus-manifest.json"
MANIFEST_FORMAT = 1

OPT_LEVEL = "-Oz"
TIME_BOX_SECONDS = 15 * 60
SPLITS = ("train", "validation")
BUILD_SYSTEMS = ("autotools", "cmake", "make")

# Builds share two cores with other work: stay out of its way.
NICE = ("nice", "-n", "10")

# Autotools probes run with plain clang (same compile lines, no mlcc start-up
# per probe); only `make` goes through mlcc.
CONFIGURE_COMPILERS = {"CC": "clang-19", "CXX": "clang++-19",
                       "CFLAGS": OPT_LEVEL, "CXXFLAGS": OPT_LEVEL}

# Some CMake projects force a build type when none is given (cmark: Release,
# so -O3 after our -Oz); its flags then say -Oz too.
FORCED_BUILD_TYPE_FLAGS = tuple(
    f"-DCMAKE_{lang}_FLAGS_{kind}={OPT_LEVEL} -DNDEBUG"
    for lang in ("C", "CXX") for kind in ("RELEASE", "RELWITHDEBINFO", "MINSIZEREL"))

# Variables of the calling shell that would change what a project's build does.
SCRUBBED_VARIABLES = (
    "CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS",
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CMAKE_GENERATOR",
    "CMAKE_BUILD_TYPE", "CMAKE_BUILD_PARALLEL_LEVEL",
)

# Paths of units that are build-system probes, not project code (kept out of the manifest).
PROBE_MARKERS = ("/CMakeFiles/CMakeTmp/", "/CMakeFiles/CMakeScratch/", "/CompilerIdC/",
                 "/CompilerIdCXX/", "/conftest")


class CorpusError(MlccError):
    """The corpus could not be collected or indexed; the message says what to fix."""


class FetchFailed(CorpusError):
    """`apt-get source` could not provide a project's upstream tarball."""


class TimedOut(CorpusError):
    """A project's build ran past its time box (what compiled so far is kept)."""


class Interrupted(CorpusError):
    """The collection was interrupted (Ctrl-C or SIGTERM)."""

    exit_code = 130


# ----------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Project:
    """One entry of the project list."""

    name: str
    package: str
    build: str
    split: str
    args: tuple[str, ...] = ()
    make_args: tuple[str, ...] = ()
    subdir: str = ""
    deps: tuple[str, ...] = ()


def load_projects(path: Path = PROJECTS_FILE) -> list[Project]:
    """Read and check the project list, in build order."""
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CorpusError(f"cannot read the project list {path}: {exc}") from None
    known = {"name", "package", "build", "split", "args", "make_args", "subdir", "deps"}
    projects: list[Project] = []
    for number, entry in enumerate(table.get("project", []), 1):
        where = f"{path}, project #{number} ({entry.get('package', '?')})"
        unknown = set(entry) - known
        if unknown or "package" not in entry:
            raise CorpusError(f"{where}: needs 'package'; unknown keys {sorted(unknown)}")
        if entry.get("build") not in BUILD_SYSTEMS:
            raise CorpusError(f"{where}: 'build' must be one of {', '.join(BUILD_SYSTEMS)}")
        if entry.get("split") not in SPLITS:
            raise CorpusError(f"{where}: 'split' must be one of {', '.join(SPLITS)}")
        projects.append(Project(
            name=entry.get("name", entry["package"]), package=entry["package"],
            build=entry["build"], split=entry["split"], args=tuple(entry.get("args", ())),
            make_args=tuple(entry.get("make_args", ())), subdir=entry.get("subdir", ""),
            deps=tuple(entry.get("deps", ()))))
    names = Counter(p.name for p in projects)
    if duplicates := [n for n, c in names.items() if c > 1]:
        raise CorpusError(f"{path}: projects listed twice: {', '.join(duplicates)}")
    return projects


def select(projects: list[Project], only: tuple[str, ...]) -> list[Project]:
    """The projects named in `only` (all when empty); unknown names are an error."""
    if not only:
        return projects
    by_name = {p.name: p for p in projects}
    if unknown := [n for n in only if n not in by_name]:
        raise CorpusError(f"not in {PROJECTS_FILE.name}: {', '.join(unknown)}")
    return [by_name[n] for n in only]


# ----------------------------------------------------------------------------- where things live


@dataclass(frozen=True)
class Layout:
    """The directories under the data root."""

    root: Path

    @classmethod
    def from_environment(cls) -> "Layout":
        return cls(Path(os.environ.get("MLCC_DATA") or Path.home() / ".cache" / "mlcc"))

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def corpus(self, project: Project) -> Path:
        return self.root / "corpus" / project.name

    def units(self, project_name: str, level: str = "z") -> Path:
        """A project's collected units at -O`level` (the -Os ones are derived: corpus_level.py)."""
        return self.root / ("corpus" if level == "z" else f"corpus-O{level}") / project_name

    def workdir(self, project: Project) -> Path:
        return self.root / "build" / project.name

    def marker(self, project: Project) -> Path:
        return self.corpus(project) / ".done"

    def log(self, project: Project) -> Path:
        return self.logs / f"{project.name}.log"


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


# ----------------------------------------------------------------------------- building


@dataclass
class Outcome:
    """What one project's collection gave."""

    project: str
    split: str
    status: str = "failed"                       # ok | partial | timed out | failed
    units: int = 0                               # distinct compiles (see distinct_units)
    copies: int = 0                              # PIC/static second compiles, kept on disk only
    languages: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    tarball: str = ""
    reason: str = ""


@dataclass
class Build:
    """A project's build in progress: directories, environments and its deadline."""

    project: Project
    src: Path
    builddir: Path
    corpus: Path
    log: Path
    jobs: int
    deadline: float
    on_step: Callable[[str], None] = lambda step: None
    step: str = "fetch"

    def run(self, *argv: str, cwd: Path, env: dict[str, str]) -> int:
        """Run one configure or build command, niced, within the project's time box."""
        self.on_step(self.step)
        return run_logged([*NICE, *argv], cwd=cwd, log=self.log, env=env, deadline=self.deadline)

    @property
    def configure_env(self) -> dict[str, str]:
        # Probes must not land in the corpus: collect mode is off while configuring.
        return {**base_environment(), "MLCC_DISABLE": "1"}

    @property
    def build_env(self) -> dict[str, str]:
        # MLCC_LOG says why a compile went to plain clang (and so was not collected).
        return {**base_environment(), "MLCC_COLLECT": str(self.corpus),
                "MLCC_LOG": str(self.log.with_suffix(".mlcc.jsonl"))}


def _make_command(build: Build, *extra: str) -> list[str]:
    return ["make", "-k", f"-j{build.jobs}", "CC=mlcc", "CXX=mlcc++", *extra]


def build_autotools(build: Build) -> list[str]:
    """./configure with plain clang at -Oz, then make with mlcc; return the failed steps."""
    failed: list[str] = []
    src, project = build.src, build.project
    if not (src / "configure").exists():
        build.step = "autoreconf"
        if build.run("autoreconf", "-fi", cwd=src, env=build.configure_env) != 0:
            return ["autoreconf"]
    build.step = "configure"
    settings = [f"{k}={v}" for k, v in CONFIGURE_COMPILERS.items()]
    if "enable-static" in (src / "configure").read_text(errors="replace"):
        # libtool would compile every file twice (PIC and not): the same unit, twice the time.
        settings.append("--disable-static")
    if build.run("./configure", *settings, *project.args, cwd=src, env=build.configure_env) != 0:
        return ["configure"]
    build.step = "make"
    if build.run(*_make_command(build, *project.make_args), cwd=src, env=build.build_env) != 0:
        failed.append("make")
    return failed


def build_cmake(build: Build) -> list[str]:
    """cmake with mlcc as the compilers (plain clang while probing), then make -k."""
    build.step = "cmake"
    mlcc, mlccxx = shutil.which("mlcc"), shutil.which("mlcc++")
    if mlcc is None or mlccxx is None:
        raise CorpusError("mlcc is not on PATH: install it first (make setup)")
    code = build.run(
        "cmake", "-S", str(build.src), "-B", str(build.builddir), "-G", "Unix Makefiles",
        f"-DCMAKE_C_COMPILER={mlcc}", f"-DCMAKE_CXX_COMPILER={mlccxx}",
        f"-DCMAKE_C_FLAGS={OPT_LEVEL}", f"-DCMAKE_CXX_FLAGS={OPT_LEVEL}", "-DCMAKE_BUILD_TYPE=",
        *FORCED_BUILD_TYPE_FLAGS, "-DBUILD_TESTING=OFF", *build.project.args,
        cwd=build.src, env=build.configure_env)
    if code != 0:
        return ["cmake"]
    build.step = "make"
    code = build.run("make", "-k", f"-j{build.jobs}", *build.project.make_args,
                     cwd=build.builddir, env=build.build_env)
    return ["make"] if code != 0 else []


def build_make(build: Build) -> list[str]:
    """The upstream Makefile as it is, with mlcc and -Oz given on the command line."""
    build.step = "make"
    extra = build.project.make_args or (f"CFLAGS={OPT_LEVEL}", f"CXXFLAGS={OPT_LEVEL}")
    code = build.run(*_make_command(build, *extra), cwd=build.src, env=build.build_env)
    return ["make"] if code != 0 else []


BUILDERS = {"autotools": build_autotools, "cmake": build_cmake, "make": build_make}


def is_probe(source: str) -> bool:
    """True for a unit compiled by a build system's feature test rather than the project."""
    return any(marker in source for marker in PROBE_MARKERS)


def read_units(directory: Path) -> list[dict]:
    """The compile descriptions of a corpus directory's units (probes left out)."""
    units = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if (directory / f"{meta.get('id', path.stem)}.bc").is_file() and not is_probe(meta.get("source", "")):
            units.append(meta)
    return units


# Flags that make a second compile of the same file (libtool's PIC copy, a
# shared and a static library from one source list) without making new code.
_VARIANT_FLAGS = frozenset({"-fPIC", "-fpic", "-fPIE", "-fpie", "-DPIC", "-MD", "-MMD", "-MP"})
_VARIANT_FLAGS_WITH_VALUE = frozenset({"-o", "-MF", "-MT", "-MQ"})


def variant_key(meta: dict) -> tuple:
    """What makes a unit a different compile of its source: the source and the
    command line without output names, dependency files and PIC flags."""
    kept, skip = [], False
    for arg in meta.get("argv", []):
        if skip:
            skip = False
        elif arg in _VARIANT_FLAGS_WITH_VALUE:
            skip = True
        elif arg not in _VARIANT_FLAGS and not arg.startswith(("-MF", "-MT", "-MQ", "-o")):
            kept.append(arg)
    return meta.get("source", ""), meta.get("language", ""), tuple(kept)


def distinct_units(units: list[dict]) -> list[dict]:
    """One unit per variant key (the smallest id), in id order."""
    chosen: dict[tuple, dict] = {}
    for meta in sorted(units, key=lambda m: m["id"]):
        chosen.setdefault(variant_key(meta), meta)
    return sorted(chosen.values(), key=lambda m: m["id"])


def count_units(directory: Path) -> int:
    """Units collected so far (cheap: counts bitcode files)."""
    try:
        return sum(1 for e in os.scandir(directory) if e.name.endswith(".bc") and e.name[0] != ".")
    except FileNotFoundError:
        return 0


def collect_project(project: Project, layout: Layout, jobs: int, time_box: float,
                    on_step=lambda step: None) -> Outcome:
    """Download, extract, build and collect one project; write its `.done` marker if it gave units."""
    start = time.monotonic()
    outcome = Outcome(project=project.name, split=project.split)
    corpus, workdir, log = layout.corpus(project), layout.workdir(project), layout.log(project)
    for stale in (corpus, workdir):
        if stale.exists():
            shutil.rmtree(stale)
    corpus.mkdir(parents=True)
    log.write_text(f"# {project.name}: {json.dumps(asdict(project))}\n")
    log.with_suffix(".mlcc.jsonl").unlink(missing_ok=True)
    build = Build(project=project, src=workdir / "src", builddir=workdir / "build", corpus=corpus,
                  log=log, jobs=jobs, deadline=start + time_box, on_step=on_step)
    try:
        on_step("fetch")
        tarball = fetch(project, layout)
        outcome.tarball = tarball.name
        on_step("extract")
        extract(tarball, build.src)
        if project.subdir:
            build.src = build.src / project.subdir
        build.builddir.mkdir(parents=True, exist_ok=True)
        failed = BUILDERS[project.build](build)
        outcome.reason = f"{', '.join(failed)} failed" if failed else ""
        outcome.status = "partial" if failed else "ok"
    except Interrupted:
        raise
    except TimedOut:
        outcome.status, outcome.reason = "timed out", f"time box of {time_box:.0f} s reached during {build.step}"
    except (CorpusError, OSError, tarfile.TarError) as exc:
        outcome.status, outcome.reason = "failed", f"{build.step}: {exc}"
    collected = read_units(corpus)
    units = distinct_units(collected)
    outcome.units, outcome.copies = len(units), len(collected) - len(units)
    outcome.languages = dict(Counter(u.get("language", "?") for u in units))
    outcome.seconds = round(time.monotonic() - start, 1)
    if outcome.units == 0:
        outcome.status = "failed"
        outcome.reason = outcome.reason or "no unit was compiled at -Oz"
    else:
        layout.marker(project).write_text(json.dumps(asdict(outcome), indent=1) + "\n")
    with open(log, "a") as handle:
        handle.write(f"\n# outcome: {json.dumps(asdict(outcome))}\n")
    return outcome


@contextlib.contextmanager
def _project_lock(layout: Layout, project: Project) -> Iterator[bool]:
    """Hold a project's lock if no other collector does; yield whether we got it."""
    path = layout.root / "corpus" / f".{project.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def collect(projects: list[Project], layout: Layout, *, jobs: int, parallel: int, force: bool,
            time_box: float, console: Console) -> list[Outcome]:
    """Collect every project not yet done, `parallel` projects at a time."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    todo = [p for p in projects if force or not layout.marker(p).exists()]
    skipped = len(projects) - len(todo)
    if skipped:
        console.print(f"{skipped} project(s) already collected (--force to redo)")
    if not todo:
        return []
    install_dependencies(todo, layout, console)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    columns = (TextColumn("{task.description:<22}"), BarColumn(bar_width=24),
               MofNCompleteColumn(), TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task("projects", total=len(todo), detail="")

        def work(project: Project) -> Outcome | None:
            with _project_lock(layout, project) as mine:
                # Another collector may have taken or finished it since the list was made.
                if not mine or (not force and layout.marker(project).exists()):
                    return None
                return build_one(project)

        def build_one(project: Project) -> Outcome:
            task = progress.add_task(f"  {project.name}", total=None, detail="queued")
            step = {"now": "start"}
            done = threading.Event()

            def show(name: str) -> None:
                step["now"] = name

            def watch() -> None:
                while not done.wait(2.0):
                    units = count_units(layout.corpus(project))
                    progress.update(task, detail=f"{step['now']}: {units} units")

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                return collect_project(project, layout, jobs, time_box, on_step=show)
            finally:
                done.set()
                progress.remove_task(task)

        def report(outcome: Outcome) -> None:
            outcomes.append(outcome)
            style = {"ok": "green", "partial": "yellow"}.get(outcome.status, "red")
            total = sum(o.units for o in outcomes)
            progress.console.print(
                f"[{style}]{outcome.status:9}[/] {outcome.project:20} {outcome.units:5} units "
                f"{outcome.seconds:6.0f} s  (total {total} units, "
                f"{time.monotonic() - started:.0f} s)"
                + (f"  {outcome.reason}" if outcome.reason else ""))
            progress.advance(overall)

        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = [pool.submit(work, p) for p in todo]
            try:
                for future in concurrent.futures.as_completed(futures):
                    if (outcome := future.result()) is not None:
                        report(outcome)
                    else:
                        progress.advance(overall)
            except BaseException:
                # Before the pool waits for its threads: end their builds first.
                stop_everything()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return outcomes


# ----------------------------------------------------------------------------- the manifest


def instruction_count(bitcode: Path) -> int | None:
    """LLVM IR instructions in a bitcode file (None if llvmlite cannot read it)."""
    import llvmlite.binding as llvm

    try:
        module = llvm.parse_bitcode(bitcode.read_bytes())
    except (RuntimeError, OSError):
        return None
    return sum(1 for f in module.functions for b in f.blocks for _ in b.instructions)


def relative_source(source: str, workdir: Path) -> str:
    """A unit's source relative to the project's source tree (`build/...` for generated files)."""
    path = Path(source)
    for base in (workdir / "src", workdir):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return source


def build_manifest(projects: list[Project], layout: Layout, previous: dict | None = None) -> dict:
    """Describe every collected unit of the listed projects (deterministic: no times, sorted)."""
    known = {(u["project"], u["id"]): u.get("instructions")
             for u in (previous or {}).get("units", [])}
    entries, units = [], []
    for project in projects:
        directory = layout.corpus(project)
        if not layout.marker(project).exists():
            continue
        marker = json.loads(layout.marker(project).read_text())
        collected = read_units(directory)
        metas = distinct_units(collected)
        for meta in metas:
            bitcode = directory / f"{meta['id']}.bc"
            count = known.get((project.name, meta["id"]))
            if count is None:
                count = instruction_count(bitcode)
            units.append({
                "project": project.name, "split": project.split, "id": meta["id"],
                "source": relative_source(meta.get("source", ""), layout.workdir(project)),
                "language": meta.get("language", "?"), "bitcode_bytes": bitcode.stat().st_size,
                "instructions": count})
        entries.append({"name": project.name, "package": project.package, "split": project.split,
                        "tarball": marker.get("tarball", ""), "status": marker.get("status", ""),
                        "units": len(metas), "copies_dropped": len(collected) - len(metas)})
    return {"format": MANIFEST_FORMAT, "opt_level": OPT_LEVEL,
            "bitcode": "clang-19 -Oz -Xclang -disable-llvm-passes -emit-llvm",
            "projects": entries, "units": units}


def write_manifest(manifest: dict, path: Path) -> str:
    """Write the manifest (one unit per line, stable bytes); return its sha256."""
    head = {k: v for k, v in manifest.items() if k != "units"}
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}," for k, v in head.items()),
             ' "units": [']
    rows = [json.dumps(u, sort_keys=True) for u in manifest["units"]]
    lines += [f"  {row}," for row in rows[:-1]] + ([f"  {rows[-1]}"] if rows else [])
    lines += [" ]", "}"]
    data = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def summary_table(manifest: dict) -> Table:
    """Per-project counts with totals per split."""
    table = Table(title="mlcc corpus", show_footer=False)
    for name, justify in (("project", "left"), ("split", "left"), ("units", "right"),
                          ("C", "right"), ("C++", "right"), ("bitcode KiB", "right"),
                          ("instructions", "right")):
        table.add_column(name, justify=justify)
    per: dict[str, Counter] = {}
    for unit in manifest["units"]:
        c = per.setdefault(unit["project"], Counter())
        c["units"] += 1
        c["c++" if unit["language"] in ("c++", "cxx", "c++-cpp-output") else "c"] += 1
        c["bytes"] += unit["bitcode_bytes"]
        c["instructions"] += unit["instructions"] or 0
    totals = {s: Counter() for s in SPLITS}
    for entry in manifest["projects"]:
        c = per.get(entry["name"], Counter())
        totals[entry["split"]].update(c)
        totals[entry["split"]]["projects"] += 1
        table.add_row(entry["name"], entry["split"], str(c["units"]), str(c["c"]), str(c["c++"]),
                      f"{c['bytes'] / 1024:.0f}", str(c["instructions"]))
    table.add_section()
    for split in SPLITS:
        c = totals[split]
        table.add_row(f"{split} ({c['projects']} projects)", split, str(c["units"]), str(c["c"]),
                      str(c["c++"]), f"{c['bytes'] / 1024:.0f}", str(c["instructions"]))
    every = totals["train"] + totals["validation"]
    table.add_row(f"total ({every['projects']} projects)", "", str(every["units"]), str(every["c"]),
                  str(every["c++"]), f"{every['bytes'] / 1024:.0f}", str(every["instructions"]))
    return table


# ----------------------------------------------------------------------------- command line


@click.group()
def main() -> None:
    """Collect and index mlcc's training corpus."""


def _console() -> Console:
    """Rich output; wide lines when written to a log file rather than a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@main.command("collect")
@click.option("--only", multiple=True, metavar="NAME", help="collect only these projects")
@click.option("--jobs", default=2, show_default=True, help="parallel make jobs per project")
@click.option("--parallel", default=1, show_default=True, help="projects built at the same time")
@click.option("--force", is_flag=True, help="redo projects that are already collected")
@click.option("--time-box", default=TIME_BOX_SECONDS, show_default=True,
              help="seconds one project may take (what compiled by then is kept)")
def collect_command(only, jobs, parallel, force, time_box) -> None:
    """Build the listed projects with mlcc in collect mode."""
    console = _console()
    layout = Layout.from_environment()
    projects = select(load_projects(), only)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcomes = collect(projects, layout, jobs=jobs, parallel=parallel, force=force,
                           time_box=time_box, console=console)
    except KeyboardInterrupt:
        stop_everything()
        raise Interrupted("collection interrupted; rerun to go on (done projects are kept)") from None
    failed = [o for o in outcomes if o.status == "failed"]
    console.print(f"collected {sum(o.units for o in outcomes)} units from "
                  f"{len(outcomes) - len(failed)} project(s) in {time.monotonic() - started:.0f} s; "
                  f"data in {layout.root}")
    for outcome in failed:
        console.print(f"[red]failed[/] {outcome.project}: {outcome.reason} "
                      f"(log: {layout.logs / (outcome.project + '.log')})")


@main.command("index")
@click.option("--manifest", "manifest_path", type=click.Path(path_type=Path), default=MANIFEST_FILE,
              show_default=True, help="where to write the manifest")
def index_command(manifest_path: Path) -> None:
    """Write the corpus manifest and print per-project counts."""
    console = _console()
    layout = Layout.from_environment()
    previous = None
    if manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            previous = None
    manifest = build_manifest(load_projects(), layout, previous)
    if not manifest["units"]:
        raise CorpusError(f"no collected units under {layout.root / 'corpus'}: "
                          "run `python -m mlcc.learn.corpus collect` first")
    digest = write_manifest(manifest, manifest_path)
    console.print(summary_table(manifest))
    console.print(f"manifest: {manifest_path}  sha256 (training-data hash): {digest}")


def run() -> int:
    """Console entry: map errors to exit codes."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        print("mlcc.learn.corpus: interrupted", file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except MlccError as exc:
        print(f"mlcc.learn.corpus: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlcc.learn.corpus: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
