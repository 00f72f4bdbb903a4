"""LTO builds of bench projects, clang-19 against mlcc: linked sizes and build cost.

    python -m mlcc.learn.evaluate lto [--project lua ...] [--kind full --kind thin]

Each project of mlcc/learn/data/bench-projects.toml named here is built with its own
build system at -Oz with `-flto=KIND -fuse-ld=lld` (on compile and link lines: the
level and flags go wherever the project takes its optimization flag, and into
LDFLAGS), once with clang-19 and once with mlcc single-shot, side by side. The
linked programs and libraries (the project's `artifacts`) are measured as the x86-64
bench measures them (.text+.data+.rodata), the project's own test runs on both
builds, and the build's CPU seconds are recorded. Results go to
docs/bench-lto-results.json (rewritten after each build: a stopped run resumes
where it stopped) and the table in docs/BENCHMARKS.md is written from them.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path

import click

from mlcc.errors import MlccError
from mlcc.learn.evaluate import bench_builds, projects as pj
from mlcc.learn.evaluate.bench_measure import children_cpu, sizes
from mlcc.learn.paths import REPO

RESULTS = REPO / "docs" / "bench-lto-results.json"
LEVEL = "-Oz"
# lua's own Makefile leaves CFLAGS off its link line and sets its own AR: its recipe
# links with its optimization flags (MYLDFLAGS) and archives with llvm-ar-19
# (mlcc/learn/evaluate/projects.py)
DEFAULT_PROJECTS = ("lua", "zlib", "cjson", "tinyxml2", "libyaml", "utf8proc")
KINDS = ("full", "thin")


# "mlcc-default": mlcc with its default pipeline forced on every unit and the link (what
# single-shot gives without the model's per-unit choice); "mlcc-trials": link-time trials
# (MLCC_TRIALS, as -fmlcc-trials: the units of an LTO build are single-shot, each LTO link
# is made with clang's own options, the default and the K-th trial set, the smallest kept)
COMPILERS = ("clang", "mlcc", "mlcc-default", "mlcc-trials")
TRIALS = bench_builds.MODES["trials"]


def build(project: bench_builds.Project, compiler: str, kind: str, workdir: Path, jobs: int) -> dict:
    """One LTO build of `project` with `compiler` (COMPILERS); its record."""
    run: dict = {"project": project.name, "compiler": compiler, "kind": kind, "ok": False, "error": None}
    mlcc = compiler.startswith("mlcc")
    config = bench_builds.Config("mlcc" if mlcc else "clang", LEVEL, "single" if mlcc else "-")
    try:
        cc, cxx = bench_builds.compilers(config)
        tarball = pj.fetch_source(project.package)
    except (MlccError, pj.FetchError) as exc:
        run["error"] = str(exc)
        return run
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    pj.extract_source(tarball, workdir / "src")
    flags, lto_env = pj.lto_settings(kind, LEVEL, mlcc=mlcc)
    env = {**pj.build_env(cc, cxx), **lto_env}
    if mlcc:
        pipeline = bench_builds.fixed_pipeline(LEVEL) if compiler == "mlcc-default" else ""
        mode = "trials" if compiler == "mlcc-trials" else "single"
        env = bench_builds.mlcc_environment(env, mode, workdir / "mlcc.log", workdir / "decisions", pipeline)
    opt = " ".join([LEVEL, *flags])
    b = pj.Build(workdir=workdir, cc=cc, cxx=cxx, opt=opt, jobs=jobs, log=workdir / "build.log", env=env)
    values = {"opt": opt, "jobs": str(jobs), "src": str(b.src), "build": str(b.builddir), "cc": cc, "cxx": cxx}
    start, start_cpu = time.monotonic(), children_cpu()
    try:
        bench_builds.run_build(project, b, values)
        run["wall"] = round(time.monotonic() - start, 2)
        run["cpu"] = round(children_cpu() - start_cpu, 2)
        run["artifacts"] = bench_builds.artifact_sizes(project, workdir)
        run["code"] = {path: sizes(workdir / path)[1] for path in run["artifacts"]}
        if project.recipe:
            pj.RECIPES[project.recipe].test(b)
            run["tested"] = True
        if compiler in ("mlcc", "mlcc-trials"):  # the link times: mlcc's links against clang's
            entries = _log_entries(workdir)
            run["lto_links"] = sum(e.get("path") == "lto-link" for e in entries)
            run["lto_units"] = sum(e.get("path") == "optimize" for e in entries)
            run["link_seconds"] = link_times(entries, env, cc, cxx)
        run["ok"] = True
    except pj.CommandError as exc:
        run["error"] = str(exc)[-2000:]
    return run


LINK_REPEATS = 3


def _log_entries(workdir: Path) -> list[dict]:
    log = (workdir / "mlcc.log").read_text(errors="replace").splitlines()
    return [json.loads(line) for line in log if line.strip()]


def retime_links(run: dict, workdir: Path, client: Path | None = None) -> None:
    """Time an mlcc build's LTO links again, in its kept tree (`--relink`); with the native
    client installed in `client` (`mlcc-tool install-client --bindir DIR`), through it."""
    cc, cxx = bench_builds.compilers(bench_builds.Config("mlcc", LEVEL, "single"))
    if client:
        cc, cxx = str(client / "mlcc"), str(client / "mlcc++")
    _, lto_env = pj.lto_settings(run["kind"], LEVEL, mlcc=True)
    env = bench_builds.mlcc_environment({**pj.build_env(cc, cxx), **lto_env}, "single",
                                        workdir / "mlcc.log", workdir / "decisions")
    run["link_seconds_client" if client else "link_seconds"] = link_times(_log_entries(workdir), env, cc, cxx)


def _knobbed_argv(entry: dict, env: dict[str, str]) -> list[str] | None:
    """The arguments mlcc's single-shot link hands clang for this `lto-link` entry (the
    user's and mlcc's options), or None when mlcc would make several (trials)."""
    import os

    from mlcc import lto, settings as settings_mod
    from mlcc.args import parse
    from mlcc.cache import DecisionCache
    from mlcc.toolchain import for_driver

    cmd = parse(entry["argv"], entry["driver"])
    here = os.getcwd()
    os.chdir(entry["cwd"])  # the link's triple is asked in its directory
    try:
        links = lto.link_argvs(list(entry["argv"]), cmd, lto.kind(cmd), settings_mod.load({}, env),
                               for_driver(entry["driver"]), DecisionCache(env["MLCC_CACHE"]))
    finally:
        os.chdir(here)
    return links[0][1] if len(links) == 1 else None


def link_times(entries: list[dict], env: dict[str, str], cc: str, cxx: str) -> dict:
    """Seconds of the build's LTO links (its MLCC_LOG `lto-link` lines) made again on the
    same objects by mlcc, by clang-19, and (single-shot) by clang-19 with the options mlcc
    adds (what lld's knobbed pipeline costs by itself), alternating: wall and CPU (user +
    system of the processes), the median of LINK_REPEATS each, summed over the links; the
    decision cache is the build's (warm)."""
    import resource
    import subprocess

    from mlcc.toolchain import find

    def timed(argv: list[str], cwd: str) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=quiet, capture_output=True, check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    quiet = {**env, "MLCC_LOG": ""}
    names = ("mlcc", "clang", "options")
    totals = {**{n: 0.0 for n in names}, **{f"cpu_{n}": 0.0 for n in names}, "links": 0, "options_links": 0}
    # a link that also compiled sources would time their compiles too: links of objects only
    for entry in (e for e in entries if e.get("path") == "lto-link" and not e.get("with_sources")):
        cxx_link = entry.get("driver") == "c++"
        clang = find("clang++" if cxx_link else "clang")
        commands = {"mlcc": [cxx if cxx_link else cc, *entry["argv"]], "clang": [clang, *entry["argv"]]}
        times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        try:
            knobbed = _knobbed_argv(entry, quiet)
            if knobbed is not None:
                commands["options"] = [clang, *knobbed]
            for _ in range(LINK_REPEATS):
                for name, argv in commands.items():
                    times[name].append(timed(argv, entry["cwd"]))
        except (OSError, subprocess.CalledProcessError):
            continue  # a configure probe's link, whose directory is gone: not the project's
        for name in commands:
            totals[name] += statistics.median(w for w, _ in times[name])
            totals[f"cpu_{name}"] += statistics.median(c for _, c in times[name])
        totals["links"] += 1
        totals["options_links"] += "options" in commands
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in totals.items()}


BENCHMARKS = REPO / "docs" / "BENCHMARKS.md"
START = "<!-- lto-table: written by `python -m mlcc.learn.evaluate lto`; rerun it, do not edit -->"
END = "<!-- /lto-table -->"


def write_table(rows: list[str], path: Path = BENCHMARKS, start: str = START, end: str = END) -> None:
    """Put `rows` between a table's markers (the LTO table's by default) in docs/BENCHMARKS.md."""
    text = path.read_text()
    before, _, rest = text.partition(start)
    _, found, after = rest.partition(end)
    if not found:
        raise click.ClickException(f"{path} has no {start} ... {end} section")
    path.write_text(before + start + "\n" + "\n".join(rows) + "\n" + end + after)


def load() -> list[dict]:
    try:
        return json.loads(RESULTS.read_text())["runs"]
    except (OSError, ValueError, KeyError):
        return []


def save(runs: list[dict]) -> None:
    RESULTS.write_text(json.dumps({"level": LEVEL, "runs": runs}, indent=1) + "\n")


def _gain(clang: float, mlcc: float) -> float:
    return 100 * (1 - mlcc / clang)


def table(runs: list[dict]) -> list[str]:
    """Markdown: per project and kind, linked bytes of clang-19 and mlcc, the gain, build
    CPU, link time and tests; then per kind the total gain, the geometric mean of the
    per-project gains, the code-bytes gain, and the programs and libraries larger than
    clang's; and mlcc with its default on every unit, where built."""
    rows = ["| project | LTO | clang-19 bytes | mlcc bytes | gain | default on every unit | "
            f"link trials (MLCC_TRIALS={TRIALS}) | "
            "build CPU mlcc/clang | link time mlcc/clang (median of 3) | tests |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    by = {(r["project"], r["kind"], r["compiler"]): r for r in runs if r["ok"]}
    summary = {k: {"clang": 0, "mlcc": 0, "code_clang": 0, "code_mlcc": 0, "ratios": [], "larger": 0,
                   "files": 0, "default": [0, 0], "links": {}, "client": [0.0, 0.0],
                   "trials": [0, 0], "trial_ratios": [], "trial_larger": 0, "trial_links": [0.0, 0.0]}
               for k in KINDS}
    for project in dict.fromkeys(r["project"] for r in runs):
        for kind in KINDS:
            clang, mlcc = by.get((project, kind, "clang")), by.get((project, kind, "mlcc"))
            if not clang or not mlcc:
                continue
            c, m = sum(clang["artifacts"].values()), sum(mlcc["artifacts"].values())
            total = summary[kind]
            total["clang"] += c
            total["mlcc"] += m
            total["ratios"].append(m / c)
            if "code" in clang and "code" in mlcc:
                total["code_clang"] += sum(clang["code"].values())
                total["code_mlcc"] += sum(mlcc["code"].values())
            for path, size in clang["artifacts"].items():
                total["files"] += 1
                total["larger"] += mlcc["artifacts"].get(path, 0) > size
            fixed = by.get((project, kind, "mlcc-default"))
            default = "-"
            if fixed:
                d = sum(fixed["artifacts"].values())
                default = f"{_gain(c, d):+.2f} %"
                total["default"][0] += c
                total["default"][1] += d
            trials = _trials_column(by.get((project, kind, "mlcc-trials")), clang, c, total)
            links = mlcc.get("link_seconds") or {}
            if links.get("clang"):
                for key, value in links.items():
                    total["links"][key] = total["links"].get(key, 0) + value
            client = mlcc.get("link_seconds_client") or {}
            if client.get("clang"):
                total["client"][0] += client["mlcc"]
                total["client"][1] += client["clang"]
            link = (f"{links['mlcc']:.2f} s / {links['clang']:.2f} s = {links['mlcc'] / links['clang']:.2f}x"
                    if links.get("clang") else "-")
            tested = "passed" if mlcc.get("tested") else "-"
            rows.append(f"| {project} | {kind} | {c:,} | {m:,} | {_gain(c, m):+.2f} % | {default} | {trials} | "
                        f"{mlcc['cpu'] / clang['cpu']:.2f}x | {link} | {tested} |")
    rows += ["", "| LTO | total bytes gain | geometric mean of per-project gains | code bytes gain | "
                 "programs and libraries larger than clang's | default on every unit, total | "
                 "link time, all links, mlcc/clang: wall (CPU) | clang with mlcc's link options/clang: "
                 "wall (CPU) | the same through the native client |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, t in summary.items():
        if not t["clang"]:
            continue
        geomean = 100 * (1 - statistics.geometric_mean(t["ratios"]))
        code = f"{_gain(t['code_clang'], t['code_mlcc']):+.2f} %" if t["code_clang"] else "-"
        default = f"{_gain(*t['default']):+.2f} %" if t["default"][0] else "-"
        client = (f"{t['client'][0]:.2f} s / {t['client'][1]:.2f} s = {t['client'][0] / t['client'][1]:.2f}x"
                  if t["client"][1] else "-")
        rows.append(f"| {kind} | {_gain(t['clang'], t['mlcc']):+.2f} % | {geomean:+.2f} % | {code} | "
                    f"{t['larger']} of {t['files']} | {default} | {_link_ratio(t['links'], 'mlcc')} | "
                    f"{_link_ratio(t['links'], 'options')} | {client} |")
    if any(t["trials"][0] for t in summary.values()):
        rows += ["", f"| LTO, link trials (MLCC_TRIALS={TRIALS}) | total bytes gain | geometric mean of "
                 "per-project gains | programs and libraries larger than clang's | link time, all links, "
                 "mlcc/clang |", "| --- | ---: | ---: | ---: | ---: |"]
        for kind, t in summary.items():
            if not t["trials"][0]:
                continue
            geomean = 100 * (1 - statistics.geometric_mean(t["trial_ratios"]))
            m, c = t["trial_links"]
            link = f"{m:.2f} s / {c:.2f} s = {m / c:.2f}x" if c else "-"
            rows.append(f"| {kind} | {_gain(*t['trials']):+.2f} % | {geomean:+.2f} % | "
                        f"{t['trial_larger']} of {t['files']} | {link} |")
    return rows


def _link_ratio(links: dict, name: str) -> str:
    """`name`'s links against clang's: wall seconds, and the CPU ratio where measured."""
    if not links.get(name) or not links.get("clang"):
        return "-"
    text = f"{links[name]:.2f} s / {links['clang']:.2f} s = {links[name] / links['clang']:.2f}x"
    if links.get(f"cpu_{name}") and links.get("cpu_clang"):
        text += f" ({links[f'cpu_{name}'] / links['cpu_clang']:.2f}x)"
    return text


def _trials_column(trials: dict | None, clang: dict, clang_bytes: int, total: dict) -> str:
    """A project's link-trials gain for its row, added into the kind's `total`."""
    if not trials:
        return "-"
    t = sum(trials["artifacts"].values())
    total["trials"][0] += clang_bytes
    total["trials"][1] += t
    total["trial_ratios"].append(t / clang_bytes)
    total["trial_larger"] += sum(trials["artifacts"].get(path, 0) > size
                                 for path, size in clang["artifacts"].items())
    links = trials.get("link_seconds") or {}
    if links.get("clang"):
        total["trial_links"][0] += links["mlcc"]
        total["trial_links"][1] += links["clang"]
    return f"{_gain(clang_bytes, t):+.2f} %"


@click.command()
@click.option("--project", "names", multiple=True, help="bench projects to build (default: "
              + ", ".join(DEFAULT_PROJECTS) + ")")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="LTO kinds (default: both)")
@click.option("--workdir", type=click.Path(path_type=Path), default=REPO / "build" / "bench-lto")
@click.option("--jobs", default=2, show_default=True)
@click.option("--again", is_flag=True, help="rebuild what the results file already has")
@click.option("--with-default", is_flag=True,
              help="also build with mlcc's default pipeline forced on every unit and the link")
@click.option("--trials", "link_trials", is_flag=True,
              help=f"also build with link-time trials (MLCC_TRIALS={TRIALS}, as -fmlcc-trials={TRIALS})")
@click.option("--relink", is_flag=True, help="only time the kept mlcc builds' links again")
@click.option("--client", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="with --relink: through the native client installed in this directory")
def main(names, kinds, workdir: Path, jobs: int, again: bool, with_default: bool, link_trials: bool,
         relink: bool, client: Path | None) -> None:
    """Build bench projects with -Oz -flto / -flto=thin through clang-19 and mlcc; compare."""
    chosen = names or DEFAULT_PROJECTS
    found = {p.name: p for p in bench_builds.load_projects()}
    runs = [] if again else load()
    if relink:
        for run in runs:
            if run["ok"] and run["compiler"] == "mlcc" and run["project"] in chosen:
                retime_links(run, workdir / f"{run['project']}-{run['kind']}-mlcc", client)
                save(runs)
                click.echo(f"{run['project']} {run['kind']}: links "
                           f"{run['link_seconds_client' if client else 'link_seconds']}")
        chosen = ()
    done = {(r["project"], r["kind"], r["compiler"]) for r in runs if r["ok"]}
    for name in chosen:
        for kind in kinds or KINDS:
            for compiler in (c for c in COMPILERS if (c != "mlcc-default" or with_default)
                             and (c != "mlcc-trials" or link_trials)):
                if (name, kind, compiler) in done:
                    continue
                record = build(found[name], compiler, kind, workdir / f"{name}-{kind}-{compiler}", jobs)
                runs = [r for r in runs if (r["project"], r["kind"], r["compiler"]) != (name, kind, compiler)]
                runs.append(record)
                save(runs)
                click.echo(f"{name} {kind} {compiler}: " + ("ok" if record["ok"] else f"failed: {record['error'][-300:]}"))
    rows = table(runs)
    click.echo("\n".join(rows))
    write_table(rows)
