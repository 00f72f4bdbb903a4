"""The benchmark's projects and configurations, and one build of a project in one of them.

Each project of `mlcc/learn/data/bench-projects.toml` (none of them in the
model's corpus) is downloaded, extracted and built with its own build system by
the helpers and recipes of `projects.py`: once with clang-19 and once with
mlcc per configuration (level `-Oz`/`-Os`, mode single-shot, trials, warm
rebuild, or the model's default pipeline forced on every unit). `build`
returns the record of one such build (`bench_measure` says what it holds).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from mlcc.errors import MlccError
from mlcc.learn.corpus.projects import PROJECTS_FILE as CORPUS_FILE
from mlcc.learn.evaluate import projects as pj
from mlcc.learn.evaluate.bench_measure import (KEPT_MLCC_VARIABLES, aggregate_log, children_cpu,
                                               find_objects, linked_size, loadavg, now_utc, parse_log,
                                               stage_breakdown)
from mlcc.learn.paths import LEARN_DATA
from mlcc.settings import DEFAULT_TRIALS

PROJECTS_FILE = LEARN_DATA / "bench-projects.toml"
LEVELS = ("-Oz", "-Os")

# mode -> MLCC_TRIALS: single-shot trusts the model; trials builds clang's
# pipeline and the model's top K (a bare -fmlcc-trials) and keeps the smallest object.
# "warm" is single-shot again, from a fresh copy of the sources in the same
# directory, with the cache (decisions and finished objects) the "single" build left: an unchanged
# project rebuilt (it runs after "single").
# "fixed" forces the model's default (its candidate 0, the best fixed pipeline on the training
# projects) on every unit with MLCC_PIPELINE: the model's per-file choice must beat it.
# "client" is single-shot with mlcc's native client as CC and CXX (mlcc/client_build.py,
# built for the run): its warm compile server runs the driver, and its CPU, with
# everything the server ran, is the build's.
MODES = {"single": 0, "trials": DEFAULT_TRIALS, "warm": 0, "fixed": 0, "client": 0}
MODE_TITLES = {"single": "single-shot", "trials": f"trials (MLCC_TRIALS={MODES['trials']})",
               "warm": "single-shot rebuild, warm cache",
               "fixed": "the model's default pipeline on every unit (MLCC_PIPELINE)",
               "client": "single-shot through the native client and compile server"}


# --------------------------------------------------------------------------- projects and profiles


@dataclasses.dataclass(frozen=True)
class Project:
    """One entry of bench-projects.toml."""

    name: str
    package: str
    language: str
    recipe: str = ""
    steps: tuple[tuple[str, ...], ...] = ()
    artifacts: tuple[str, ...] = ()
    quick: bool = False
    cross_link: bool = False


@dataclasses.dataclass(frozen=True)
class Profile:
    """Which projects and configurations a run covers, and how many driver-speed repetitions."""

    name: str
    levels: tuple[str, ...]
    modes: tuple[str, ...]
    quick_projects_only: bool
    runs_tiny: int
    runs_large: int


PROFILES = {
    "quick": Profile("quick", ("-Oz",), ("single", "warm", "client"), True, runs_tiny=3, runs_large=1),
    # "fixed" is what x86-64 single-shot runs since it runs the models' default alone
    # (`single_shot` in mlcc/data/targets.toml), and the `mlcc` that "single" finds on
    # PATH is the native client that "client" builds: both would build the same again.
    # issue 26 asks the tiny compile's wall time as the median of 20
    "full": Profile("full", LEVELS, ("single", "trials", "warm"), False, runs_tiny=20, runs_large=3),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """One build of a project: clang at a level, or mlcc at a level in a mode."""

    compiler: str  # "clang" or "mlcc"
    level: str
    mode: str = "-"  # "-" for clang

    @property
    def label(self) -> str:
        return f"{self.compiler} {self.level}" + (f" {self.mode}" if self.compiler == "mlcc" else "")

    def key(self, project: str) -> str:
        return f"{project}|{self.compiler}|{self.level}|{self.mode}"

    def dirname(self) -> str:
        """Where the build's tree is kept once built (it is built in BUILD_TREE)."""
        return "-".join(p.strip("-") for p in (self.compiler, self.level, self.mode) if p != "-")


# Every configuration of a project builds in the same directory, then the tree moves
# to the configuration's own: paths compiled into the code (`__FILE__` in assertion
# messages, .rodata) are then the same bytes for clang and mlcc, and a warm rebuild
# sees the bitcode its single-shot build put in the decision cache.
BUILD_TREE = "tree"


def configs_for(levels: Sequence[str], modes: Sequence[str]) -> list[Config]:
    """clang at every level, then mlcc at every level in every mode."""
    out = [Config("clang", level) for level in levels]
    out += [Config("mlcc", level, mode) for level in levels for mode in modes]
    return out


def load_projects(path: Path = PROJECTS_FILE) -> list[Project]:
    """The projects of bench-projects.toml, checked for the keys a build needs."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    projects = []
    for entry in table.get("project", []):
        p = Project(
            name=entry["name"], package=entry["package"], language=entry["language"],
            recipe=entry.get("recipe", ""),
            steps=tuple(tuple(step) for step in entry.get("steps", ())),
            artifacts=tuple(entry.get("artifacts", ())), quick=bool(entry.get("quick", False)),
            cross_link=bool(entry.get("cross_link", False)),
        )
        if bool(p.recipe) == bool(p.steps):
            raise MlccError(f"{path}: project {p.name} needs exactly one of `recipe` and `steps`")
        if p.steps and not p.artifacts:
            raise MlccError(f"{path}: project {p.name} has `steps` but no `artifacts`")
        projects.append(p)
    return projects


def reserved_names(path: Path = PROJECTS_FILE) -> set[str]:
    """The suites and packages bench-projects.toml keeps for other evaluations (`reserved`)."""
    with open(path, "rb") as f:
        return {name.lower() for name in tomllib.load(f).get("reserved", [])}


def corpus_packages(path: Path = CORPUS_FILE) -> set[str]:
    """Debian packages (and names) of the model's training and validation corpus, and
    the names bench-projects.toml reserves for other evaluations."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    names = reserved_names()
    for entry in table.get("project", []):
        names.add(entry["package"])
        if "name" in entry:
            names.add(entry["name"])
    return names


def check_not_in_corpus(projects: Iterable[Project], corpus: set[str]) -> None:
    """Refuse to benchmark on code the model was trained or validated on."""
    overlap = sorted({p.package for p in projects if p.package.lower() in corpus}
                     | {p.name for p in projects if p.name.lower() in corpus})
    if overlap:
        raise MlccError(f"bench projects also in the model's corpus ({CORPUS_FILE.name}) or "
                        f"reserved: {', '.join(overlap)}; remove them from {PROJECTS_FILE.name}")


def select_projects(projects: Sequence[Project], profile: Profile, only: Sequence[str]) -> list[Project]:
    """The profile's projects, or the ones named with --only (in the file's order)."""
    if only:
        unknown = sorted(set(only) - {p.name for p in projects})
        if unknown:
            raise MlccError(f"unknown bench project {', '.join(unknown)}; "
                            f"choose from {', '.join(p.name for p in projects)}")
        return [p for p in projects if p.name in only]
    return [p for p in projects if p.quick or not profile.quick_projects_only]


# --------------------------------------------------------------------------- one build


def mlcc_environment(env: dict[str, str], mode: str, log: Path, cache: Path,
                      pipeline: str = "") -> dict[str, str]:
    env = {k: v for k, v in env.items()
           if not k.startswith("MLCC_") or k in KEPT_MLCC_VARIABLES}
    env.update(MLCC_LOG=str(log), MLCC_CACHE=str(cache), MLCC_TRIALS=str(MODES[mode]),
               MLCC_CONFIG=os.devnull, MLCC_DISABLE="0", MLCC_NO_CACHE="0", MLCC_SEARCH="0")
    if pipeline:
        env["MLCC_PIPELINE"] = pipeline
    return env


def fixed_pipeline(level: str) -> str:
    """The "fixed" mode's pipeline: the default (candidate 0) of the model in use at `level`."""
    from mlcc import model
    path = os.environ.get("MLCC_MODEL") or str(model.bundled_model_path(level[-1]))
    return model.load(path).candidates[0]


def compilers(config: Config) -> tuple[str, str]:
    """Absolute paths of the C and C++ compilers of a configuration."""
    if config.compiler == "clang":
        from mlcc.toolchain import find
        return find("clang"), find("clang++")
    if config.mode == "client":
        return native_client()
    cc, cxx = pj.find_compiler("mlcc"), pj.find_compiler("mlcc++")
    if cc is None or cxx is None:
        raise MlccError("mlcc/mlcc++ are not on PATH: install mlcc (pip install -e .)")
    return cc, cxx


@functools.lru_cache(maxsize=1)
def native_client() -> tuple[str, str]:
    """mlcc's native client (`mlcc`, `mlcc++`), built once per run into a directory of
    its own from this tree's source."""
    from mlcc import client_build
    bindir = Path(tempfile.mkdtemp(prefix="mlcc-bench-client-"))
    atexit.register(shutil.rmtree, bindir, ignore_errors=True)
    cc, cxx = client_build.build(bindir)
    return str(cc), str(cxx)


def entry_of(compiler: str) -> str:
    """"client" when `compiler` is mlcc's native client (an executable file, what
    `scripts/setup.sh` installs), "python" when it is the Python entry script."""
    try:
        with open(compiler, "rb") as f:
            return "client" if f.read(4) == b"\x7fELF" else "python"
    except OSError:
        return "python"


def decision_cache(workdir: Path, config: Config) -> Path:
    """The decision cache of an mlcc build: fresh for a cold build; for "warm", the
    one the single-shot build at the same level filled (beside the work directories)."""
    cache = workdir.parent / f"decisions{config.level}"
    if config.mode == "single":
        shutil.rmtree(cache, ignore_errors=True)
    return cache if config.mode in ("single", "warm") else workdir / "decisions"


def build(project: Project, config: Config, workdir: Path, jobs: int,
          flags: Sequence[str] = (), ldflags: Sequence[str] = ()) -> dict:
    """Fetch, extract and build one project in one configuration; return the run's record.

    `flags` go beside the level wherever the project takes it (`{opt}`, the
    recipes' CFLAGS): another target's; `ldflags` are the build's LDFLAGS.
    Never raises for a failed download or build: the record says `ok: false`
    and why.
    """
    run: dict = {"project": project.name, "compiler": config.compiler, "level": config.level,
                 "mode": config.mode, "ok": False, "error": None,
                 "date": now_utc(), "loadavg_before": loadavg(), "workdir": str(workdir)}
    try:
        cc, cxx = compilers(config)
        pipeline = fixed_pipeline(config.level) if config.mode == "fixed" else ""
        tarball = pj.fetch_source(project.package)
    except (MlccError, pj.FetchError) as exc:
        run["error"] = str(exc)
        return run
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pj.extract_source(tarball, workdir / "src")
    log = workdir / "build.log"
    mlcc_log = workdir / "mlcc.log"
    env = pj.build_env(cc, cxx)
    if ldflags:
        env["LDFLAGS"] = " ".join(ldflags)
    opt = " ".join((config.level, *flags))
    runtime = workdir / "run"
    if config.compiler == "mlcc":
        env = mlcc_environment(env, config.mode, mlcc_log, decision_cache(workdir, config), pipeline)
        if pipeline:
            run["pipeline"] = pipeline
        # a model server of this build's own, alive until counted (see below)
        runtime.mkdir(mode=0o700)
        env.update(XDG_RUNTIME_DIR=str(runtime), MLCC_SERVER_IDLE="600")
        run["entry"] = entry_of(cc)
    b = pj.Build(workdir=workdir, cc=cc, cxx=cxx, opt=opt, jobs=jobs, log=log, env=env)
    values = {"opt": opt, "jobs": str(jobs), "src": str(b.src), "build": str(b.builddir),
              "cc": cc, "cxx": cxx}
    start, start_cpu = time.monotonic(), children_cpu()
    try:
        run_build(project, b, values)
        run["wall"] = round(time.monotonic() - start, 2)
        run["cpu"] = round(children_cpu() - start_cpu + _stop_model_servers(run, runtime), 2)
        run["compile_lines"] = pj.check_opt_flag(log, [cc, cxx], config.level)
        run["artifacts"] = artifact_sizes(project, workdir)
        run["objects"] = find_objects(workdir)
        if not run["objects"]:
            raise pj.CommandError(f"the build left no object file in {workdir}")
        if config.compiler == "mlcc":
            if not mlcc_log.exists():
                raise pj.CommandError(f"mlcc wrote no MLCC_LOG ({mlcc_log}): did the build use CC/CXX?")
            with open(mlcc_log, errors="replace") as f:
                summary = aggregate_log(parse_log(f), str(workdir))
            log_sizes = summary.pop("log_sizes")
            # The log's size is the objective of the object mlcc delivered; the file on
            # disk must be that object (a mismatch means the tree was rebuilt or moved).
            summary["log_size_mismatches"] = sorted(
                path for path, size in log_sizes.items()
                if path in run["objects"] and run["objects"][path] != size)
            run["mlcc"] = summary
            run["breakdown"] = {k: round(v, 3)
                                for k, v in stage_breakdown(summary["stages"], run["cpu"]).items()}
        run["ok"] = True
    except pj.CommandError as exc:
        run["error"] = str(exc)
        _stop_model_servers(run, runtime)
        run.setdefault("wall", round(time.monotonic() - start, 2))
        run.setdefault("cpu", round(children_cpu() - start_cpu, 2))
    run["loadavg_after"] = loadavg()
    return run


def run_build(project: Project, b: pj.Build, values: dict[str, str]) -> None:
    """The project's build: its recipe, or its `steps` with `values` filled in."""
    if project.recipe:
        pj.RECIPES[project.recipe].build(b)
    else:
        for step in project.steps:
            b.run(*(arg.format(**values) for arg in step))


def artifact_sizes(project: Project, workdir: Path) -> dict[str, int]:
    """{path under workdir: linked size} of the project's built programs and libraries;
    raises CommandError when one is missing or not an ELF file."""
    artifacts = {}
    for pattern in project.artifacts or (pj.RECIPES[project.recipe].artifact,):
        matches = sorted(p for p in workdir.glob(pattern) if p.is_file() and not p.is_symlink())
        if not matches:
            raise pj.CommandError(f"no file matches {pattern} in {workdir}")
        for path in matches:
            try:
                artifacts[str(path.relative_to(workdir))] = linked_size(path)
            except ValueError:
                raise pj.CommandError(f"{path} is not an ELF file") from None
    return artifacts


def _stop_model_servers(run: dict, runtime: Path) -> float:
    """Stop the model servers an mlcc build started; their CPU seconds, which
    belong to the build although they are not its children."""
    from mlcc import model_server

    if "model_servers" in run:
        return 0.0
    found = model_server.stop_all(str(runtime / "mlcc"))
    run["model_servers"] = {"count": found["servers"], "cpu": round(found["cpu"], 3)}
    return found["cpu"]
