"""Build the corpus's projects with mlcc in collect mode.

`collect` takes each project of `mlcc/learn/data/corpus-projects.toml` through
download (`apt-get source --download-only`) → extraction of the upstream
tarball → configure → `make -k` with mlcc at -Oz and `MLCC_COLLECT` set, so
that every translation unit leaves its pre-optimization bitcode and compile
description in `<data>/corpus/<project>/`. A `.done` marker with the counts
makes the command resumable.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import shutil
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import count_units, distinct_units, read_units
from mlcc.learn.corpus.projects import OPT_LEVEL, CorpusError, Project
from mlcc.learn.corpus.sources import (Interrupted, TimedOut, base_environment, extract, fetch,
                                       install_dependencies, run_logged, stop_everything)

TIME_BOX_SECONDS = 15 * 60

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
