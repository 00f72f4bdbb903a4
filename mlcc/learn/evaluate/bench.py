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

The projects and one build are `bench_builds`, what a build measures
`bench_measure`, the summaries, Markdown and plots `bench_report`; this module
is the command: the results file and the builds it still lacks. The same
projects for other targets (`--profile cross`) are `bench_cross`, whose section
of docs/BENCHMARKS.md this command keeps when it writes the page.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlcc
from mlcc import __version__
from mlcc.errors import MlccError
from mlcc.learn.evaluate import bench_repeats, readme_headline
from mlcc.learn.evaluate.bench_builds import (BUILD_TREE, LEVELS, MODE_TITLES, PROFILES, build,
                                              check_not_in_corpus,
                                              configs_for, corpus_packages, load_projects,
                                              select_projects)
from mlcc.learn.evaluate.bench_measure import driver_speed, loadavg, now_utc
from mlcc.learn.evaluate.bench_report import (CROSS_PLOT_TITLES, PLOT_FILES, cross_lines, fmt_seconds,
                                              print_tables, render_markdown, summarize, summarize_cross,
                                              write_plots)
from mlcc.learn.paths import REPO

RESULTS_FORMAT = 1


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
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "loadavg": loadavg(),
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


# --------------------------------------------------------------------------- the command


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


# The results of the last full run live beside the report made from them, so that
# `mlcc-tool bench --report` rewrites the docs and the README from any checkout.
DEFAULT_RESULTS = REPO / "docs" / "bench-results.json"
# ... and those of the cross profile (bench_cross.py), whose section the page keeps.
DEFAULT_CROSS_RESULTS = REPO / "docs" / "bench-cross-results.json"


def cross_section(projects) -> list[str] | None:
    """The cross profile's section of the page, from its committed results (None without them)."""
    try:
        results = json.loads(DEFAULT_CROSS_RESULTS.read_text())
    except (OSError, ValueError):
        return None
    img = default_markdown().parent / "img"
    plots = {title: f"img/{name}" for title, name in CROSS_PLOT_TITLES.items() if (img / name).exists()}
    return cross_lines(results, summarize_cross(results.get("runs", {}), projects), plots)


def write_readme_headline(results: dict, sections: list[dict], written: dict[str, Path]) -> bool:
    """The README's headline table and gain plot from these results (README.md in the
    repository, between its markers); False when there is no such README."""
    builds = [i for i in results.get("invocations", []) if i.get("kind") == "build"]
    gain_plot = next((p for p in written.values() if p.name == PLOT_FILES["gain"]), None)
    plot = os.path.relpath(gain_plot, REPO) if gain_plot else None
    repeats = max((bench_repeats.count(r) for r in results.get("runs", {}).values()), default=1)
    lines = readme_headline.render(sections, MODE_TITLES, builds[-1] if builds else {}, plot, repeats)
    return readme_headline.update(REPO / "README.md", lines)


def report_profile(results: dict) -> str:
    """The profile of the results file's last build (quick when it has none): what a
    report or a driver-speed run covers unless told otherwise."""
    builds = [i for i in results.get("invocations", []) if i.get("kind") == "build"]
    return builds[-1].get("profile", "quick") if builds else "quick"


def run(*, profile_name: str | None = None, only: Sequence[str] = (), json_path: Path = DEFAULT_RESULTS,
        markdown: Path | None = None, plots_dir: Path | None = None, workdir: Path | None = None,
        jobs: int = 2, fresh: bool = False, redo: Sequence[str] = (), repeat: int = 1, speed: bool = False,
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
    invocation = {"kind": kind, "command": command, "profile": profile.name, "date": now_utc(), "jobs": jobs,
                  "machine": machine(), "git": git_revision()}
    results["invocations"].append(invocation)

    if not report_only and not speed:
        configs = configs_for(profile.levels, profile.modes)
        unknown = set(redo) - {c.label for c in configs}
        if unknown:
            raise MlccError(f"--redo: no configuration {', '.join(sorted(unknown))} in the "
                            f"{profile.name} profile ({', '.join(c.label for c in configs)})")
        # how many builds each (project, configuration) gets: a configuration in `redo`
        # `repeat` new ones, any other as many as it lacks of `repeat` (bench_repeats)
        pairs = [(p, c) for p in selected for c in configs]
        plan = [repeat if c.label in redo
                else max(0, repeat - bench_repeats.count(results["runs"].get(c.key(p.name))))
                for p, c in pairs]
        # round by round, so that the runs of one configuration are spread over the whole
        # invocation and clang's and mlcc's builds of a project stay side by side
        todo = [pair for r in range(max(plan, default=0)) for pair, n in zip(pairs, plan) if n > r]
        done_before = plan.count(0)
        console.print(f"{len(selected)} projects × {len(configs)} builds "
                      f"({', '.join(c.label for c in configs)}): {len(todo)} to build"
                      + (f", {repeat} runs each" if repeat > 1 else "")
                      + (f", {done_before} from {json_path}" if done_before else ""))
        fresh_here: set[str] = set()  # keys whose earlier runs `redo` discards
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
                key = config.key(project.name)
                earlier = results["runs"].get(key)
                if config.label in redo and key not in fresh_here:
                    earlier = None
                fresh_here.add(key)
                if repeat > 1:
                    record = bench_repeats.fold(earlier, record)
                results["runs"][key] = record
                save_results(json_path, results)
                status = ("[green]ok[/]" if record["ok"] else "[red]failed[/]")
                runs = record.get("repeats", [])
                bar.console.print(f"{project.name:14} {config.label:22} {status} "
                                  f"{fmt_seconds(runs[-1]['wall'] if runs else record.get('wall'))} wall, "
                                  f"{fmt_seconds(runs[-1]['cpu'] if runs else record.get('cpu'))} CPU"
                                  + (f" (run {len(runs)}; median {fmt_seconds(record['cpu'])} CPU)"
                                     if len(runs) > 1 else "")
                                  + (f" [yellow]sizes changed: {', '.join(record['sizes_differ'][:3])}[/]"
                                     if record.get("sizes_differ") else ""))
                bar.advance(task)
    if speed:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("driver speed")
            result = driver_speed(profile.runs_tiny, profile.runs_large, workdir / "driver-speed",
                                  lambda msg: bar.update(task, description=msg))
        result["command"] = command
        results["driver_speed"] = result
    invocation["loadavg_end"] = loadavg()
    save_results(json_path, results)

    sections = summarize(results["runs"], selected, profile.levels, profile.modes)
    if speed and not any(s["total"].get("projects") for s in sections):
        sections = []
    failed = any(not r["ok"] for s in sections for r in s["rows"].values())
    print_tables(console, sections, results.get("driver_speed"))
    console.print(f"results: {json_path}")
    if write_docs:
        plots, written = {}, {}
        try:
            written = write_plots(sections, results.get("driver_speed"), plots_dir)
            plots = {t: os.path.relpath(p, markdown.parent) for t, p in written.items()}
        except ImportError:
            console.print("[yellow]matplotlib is missing (pip install -e '.[learn]'): no plots[/]")
        markdown.parent.mkdir(parents=True, exist_ok=True)
        cross = cross_section(projects) if markdown == default_markdown() else None
        markdown.write_text(render_markdown(results, sections, plots, cross))
        console.print(f"wrote {markdown}" + (f" and {len(plots)} plots in {plots_dir}" if plots else ""))
        if markdown == default_markdown() and write_readme_headline(results, sections, written):
            console.print(f"wrote the headline of {REPO / 'README.md'}")
    return 1 if failed else 0
