"""Code size and build time of real projects: mlcc against clang-19 (`mlcc-tool bench`).

Each project of `mlcc/learn/data/bench-projects.toml` (none of them in the model's
corpus) is downloaded, extracted and built with its own build system by the
helpers and recipes of `projects.py`: once with clang-19 and once with
mlcc per configuration (level `-Oz`/`-Os`, mode single-shot, trials, warm
rebuild, or the model's default pipeline forced on every unit). A build
records

- the objective size (`mlcc.objective`) of every object file it left on disk,
  keyed by its path in the tree, so that the two builds pair up file by file;
- the `.text+.data+.rodata` of its linked programs and libraries;
- the wall and CPU time of the whole build (configure included: its probes
  run through the compiler under test too), from `getrusage(RUSAGE_CHILDREN)`;
- for mlcc, the seconds per stage summed over its `MLCC_LOG` lines, and the
  driver overhead: build CPU minus those stages.

Results accumulate in a JSON file, one entry per (project, compiler, level,
mode), so an interrupted run resumes where it stopped. From that file come the
terminal tables, `docs/BENCHMARKS.md` (the same formatted numbers) and the
PNG plots in `docs/img/`.

`--driver-speed` measures the driver alone: start-up, model and features on
a tiny file and on sqlite's amalgamation, against clang compiling the same
file (median of N runs), with the decision cache off and warm.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import mlcc
from mlcc import __version__
from mlcc.errors import MlccError
from mlcc.learn.evaluate import projects as pj
from mlcc.learn.paths import LEARN_DATA, REPO
from mlcc.objective import counts, object_size, section_sizes
from mlcc.settings import DEFAULT_TRIALS

PROJECTS_FILE = LEARN_DATA / "bench-projects.toml"
CORPUS_FILE = LEARN_DATA / "corpus-projects.toml"
RESULTS_FORMAT = 1

LEVELS = ("-Oz", "-Os")
# mode -> MLCC_TRIALS: single-shot trusts the model; trials builds clang's
# pipeline and the model's top K (a bare -fmlcc-trials) and keeps the smallest object.
# "warm" is single-shot again, from a fresh copy of the sources in the same
# directory, with the cache (decisions and finished objects) the "single" build left: an unchanged
# project rebuilt (it runs after "single").
# "fixed" forces the model's default (its candidate 0, the best fixed pipeline on the training
# projects) on every unit with MLCC_PIPELINE: the model's per-file choice must beat it.
MODES = {"single": 0, "trials": DEFAULT_TRIALS, "warm": 0, "fixed": 0}
MODE_TITLES = {"single": "single-shot", "trials": f"trials (MLCC_TRIALS={MODES['trials']})",
               "warm": "single-shot rebuild, warm cache",
               "fixed": "the model's default pipeline on every unit (MLCC_PIPELINE)"}

# The issues' targets (mode -> build CPU over clang's), reported and never enforced:
# single-shot builds at most 1.3x clang's, a warm-cache rebuild within 15%.
TIME_TARGETS = {"single": 1.3, "warm": 1.15}
TIME_TARGET = TIME_TARGETS["single"]

# Stages in MLCC_LOG's "seconds", in the order a unit goes through them.
STAGES = ("frontend", "target", "model", "opt", "codegen", "fallback")
STAGE_TITLES = {"frontend": "front end", "target": "target probe",
                "model": "model", "opt": "opt", "codegen": "codegen",
                "fallback": "fallback", "overhead": "overhead"}

# Objects of CMake's compiler identification and try-compile probes are not
# the project's (and are built without the project's flags).
_PROBE_DIR = re.compile(r"^(\d+(\.\d+)+|CMakeScratch|CMakeTmp|CompilerId.*)$")

# mlcc settings a build runs with; the caller's own MLCC_* variables (other
# than the model and the toolchain) must not change what is measured.
_KEPT_MLCC_VARIABLES = ("MLCC_MODEL", "MLCC_LLVM_BIN", "MLCC_CLANG", "MLCC_CLANGXX", "MLCC_OPT")

TINY_SOURCE = """\
/* The driver-speed benchmark's tiny unit: a few functions, no headers. */
struct point { int x, y; };

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int manhattan(const struct point *a, const struct point *b)
{
    int dx = a->x - b->x, dy = a->y - b->y;
    return (dx < 0 ? -dx : dx) + (dy < 0 ? -dy : dy);
}

int checksum(const unsigned char *p, int n)
{
    unsigned s = 0;
    for (int i = 0; i < n; i++)
        s = (s << 5) + s + p[i];
    return clamp((int)(s & 0x7fffffff), 0, 1 << 30);
}
"""


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
    "quick": Profile("quick", ("-Oz",), ("single", "warm"), True, runs_tiny=3, runs_large=1),
    "full": Profile("full", LEVELS, tuple(MODES), False, runs_tiny=7, runs_large=3),
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
        )
        if bool(p.recipe) == bool(p.steps):
            raise MlccError(f"{path}: project {p.name} needs exactly one of `recipe` and `steps`")
        if p.steps and not p.artifacts:
            raise MlccError(f"{path}: project {p.name} has `steps` but no `artifacts`")
        projects.append(p)
    return projects


def corpus_packages(path: Path = CORPUS_FILE) -> set[str]:
    """Debian packages (and names) of the model's training and validation corpus."""
    with open(path, "rb") as f:
        table = tomllib.load(f)
    names = set()
    for entry in table.get("project", []):
        names.add(entry["package"])
        if "name" in entry:
            names.add(entry["name"])
    return names


def check_not_in_corpus(projects: Iterable[Project], corpus: set[str]) -> None:
    """Refuse to benchmark on code the model was trained or validated on."""
    overlap = sorted({p.package for p in projects if p.package in corpus}
                     | {p.name for p in projects if p.name in corpus})
    if overlap:
        raise MlccError(f"bench projects also in the model's corpus ({CORPUS_FILE.name}): "
                        f"{', '.join(overlap)}; remove them from {PROJECTS_FILE.name}")


def select_projects(projects: Sequence[Project], profile: Profile, only: Sequence[str]) -> list[Project]:
    """The profile's projects, or the ones named with --only (in the file's order)."""
    if only:
        unknown = sorted(set(only) - {p.name for p in projects})
        if unknown:
            raise MlccError(f"unknown bench project {', '.join(unknown)}; "
                            f"choose from {', '.join(p.name for p in projects)}")
        return [p for p in projects if p.name in only]
    return [p for p in projects if p.quick or not profile.quick_projects_only]


# --------------------------------------------------------------------------- measuring one build


def children_cpu() -> float:
    """User + system seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def linked_size(path: str | os.PathLike) -> int:
    """.text+.data+.rodata (with subsections) of a linked program or shared library."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(size for name, size in section_sizes(data).items() if counts(name))


def _is_relocatable_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    if len(head) < 18 or head[:4] != b"\x7fELF":
        return False
    e_type = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
    return e_type == 1  # ET_REL


def find_objects(root: Path) -> dict[str, int]:
    """{path relative to root: objective size} of every ELF object file under root."""
    found: dict[str, int] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not _PROBE_DIR.match(d))
        for name in files:
            if not name.endswith((".o", ".obj")) or name.startswith("conftest"):
                continue
            path = os.path.join(directory, name)
            if not os.path.islink(path) and _is_relocatable_elf(path):
                found[os.path.relpath(path, root)] = object_size(path)
    return dict(sorted(found.items()))


def parse_log(lines: Iterable[str]) -> list[dict]:
    """MLCC_LOG lines as dictionaries (unreadable lines are skipped)."""
    entries = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def aggregate_log(entries: Iterable[dict], root: str | None = None) -> dict:
    """What a build's MLCC_LOG says: units, seconds per stage, plain-clang reasons, choices.

    `root` (the build's work directory) turns each unit's output into a path
    relative to it, to pair log lines with the object files on disk.
    """
    stages = dict.fromkeys(STAGES, 0.0)
    units = plain = fallbacks = model_pipelines = output_hits = 0
    reasons: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for e in entries:
        if e.get("path") == "clang":
            plain += 1
            reasons[str(e.get("reason", "?"))] += 1
            continue
        if e.get("path") != "optimize":
            continue
        units += 1
        for stage, seconds in (e.get("seconds") or {}).items():
            stages[stage] = stages.get(stage, 0.0) + float(seconds)
        fallbacks += bool(e.get("fallback"))
        cache[str(e.get("cache", "off"))] += 1
        output_hits += e.get("output_cache") == "hit"
        if e.get("pipeline") and e.get("pipeline") != f"default<O{e.get('opt_level', 'z')}>":
            model_pipelines += 1
        if root and e.get("output") and e.get("size") is not None:
            path = os.path.normpath(os.path.join(e.get("cwd") or root, e["output"]))
            sizes[os.path.relpath(path, root)] = int(e["size"])
    return {
        "units": units, "plain_commands": plain, "plain_reasons": dict(reasons.most_common()),
        "fallbacks": fallbacks, "model_pipelines": model_pipelines, "cache": dict(cache),
        "output_hits": output_hits, "stages": {k: round(v, 3) for k, v in stages.items()}, "log_sizes": sizes,
    }


def stage_breakdown(stages: dict[str, float], build_cpu: float) -> dict[str, float]:
    """Seconds per stage plus the driver overhead: the build's CPU time the stages do not explain.

    Stage times are wall-clock inside each mlcc process; on a loaded machine they
    include waiting for a CPU, and the overhead can come out negative.
    """
    out = {s: float(stages.get(s, 0.0)) for s in STAGES}
    out["overhead"] = build_cpu - sum(float(v) for v in stages.values())
    return out


def _mlcc_environment(env: dict[str, str], mode: str, log: Path, cache: Path,
                      pipeline: str = "") -> dict[str, str]:
    env = {k: v for k, v in env.items()
           if not k.startswith("MLCC_") or k in _KEPT_MLCC_VARIABLES}
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
    cc, cxx = pj.find_compiler("mlcc"), pj.find_compiler("mlcc++")
    if cc is None or cxx is None:
        raise MlccError("mlcc/mlcc++ are not on PATH: install mlcc (pip install -e .)")
    return cc, cxx


def decision_cache(workdir: Path, config: Config) -> Path:
    """The decision cache of an mlcc build: fresh for a cold build; for "warm", the
    one the single-shot build at the same level filled (beside the work directories)."""
    cache = workdir.parent / f"decisions{config.level}"
    if config.mode == "single":
        shutil.rmtree(cache, ignore_errors=True)
    return cache if config.mode in ("single", "warm") else workdir / "decisions"


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def build(project: Project, config: Config, workdir: Path, jobs: int) -> dict:
    """Fetch, extract and build one project in one configuration; return the run's record.

    Never raises for a failed download or build: the record says `ok: false`
    and why.
    """
    run: dict = {"project": project.name, "compiler": config.compiler, "level": config.level,
                 "mode": config.mode, "ok": False, "error": None,
                 "date": _now(), "loadavg_before": _loadavg(), "workdir": str(workdir)}
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
    runtime = workdir / "run"
    if config.compiler == "mlcc":
        env = _mlcc_environment(env, config.mode, mlcc_log, decision_cache(workdir, config), pipeline)
        if pipeline:
            run["pipeline"] = pipeline
        # a model server of this build's own, alive until counted (see below)
        runtime.mkdir(mode=0o700)
        env.update(XDG_RUNTIME_DIR=str(runtime), MLCC_SERVER_IDLE="600")
    b = pj.Build(workdir=workdir, cc=cc, cxx=cxx, opt=config.level, jobs=jobs, log=log, env=env)
    values = {"opt": config.level, "jobs": str(jobs), "src": str(b.src), "build": str(b.builddir),
              "cc": cc, "cxx": cxx}
    start, start_cpu = time.monotonic(), children_cpu()
    try:
        if project.recipe:
            pj.RECIPES[project.recipe].build(b)
        else:
            for step in project.steps:
                b.run(*(arg.format(**values) for arg in step))
        run["wall"] = round(time.monotonic() - start, 2)
        run["cpu"] = round(children_cpu() - start_cpu + _stop_model_servers(run, runtime), 2)
        run["compile_lines"] = pj.check_opt_flag(log, [cc, cxx], config.level)
        patterns = project.artifacts or (pj.RECIPES[project.recipe].artifact,)
        artifacts = {}
        for pattern in patterns:
            matches = sorted(p for p in workdir.glob(pattern) if p.is_file() and not p.is_symlink())
            if not matches:
                raise pj.CommandError(f"no file matches {pattern} in {workdir}")
            for path in matches:
                try:
                    artifacts[str(path.relative_to(workdir))] = linked_size(path)
                except ValueError:
                    raise pj.CommandError(f"{path} is not an ELF file") from None
        run["artifacts"] = artifacts
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
    run["loadavg_after"] = _loadavg()
    return run


def _stop_model_servers(run: dict, runtime: Path) -> float:
    """Stop the model servers an mlcc build started; their CPU seconds, which
    belong to the build although they are not its children."""
    from mlcc import model_server

    if "model_servers" in run:
        return 0.0
    found = model_server.stop_all(str(runtime / "mlcc"))
    run["model_servers"] = {"count": found["servers"], "cpu": round(found["cpu"], 3)}
    return found["cpu"]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- summaries (pure)


def gain(clang: float | None, mlcc: float | None) -> float | None:
    """Percent smaller than clang (positive: mlcc's is smaller)."""
    if not clang or mlcc is None:
        return None
    return 100.0 * (clang - mlcc) / clang


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarize_pair(clang: dict | None, mlcc: dict | None) -> dict:
    """One project in one configuration: sizes, per-file gains and times, mlcc against clang."""
    row: dict = {"ok": bool(clang and clang.get("ok") and mlcc and mlcc.get("ok")),
                 "error": next((r.get("error") for r in (clang, mlcc) if r and r.get("error")), None)}
    if clang is None or mlcc is None:
        row["error"] = row["error"] or "not built"
    if not row["ok"]:
        return row
    artifacts = sorted(set(clang["artifacts"]) & set(mlcc["artifacts"]))
    row["artifact_clang"] = sum(clang["artifacts"][a] for a in artifacts)
    row["artifact_mlcc"] = sum(mlcc["artifacts"][a] for a in artifacts)
    row["artifact_gain"] = gain(row["artifact_clang"], row["artifact_mlcc"])
    common = sorted(set(clang["objects"]) & set(mlcc["objects"]))
    row["files"] = len(common)
    row["objects_clang"] = sum(clang["objects"][o] for o in common)
    row["objects_mlcc"] = sum(mlcc["objects"][o] for o in common)
    row["objects_gain"] = gain(row["objects_clang"], row["objects_mlcc"])
    row["file_gains"] = [round(gain(clang["objects"][o], mlcc["objects"][o]), 4)
                         for o in common if clang["objects"][o]]
    row["files_smaller"] = sum(mlcc["objects"][o] < clang["objects"][o] for o in common)
    row["files_larger"] = sum(mlcc["objects"][o] > clang["objects"][o] for o in common)
    row["files_same"] = len(common) - row["files_smaller"] - row["files_larger"]
    for key in ("wall", "cpu"):
        row[f"clang_{key}"], row[f"mlcc_{key}"] = clang[key], mlcc[key]
        row[f"{key}_ratio"] = _ratio(mlcc[key], clang[key])
    row["units"] = mlcc["mlcc"]["units"]
    row["plain_commands"] = mlcc["mlcc"]["plain_commands"]
    row["fallbacks"] = mlcc["mlcc"]["fallbacks"]
    row["model_pipelines"] = mlcc["mlcc"]["model_pipelines"]
    row["output_hits"] = mlcc["mlcc"].get("output_hits", 0)
    row["breakdown"] = mlcc["breakdown"]
    row["server_cpu"] = float((mlcc.get("model_servers") or {}).get("cpu", 0.0))
    return row


def summarize(runs: dict[str, dict], projects: Sequence[Project], levels: Sequence[str],
              modes: Sequence[str]) -> list[dict]:
    """Per mlcc configuration: a row per project and the totals over the projects built in both."""
    sections = []
    for level in levels:
        clang_cfg = Config("clang", level)
        for mode in modes:
            mlcc_cfg = Config("mlcc", level, mode)
            rows = {}
            for p in projects:
                row = summarize_pair(runs.get(clang_cfg.key(p.name)), runs.get(mlcc_cfg.key(p.name)))
                row["language"] = p.language
                rows[p.name] = row
            sections.append({"level": level, "mode": mode, "rows": rows,
                             "total": _totals([r for r in rows.values() if r["ok"]])})
            if mode == "fixed":
                sections[-1]["choice"] = choice_against_fixed(runs, projects, level)
    return sections


def choice_against_fixed(runs: dict[str, dict], projects: Sequence[Project], level: str) -> dict:
    """What the model's choice per file adds: its single-shot build against the "fixed"
    build (its default on every unit), totalled over the projects built both ways."""
    fixed, single = Config("mlcc", level, "fixed"), Config("mlcc", level, "single")
    rows = [summarize_pair(runs.get(fixed.key(p.name)), runs.get(single.key(p.name))) for p in projects]
    return _totals([r for r in rows if r["ok"]])


def choice_line(section: dict) -> str:
    """The "fixed" section's comparison with single-shot, in one sentence."""
    choice = section.get("choice") or {}
    if not choice.get("projects"):
        return ""
    return (f"The model's choice per file (single-shot) against this build, on the {choice['projects']} "
            f"projects built both ways: linked {fmt_gain(choice['artifact_gain'])}, objects "
            f"{fmt_gain(choice['objects_gain'])} (positive: the model's smaller); per object file "
            f"smaller in {choice['files_smaller']}, same in {choice['files_same']}, larger in "
            f"{choice['files_larger']}. Here every unit gets the pipeline; single-shot leaves units "
            "under `small_unit` bytes of bitcode to clang's own.")


def _totals(rows: list[dict]) -> dict:
    if not rows:
        return {"projects": 0}
    total: dict = {"projects": len(rows)}
    for key in ("artifact_clang", "artifact_mlcc", "objects_clang", "objects_mlcc", "files",
                "files_smaller", "files_larger", "files_same", "clang_wall", "mlcc_wall",
                "clang_cpu", "mlcc_cpu", "units", "plain_commands", "fallbacks", "model_pipelines",
                "server_cpu", "output_hits"):
        total[key] = round(sum(r[key] for r in rows), 2)
    total["artifact_gain"] = gain(total["artifact_clang"], total["artifact_mlcc"])
    total["objects_gain"] = gain(total["objects_clang"], total["objects_mlcc"])
    total["file_gains"] = [g for r in rows for g in r["file_gains"]]
    total["median_file_gain"] = statistics.median(total["file_gains"]) if total["file_gains"] else None
    total["wall_ratio"] = _ratio(total["mlcc_wall"], total["clang_wall"])
    total["cpu_ratio"] = _ratio(total["mlcc_cpu"], total["clang_cpu"])
    total["breakdown"] = {k: round(sum(r["breakdown"][k] for r in rows), 3)
                          for k in (*STAGES, "overhead")}
    return total


def startup_cost(speed: dict | None) -> float | None:
    """CPU seconds mlcc adds to every command before any work: Python start-up and imports
    (the driver-speed benchmark's `mlcc disabled` on the tiny file, minus clang's own time)."""
    try:
        tiny = speed["files"]["tiny.c"]["variants"]
        return max(tiny["mlcc disabled"]["cpu"] - tiny["clang"]["cpu"], 0.0)
    except (KeyError, TypeError):
        return None


def interpreter_cost(speed: dict | None) -> float | None:
    """CPU seconds of the bare interpreter starting (`python -c pass`), the floor of start-up."""
    try:
        return speed["files"]["tiny.c"]["variants"]["python alone"]["cpu"]
    except (KeyError, TypeError):
        return None


def _startup_text(startup: float, commands: float, interpreter: float | None) -> str:
    text = (f"{fmt_seconds(startup)} each (driver-speed benchmark), "
            f"{fmt_seconds(startup * commands)} in all")
    if interpreter is not None:
        text += (f", of which the bare interpreter is {fmt_seconds(interpreter)} "
                 "(`python -c pass` with this installation's site-packages)")
    return text


def time_verdict(total: dict, startup: float | None = None, mode: str = "single",
                 interpreter: float | None = None) -> str:
    """One paragraph on the build-time target, and where the extra time goes when it is missed."""
    ratio = total.get("cpu_ratio")
    if ratio is None:
        return "No build finished in both configurations."
    target = TIME_TARGETS.get(mode)
    text = (f"mlcc's build CPU time is {fmt_ratio(ratio)} clang's (wall: "
            f"{fmt_ratio(total['wall_ratio'])})")
    if mode == "fixed":
        return text + "; no target: this build is the yardstick for the model's choice, not a way to build."
    if target is None:
        return text + ("; each trial is one more code generation per unit the model decides for, and one more opt "
                       "unless an earlier trial had the same opt part (the pipelines differ in codegen knobs only).")
    text += f"; target ≤ {target:g}×: {'met' if ratio <= target else 'not met'}."
    if total.get("output_hits"):
        text += (f" {total['output_hits']:.0f} of its {total['units']:.0f} units took their object "
                 "from the cache: only the front end ran for them (it makes the bitcode the "
                 "cache key is hashed from, and the dependency file).")
    if ratio > target and not total["units"]:
        commands = total["plain_commands"]
        text += (f" mlcc optimized no unit (no model for this level): each of its {commands:.0f} "
                 "commands was clang itself after Python started")
        if startup is not None:
            text += ", " + _startup_text(startup, commands, interpreter)
        text += (". A small native launcher that execs clang without starting Python when "
                 "there is nothing to decide would remove it.")
    elif ratio > target:
        b = total["breakdown"]
        extra = total["mlcc_cpu"] - total["clang_cpu"]
        only_mlcc = ", ".join(f"{STAGE_TITLES[k]} {fmt_seconds(b[k])}"
                              for k in ("target", "model", "fallback") if b[k] > 0)
        text += (f" The extra {fmt_seconds(extra)} of CPU: each unit the model decides for runs "
                 f"clang's work as three tool processes instead of one, a small unit as two (front end {fmt_seconds(b['frontend'])}, opt "
                 f"{fmt_seconds(b['opt'])}, codegen {fmt_seconds(b['codegen'])}), plus what only "
                 f"mlcc does ({only_mlcc or 'nothing measurable'})")
        commands = total["units"] + total["plain_commands"]
        if startup is not None:
            text += (f", plus Python start-up in each of its {commands:.0f} commands: "
                     + _startup_text(startup, commands, interpreter))
        text += "."
        if total.get("server_cpu"):
            text += (f" The model runs in a model server per build (its CPU, "
                     f"{fmt_seconds(total['server_cpu'])}, is counted in mlcc's): it loads numpy, "
                     "onnxruntime and llvmlite once instead of in every compiler process.")
        text += (" What would remove the rest: a small native launcher that execs clang for the "
                 f"{total['plain_commands']:.0f} pass-through commands (links, configure probes) "
                 "without starting Python, and running the chosen pipeline inside clang (a pass "
                 "plugin) instead of three tool processes and two bitcode round trips per unit. "
                 "Units under `small_unit` bytes of bitcode already go to clang whole.")
        if b["overhead"] < 0:
            text += (" The stages add up to more than the build's CPU time: the machine was "
                     "loaded and they include waiting for a CPU.")
    return text


# --------------------------------------------------------------------------- formatting (shared by terminal and Markdown)


def fmt_bytes(n: int | float | None) -> str:
    return "—" if n is None else f"{int(n):,}".replace(",", " ")


def fmt_gain(g: float | None) -> str:
    return "—" if g is None else f"{g:+.2f}%"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.2f} s" if abs(s) < 10 else f"{s:.1f} s"


SIZE_HEADER = ("project", "lang", "files", "linked clang", "linked mlcc", "gain",
               "objects clang", "objects mlcc", "gain", "files −/=/+",
               "build clang", "build mlcc", "CPU ×")
TIME_HEADER = ("project", "clang CPU", "mlcc CPU", *(STAGE_TITLES[s] for s in STAGES),
               "overhead", "CPU ×", "wall ×")


def size_rows(section: dict) -> list[tuple[str, ...]]:
    """The size table of one configuration, as text cells (last row: the total)."""
    out = []
    for name, r in section["rows"].items():
        if not r["ok"]:
            out.append((name, r["language"], "failed", *("",) * 9, ""))
            continue
        out.append((name, r["language"], str(r["files"]), fmt_bytes(r["artifact_clang"]),
                    fmt_bytes(r["artifact_mlcc"]), fmt_gain(r["artifact_gain"]),
                    fmt_bytes(r["objects_clang"]), fmt_bytes(r["objects_mlcc"]),
                    fmt_gain(r["objects_gain"]),
                    f"{r['files_smaller']}/{r['files_same']}/{r['files_larger']}",
                    fmt_seconds(r["clang_wall"]), fmt_seconds(r["mlcc_wall"]),
                    fmt_ratio(r["cpu_ratio"])))
    t = section["total"]
    if t.get("projects"):
        out.append((f"total ({t['projects']})", "", str(t["files"]), fmt_bytes(t["artifact_clang"]),
                    fmt_bytes(t["artifact_mlcc"]), fmt_gain(t["artifact_gain"]),
                    fmt_bytes(t["objects_clang"]), fmt_bytes(t["objects_mlcc"]),
                    fmt_gain(t["objects_gain"]),
                    f"{t['files_smaller']}/{t['files_same']}/{t['files_larger']}",
                    fmt_seconds(t["clang_wall"]), fmt_seconds(t["mlcc_wall"]),
                    fmt_ratio(t["cpu_ratio"])))
    return out


def time_rows(section: dict) -> list[tuple[str, ...]]:
    """CPU time of each build and mlcc's seconds per stage (last row: the total)."""
    out = []
    for name, r in [*section["rows"].items(), (f"total ({section['total'].get('projects', 0)})",
                                                section["total"])]:
        if not r.get("breakdown"):
            continue
        b = r["breakdown"]
        out.append((name, fmt_seconds(r["clang_cpu"]), fmt_seconds(r["mlcc_cpu"]),
                    *(fmt_seconds(b[s]) for s in STAGES), fmt_seconds(b["overhead"]),
                    fmt_ratio(r["cpu_ratio"]), fmt_ratio(r["wall_ratio"])))
    return out


def file_gain_line(total: dict) -> str:
    if not total.get("files"):
        return ""
    return (f"Per object file ({total['files']} paired): median gain "
            f"{fmt_gain(total['median_file_gain'])}; smaller in {total['files_smaller']}, "
            f"same in {total['files_same']}, larger in {total['files_larger']}. "
            f"mlcc optimized {total['units']:.0f} units ({total['model_pipelines']:.0f} with a "
            f"pipeline other than clang's, {total['fallbacks']:.0f} fallbacks); "
            f"{total['plain_commands']:.0f} commands went to plain clang.")


# --------------------------------------------------------------------------- driver speed


DRIVER_VARIANTS = ("clang", "python alone", "mlcc disabled", "mlcc no cache", "mlcc warm cache")


def _interpreter(script: str) -> str | None:
    """The Python that runs the `mlcc` console script (its #! line), if it has one."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!") or "python" not in first:
        return None
    return first[2:].split()[0]


def _sqlite_amalgamation() -> Path:
    """sqlite3.c, fetched and generated by scripts/bench_features.py's helper (cached)."""
    script = REPO / "scripts" / "bench_features.py"
    if not script.is_file():
        raise MlccError(f"the driver-speed benchmark fetches sqlite3.c with {script}, "
                        "which this installation lacks: run it from a source checkout")
    spec = importlib.util.spec_from_file_location("mlcc_bench_features", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cache = Path.home() / ".cache" / "mlcc" / "bench-sources"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        return Path(module.fetch_sqlite(cache))
    except SystemExit as exc:  # the script's helpers exit on failure
        raise MlccError(f"cannot get sqlite3.c: {exc}") from None


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one command run to completion."""
    from mlcc.process import run_tool

    before, start = children_cpu(), time.perf_counter()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        run_tool(argv, env=env, capture_stdout=True, capture_stderr=True)
    finally:
        os.chdir(old)
    return time.perf_counter() - start, children_cpu() - before


def driver_speed(runs_tiny: int, runs_large: int, workdir: Path,
                 progress: Callable[[str], None] = lambda _msg: None) -> dict:
    """Median wall/CPU seconds of compiling a tiny file and sqlite3.c at -Oz -c with clang and mlcc."""
    from mlcc.toolchain import find

    clang, mlcc = find("clang"), pj.find_compiler("mlcc")
    if mlcc is None:
        raise MlccError("mlcc is not on PATH: install mlcc (pip install -e .)")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    tiny = workdir / "tiny.c"
    tiny.write_text(TINY_SOURCE)
    files = [("tiny.c", tiny, runs_tiny), ("sqlite3.c", _sqlite_amalgamation(), runs_large)]
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MLCC_") or k in _KEPT_MLCC_VARIABLES}
    # one compile on its own: the model loads in the compiler process, no server
    base_env.update(MLCC_CONFIG=os.devnull, MLCC_TRIALS="0", MLCC_SEARCH="0", MLCC_SERVER="0")
    out: dict = {"date": _now(), "loadavg_before": _loadavg(), "files": {}}
    for label, source, runs in files:
        obj = workdir / "out.o"
        log = workdir / f"{label}.log"
        warm_cache = workdir / f"{label}.cache"
        common = ["-Oz", "-c", str(source), "-o", str(obj)]
        variants = {
            "clang": ([clang, *common], base_env),
            "python alone": ([_interpreter(mlcc) or sys.executable, "-c", "pass"], base_env),
            "mlcc disabled": ([mlcc, *common], {**base_env, "MLCC_DISABLE": "1"}),
            "mlcc no cache": ([mlcc, *common, "-fmlcc-no-cache"],
                              {**base_env, "MLCC_LOG": str(log)}),
            "mlcc warm cache": ([mlcc, *common], {**base_env, "MLCC_LOG": str(log),
                                                  "MLCC_CACHE": str(warm_cache)}),
        }
        if label != "tiny.c":
            # start-up is lost in the noise of a long compile
            del variants["mlcc disabled"], variants["python alone"]
        progress(f"{label}: warming up")
        for name, (argv, env) in variants.items():
            if label == "tiny.c" or name == "mlcc warm cache":  # page cache; the cache's entry
                _timed(argv, env, source.parent)
        log.unlink(missing_ok=True)
        samples: dict[str, list[tuple[float, float, dict]]] = {v: [] for v in variants}
        for i in range(runs):
            for name, (argv, env) in variants.items():  # interleaved: load changes hit all
                progress(f"{label}: run {i + 1}/{runs}, {name}")
                size_before = log.stat().st_size if log.exists() else 0
                wall, cpu = _timed(argv, env, source.parent)
                stages = {}
                if "MLCC_LOG" in env and log.exists():
                    with open(log, errors="replace") as f:
                        f.seek(size_before)
                        stages = aggregate_log(parse_log(f))["stages"]
                samples[name].append((wall, cpu, stages))
        lines = source.read_text(errors="replace").count("\n")
        result = {"lines": lines, "runs": runs, "variants": {}}
        for name, values in samples.items():
            v = {"wall": statistics.median(w for w, _, _ in values),
                 "cpu": statistics.median(c for _, c, _ in values)}
            if values[0][2]:
                v["stages"] = {s: statistics.median(st.get(s, 0.0) for _, _, st in values)
                               for s in STAGES}
                v["overhead"] = v["wall"] - sum(v["stages"].values())
            result["variants"][name] = {k: (round(x, 4) if isinstance(x, float) else
                                            {s: round(y, 4) for s, y in x.items()})
                                        for k, x in v.items()}
        out["files"][label] = result
    out["loadavg_after"] = _loadavg()
    return out


def _by_size(files: dict[str, dict]) -> list[tuple[str, dict]]:
    """The driver-speed files, smallest first (the results file keeps keys sorted by name)."""
    return sorted(files.items(), key=lambda item: item[1]["lines"])


DRIVER_HEADER = ("file", "variant", "wall", "CPU", "wall ×", "CPU ×", *(STAGE_TITLES[s] for s in STAGES[:5]),
                 "overhead")


def driver_rows(speed: dict) -> list[tuple[str, ...]]:
    out = []
    for label, f in _by_size(speed["files"]):
        clang = f["variants"]["clang"]
        for name in DRIVER_VARIANTS:
            v = f["variants"].get(name)
            if v is None:
                continue
            st = v.get("stages") or {}
            out.append((f"{label} ({f['lines']} lines)", name, fmt_seconds(v["wall"]),
                        fmt_seconds(v["cpu"]), fmt_ratio(_ratio(v["wall"], clang["wall"])),
                        fmt_ratio(_ratio(v["cpu"], clang["cpu"])),
                        *(fmt_seconds(st[s]) if st else "" for s in STAGES[:5]),
                        fmt_seconds(v["overhead"]) if "overhead" in v else ""))
    return out


# --------------------------------------------------------------------------- results file


def byte_compile_mlcc() -> None:
    """Write mlcc's .pyc files, as installing a wheel does: under PYTHONDONTWRITEBYTECODE
    an editable install would compile every module from source in every compiler process."""
    import compileall

    compileall.compile_dir(str(Path(mlcc.__file__).resolve().parent), quiet=1)


def environment_identity() -> dict:
    """What the numbers depend on; runs recorded under another identity are redone."""
    from mlcc import model
    from mlcc.toolchain import find

    try:
        clang = subprocess.run([find("clang"), "--version"], capture_output=True, text=True,
                               timeout=60).stdout.splitlines()[0].strip()
    except (MlccError, OSError, IndexError):
        clang = "unknown"
    return {"mlcc": __version__, "clang": clang,
            "model": {level: model.identity(level[-1]) for level in LEVELS}}


def load_results(path: Path, identity: dict, fresh: bool) -> tuple[dict, str]:
    """The results file's content when it fits this setup, else a new one; and a note."""
    new = {"format": RESULTS_FORMAT, "identity": identity, "invocations": [], "runs": {}}
    if fresh or not path.exists():
        return new, ""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return new, f"ignoring unreadable {path} ({exc})"
    def toolchain(ident: dict) -> dict:
        return {k: v for k, v in ident.items() if k != "model"}
    if old.get("format") != RESULTS_FORMAT or toolchain(old.get("identity", {})) != toolchain(identity):
        return new, f"{path} was made with another mlcc or clang: starting afresh"
    # A new model for one level redoes that level's mlcc builds only.
    changed = {level for level, m in identity["model"].items()
               if old["identity"].get("model", {}).get(level) != m}
    note = ""
    if changed:
        old["runs"] = {key: run for key, run in old["runs"].items()
                       if not _built_with_model_of(key, changed)}
        old["identity"] = identity
        note = f"; the model for {', '.join(sorted(changed))} changed: its mlcc builds are redone"
    return old, f"resuming from {path} ({sum(r.get('ok', False) for r in old['runs'].values())} builds){note}"


def _built_with_model_of(run_key: str, levels: set[str]) -> bool:
    """Whether the build recorded under `run_key` (Config.key) used the model of one of `levels`."""
    _, compiler, level, _ = run_key.split("|")
    return compiler == "mlcc" and level in levels


def save_results(path: Path, results: dict) -> None:
    """Write the results atomically (an interrupted run keeps the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def machine() -> dict:
    """The machine the numbers were taken on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "loadavg": _loadavg(),
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "mlcc"],
                               capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + (" + uncommitted changes under mlcc/" if dirty.stdout.strip() else "")


# --------------------------------------------------------------------------- Markdown and plots


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> list[str]:
    right = [i >= left for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _since_fresh(builds: list[dict]) -> list[dict]:
    """The build invocations whose results the file holds: from the last fresh start on
    (a resumed run builds what is missing, `--redo` the configurations it names)."""
    starts = [i for i, b in enumerate(builds) if "--fresh" in b.get("command", "")]
    return builds[starts[-1] if starts else 0:]


def render_markdown(results: dict, sections: list[dict], plots: dict[str, str]) -> str:
    """docs/BENCHMARKS.md from the results file and its summary (`plots`: title -> relative path)."""
    builds = [i for i in results.get("invocations", []) if i.get("kind") == "build"]
    inv = (builds or results.get("invocations") or [{}])[-1]
    ident = results.get("identity", {})
    m = inv.get("machine", {})
    out = ["# Benchmarks: mlcc against clang-19 on real projects", "",
           "<!-- Written by `mlcc-tool bench` (mlcc/learn/bench.py). Do not edit by hand: rerun it. -->",
           "",
           *(f"- command: `{b.get('command', '?')}` (profile {b.get('profile', '?')}, "
             f"`make -j{b.get('jobs', '?')}`), {b.get('date', '?')}"
             + (": the configurations it names" if "--redo" in b.get("command", "") else "")
             for b in _since_fresh(builds) or [inv]),
           f"- machine: {m.get('nproc', '?')} CPUs ({m.get('cpu') or '?'}), {m.get('system', '?')}, "
           f"load average {' / '.join(str(x) for x in m.get('loadavg', []))} at the start"
           + (f", {' / '.join(str(x) for x in inv['loadavg_end'])} at the end" if inv.get("loadavg_end") else ""),
           f"- mlcc {ident.get('mlcc', '?')} (git {inv.get('git', '?')}), Python {m.get('python', '?')}; "
           "mlcc's modules byte-compiled before the builds, as installing a wheel does",
           f"- clang: {ident.get('clang', '?')}",
           *(f"- {level}: {ident['model'][level]}" for level in LEVELS if level in ident.get("model", {})),
           "",
           "Sizes are mlcc's objective (`mlcc/objective.py`): the bytes of `.text`, `.data` and "
           "`.rodata` with their subsections. *linked* is that of the programs and shared "
           "libraries a project builds (listed in `mlcc/learn/data/bench-projects.toml`), "
           "*objects* the sum over the object files both builds left on disk, paired by path. "
           "*gain* is how much smaller mlcc's is than clang-19's at the same level "
           "(positive: mlcc smaller). *files −/=/+*: object files smaller / the same / larger "
           "with mlcc. Build times cover the whole build (configure included) and are wall "
           "seconds; *CPU ×* is mlcc's build CPU time over clang's. None of these projects is in "
           "the model's training or validation corpus.", ""]
    busy = [x for x in (m.get("loadavg", [0])[0], (inv.get("loadavg_end") or [0])[0])
            if x > m.get("nproc", os.cpu_count() or 1)]
    if busy and sections:
        out += [f"The machine was busy (load average {max(busy):g} on {m.get('nproc')} CPUs): "
                "wall times and mlcc's stage times are inflated by waiting for a CPU; sizes are "
                "not affected, and CPU times much less than wall times.", ""]
    for section in sections:
        title = f"{section['level']}, {MODE_TITLES[section['mode']]}"
        out += [f"## {title}", ""]
        out += _md_table(SIZE_HEADER, size_rows(section), left=2)
        out += [""]
        for line in (file_gain_line(section["total"]), choice_line(section)):
            if line:
                out += [line, ""]
        failed = [(n, r["error"]) for n, r in section["rows"].items() if not r["ok"]]
        for name, error in failed:
            first = (error or "").strip().splitlines()[:1] or ["?"]
            out += [f"- {name} failed: `{first[0][:300]}`"]
        if failed:
            out += [""]
        out += [f"### Build time, {title}", "",
                "CPU seconds of the whole build, and mlcc's seconds per stage summed over its "
                "units from `MLCC_LOG` (front end to bitcode, target probe, model = features + "
                "inference, opt, code generation, fallback to clang's pipeline). *overhead* is the "
                "build's CPU time minus those stages: Python start-up and the driver, plus "
                "everything else the build runs (make, configure, the linker). Stage times are "
                "wall-clock inside each mlcc process: on a loaded machine they include waiting "
                "for a CPU, and the overhead then comes out too small, even negative.", ""]
        out += _md_table(TIME_HEADER, time_rows(section))
        speed = results.get("driver_speed")
        out += ["", time_verdict(section["total"], startup_cost(speed), section["mode"],
                                 interpreter_cost(speed)), ""]
    speed = results.get("driver_speed")
    if speed:
        out += ["## Driver speed", "",
                f"`{speed.get('command', 'mlcc-tool bench --driver-speed')}`, {speed['date']}, "
                f"load average {' / '.join(map(str, speed['loadavg_before']))}. "
                "`-Oz -c` of one file, median of the runs (tiny.c: "
                f"{speed['files'].get('tiny.c', {}).get('runs', '?')}, sqlite3.c: "
                f"{speed['files'].get('sqlite3.c', {}).get('runs', '?')}), the variants interleaved. "
                "*python alone* is the interpreter that runs `mlcc` starting and exiting "
                "(`python -c pass`, with this installation's site-packages); "
                "*mlcc disabled* is Python start-up and `exec` of clang; *no cache* "
                "(`-fmlcc-no-cache`) runs every stage; *warm cache* finds the target options, the "
                "decision and the finished object in the cache: only the front end runs. "
                "Stage columns are mlcc's own timings; *overhead* is wall minus the stages "
                "(start-up, imports, planning, moving the output).", ""]
        out += _md_table(DRIVER_HEADER, driver_rows(speed), left=2)
        out += [""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{title}]({path})" for title, path in plots.items()]
        out += [""]
    out += ["## Reproduce", "",
            "```sh",
            "make bench                        # full profile: every project, -Oz and -Os, single-shot, trials, warm rebuild",
            "mlcc-tool bench --profile quick   # three small projects, -Oz single-shot and warm rebuild",
            "mlcc-tool bench --driver-speed    # the driver alone, tiny file and sqlite3.c",
            "```", "",
            "Results accumulate in `bench-results.json` (`--json PATH`); an interrupted run "
            "resumes there (`--fresh` starts over). Sources are Debian source packages cached in "
            "`$MLCC_TEST_CACHE` (default `~/.cache/mlcc/test-sources`).", ""]
    return "\n".join(out)


PLOT_FILES = {"gain": "bench-gain.png", "files": "bench-file-gains.png",
              "time": "bench-time.png", "driver": "bench-driver.png"}


def write_plots(sections: list[dict], speed: dict | None, directory: Path) -> dict[str, Path]:
    """PNG plots of the summary; returns {title: path}. Needs matplotlib (mlcc[learn])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    sections = [s for s in sections if s["total"].get("projects")]
    if sections:
        names = [n for n in sections[0]["rows"]]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(names) + 2), 4))
        width = 0.8 / len(sections)
        for i, s in enumerate(sections):
            values = [s["rows"][n].get("artifact_gain") or 0.0 for n in names]
            xs = [j + i * width for j in range(len(names))]
            ax.bar(xs, values, width, label=f"{s['level']} {MODE_TITLES[s['mode']]}")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=30, ha="right")
        ax.set_ylabel("% smaller than clang-19")
        ax.set_title("Linked size gain per project (.text+.data+.rodata)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / PLOT_FILES["gain"]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written["size gain per project"] = path

        fig, ax = plt.subplots(figsize=(7, 4))
        every = [abs(g) for s in sections for g in s["total"]["file_gains"]]
        hi = min(max(max(every, default=0.0), 0.5), 10.0)  # the range the gains span, at most ±10%
        step = 2 * hi / 40
        bins = [-hi - step / 2 + k * step for k in range(42)]  # a bin centred on 0
        for s in sections:
            gains = [min(max(g, -hi), hi) for g in s["total"]["file_gains"]]
            ax.hist(gains, bins=bins, histtype="step", linewidth=1.5,
                    label=f"{s['level']} {MODE_TITLES[s['mode']]} ({len(gains)} files)")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"% smaller than clang-19 (clipped to ±{hi:.3g}%)")
        ax.set_ylabel("object files")
        ax.set_title("Per-file size gain")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / PLOT_FILES["files"]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written["distribution of per-file gains"] = path

        s = sections[0]
        rows = [(n, r) for n, r in s["rows"].items() if r["ok"]]
        fig, ax = plt.subplots(figsize=(10, max(3.0, 0.8 * len(rows) + 1.5)))
        ys = list(range(len(rows)))
        ax.barh([y - 0.27 for y in ys], [r["clang_cpu"] for _, r in rows], 0.26, color="0.65",
                label="clang build, CPU")
        ax.barh(ys, [r["mlcc_cpu"] for _, r in rows], 0.26, color="0.3", label="mlcc build, CPU")
        left = [0.0] * len(rows)
        for stage in STAGES:
            values = [r["breakdown"][stage] for _, r in rows]
            if not any(values):
                continue
            ax.barh([y + 0.27 for y in ys], values, 0.26, left=left,
                    label=f"mlcc {STAGE_TITLES[stage]} (wall in mlcc)")
            left = [a + b for a, b in zip(left, values)]
        ax.set_yticks(ys, [n for n, _ in rows])
        ax.invert_yaxis()
        ax.set_xlabel("seconds (whole build; mlcc stages summed over units)")
        ax.set_title(f"Build time, {s['level']} {MODE_TITLES[s['mode']]}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = directory / PLOT_FILES["time"]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written["build time breakdown"] = path
    if speed:
        labels = [label for label, _ in _by_size(speed["files"])]
        fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 3.8))
        for ax, label in zip(axes if len(labels) > 1 else [axes], labels):
            variants = speed["files"][label]["variants"]
            names = [n for n in DRIVER_VARIANTS if n in variants]
            ax.bar(names, [variants[n]["wall"] for n in names], color="0.7", label="wall")
            ax.bar(names, [variants[n]["cpu"] for n in names], 0.4, label="CPU")
            ax.set_title(f"{label}: -Oz -c, median")
            ax.set_ylabel("seconds")
            ax.tick_params(axis="x", labelrotation=20)
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = directory / PLOT_FILES["driver"]
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written["driver speed"] = path
    return written


# --------------------------------------------------------------------------- the command


def _print_tables(console, sections: list[dict], speed: dict | None) -> None:
    from rich.table import Table

    for section in sections:
        title = f"{section['level']}, {MODE_TITLES[section['mode']]}"
        table = Table(title=f"Size: mlcc against clang-19, {title}")
        for i, h in enumerate(SIZE_HEADER):
            table.add_column(h, justify="right" if i > 1 else "left")
        rows = size_rows(section)
        for i, row in enumerate(rows):
            table.add_row(*row, end_section=(i == len(rows) - 2 and bool(section["total"].get("projects"))))
        console.print(table)
        for line in (file_gain_line(section["total"]), choice_line(section)):
            if line:
                console.print(line)
        for name, r in section["rows"].items():
            if not r["ok"]:
                console.print(f"[red]{name} failed:[/] {(r['error'] or '').strip()[-2000:]}")
        table = Table(title=f"Build time (CPU) and mlcc's stages, {title}")
        for i, h in enumerate(TIME_HEADER):
            table.add_column(h, justify="right" if i else "left")
        for row in time_rows(section):
            table.add_row(*row)
        console.print(table)
        console.print(time_verdict(section["total"], startup_cost(speed), section["mode"],
                                   interpreter_cost(speed)))
    if speed:
        table = Table(title="Driver speed: -Oz -c, median")
        for i, h in enumerate(DRIVER_HEADER):
            table.add_column(h, justify="right" if i > 1 else "left")
        for row in driver_rows(speed):
            table.add_row(*row)
        console.print(table)


def _units_so_far(log: Path | None) -> int | None:
    """Lines in a build's MLCC_LOG so far (one per mlcc command)."""
    if log is None:
        return None
    try:
        with open(log, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def _UnitsColumn():
    """A progress column with the number of mlcc commands the current build has run."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class UnitsColumn(ProgressColumn):
        def render(self, task) -> Text:
            n = _units_so_far(task.fields.get("log"))
            return Text("" if n is None else f"{n} mlcc commands", style="dim")

    return UnitsColumn()


def _kill_children() -> None:
    """End the build still running after Ctrl-C (it runs in its own session, out of the
    terminal's reach): our direct children and their process groups, by id."""
    import signal

    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            try:
                os.killpg(int(entry), signal.SIGTERM)
            except OSError:
                pass


def default_markdown() -> Path:
    return REPO / "docs" / "BENCHMARKS.md" if (REPO / "docs").is_dir() else Path("BENCHMARKS.md")


def report_profile(results: dict) -> str:
    """The profile of the results file's last build (quick when it has none): what a
    report or a driver-speed run covers unless told otherwise."""
    builds = [i for i in results.get("invocations", []) if i.get("kind") == "build"]
    return builds[-1].get("profile", "quick") if builds else "quick"


def run(*, profile_name: str | None = None, only: Sequence[str] = (), json_path: Path = Path("bench-results.json"),
        markdown: Path | None = None, plots_dir: Path | None = None, workdir: Path | None = None,
        jobs: int = 2, fresh: bool = False, redo: Sequence[str] = (), speed: bool = False,
        report_only: bool = False, write_docs: bool = True, command: str = "") -> int:
    """The `mlcc-tool bench` command; returns 1 if a build failed, else 0."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    console = Console()
    if not console.is_terminal:  # a log file: room for the whole table
        console = Console(width=200)
    projects = load_projects()
    check_not_in_corpus(projects, corpus_packages())
    markdown = markdown or default_markdown()
    plots_dir = plots_dir or markdown.parent / "img"
    workdir = (workdir or Path(os.environ.get("MLCC_DATA") or Path.home() / ".cache" / "mlcc") / "bench")
    json_path = Path(json_path)

    if not report_only:
        byte_compile_mlcc()
    identity = environment_identity()
    results, note = load_results(json_path, identity, fresh)
    if note:
        console.print(f"[dim]{note}[/]")
    if profile_name is None:
        profile_name = report_profile(results) if (report_only or speed) else "quick"
    profile = PROFILES[profile_name]
    selected = select_projects(projects, profile, only)
    kind = "report" if report_only else "driver-speed" if speed else "build"
    invocation = {"kind": kind, "command": command, "profile": profile.name, "date": _now(), "jobs": jobs,
                  "machine": machine(), "git": git_revision()}
    results["invocations"].append(invocation)

    if not report_only and not speed:
        configs = configs_for(profile.levels, profile.modes)
        unknown = set(redo) - {c.label for c in configs}
        if unknown:
            raise MlccError(f"--redo: no configuration {', '.join(sorted(unknown))} in the "
                            f"{profile.name} profile ({', '.join(c.label for c in configs)})")
        todo = [(p, c) for p in selected for c in configs
                if c.label in redo or not results["runs"].get(c.key(p.name), {}).get("ok")]
        done_before = len(selected) * len(configs) - len(todo)
        console.print(f"{len(selected)} projects × {len(configs)} builds "
                      f"({', '.join(c.label for c in configs)}): {len(todo)} to build"
                      + (f", {done_before} from {json_path}" if done_before else ""))
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), _UnitsColumn(), console=console,
                      refresh_per_second=2) as bar:
            task = bar.add_task("building", total=len(todo), log=None)
            for project, config in todo:
                tree = workdir / project.name / BUILD_TREE
                target = workdir / project.name / config.dirname()
                bar.update(task, description=f"{project.name}: {config.label}",
                           log=tree / "mlcc.log" if config.compiler == "mlcc" else None)
                try:
                    record = build(project, config, tree, jobs)
                except KeyboardInterrupt:
                    _kill_children()
                    raise
                shutil.rmtree(target, ignore_errors=True)
                if tree.exists():
                    tree.rename(target)
                    record["workdir"] = str(target)
                results["runs"][config.key(project.name)] = record
                save_results(json_path, results)
                status = ("[green]ok[/]" if record["ok"] else "[red]failed[/]")
                bar.console.print(f"{project.name:14} {config.label:22} {status} "
                                  f"{fmt_seconds(record.get('wall'))} wall, "
                                  f"{fmt_seconds(record.get('cpu'))} CPU")
                bar.advance(task)
    if speed:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("driver speed")
            result = driver_speed(profile.runs_tiny, profile.runs_large, workdir / "driver-speed",
                                  lambda msg: bar.update(task, description=msg))
        result["command"] = command
        results["driver_speed"] = result
    invocation["loadavg_end"] = _loadavg()
    save_results(json_path, results)

    sections = summarize(results["runs"], selected, profile.levels, profile.modes)
    if speed and not any(s["total"].get("projects") for s in sections):
        sections = []
    failed = any(not r["ok"] for s in sections for r in s["rows"].values())
    _print_tables(console, sections, results.get("driver_speed"))
    console.print(f"results: {json_path}")
    if write_docs:
        plots = {}
        try:
            written = write_plots(sections, results.get("driver_speed"), plots_dir)
            plots = {t: os.path.relpath(p, markdown.parent) for t, p in written.items()}
        except ImportError:
            console.print("[yellow]matplotlib is missing (pip install -e '.[learn]'): no plots[/]")
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render_markdown(results, sections, plots))
        console.print(f"wrote {markdown}" + (f" and {len(plots)} plots in {plots_dir}" if plots else ""))
    return 1 if failed else 0
