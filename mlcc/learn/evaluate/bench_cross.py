"""The bench projects for other targets (`mlcc-tool bench --profile cross`).

mlcc against clang-19 at -Oz, side by side in one run, in two suites:

- *objects*, for the bare-metal targets (thumbv7m, thumbv6m, riscv32: nothing
  to link against). Each project is built once for x86-64 with its own build
  system by mlcc, whose `MLCC_LOG` names every unit it compiled (argv, cwd,
  source, driver). Each logged compile then runs again in its build
  directory for each target (`targets.Target.retarget`; the output and the
  dependency-file flags dropped with `corpus/derive.py`'s helpers, `-o` into
  a directory of this run's own), once with clang-19 and once with mlcc, and
  the two object files are compared. The tree was configured for x86-64 Linux,
  so a unit that needs what the target's C library lacks fails: clang failing
  skips the unit for both compilers, and the skip is counted.
- *objects-trials* and *objects-search*: the same compiles with mlcc's
  `-fmlcc-trials=4` (`MLCC_TRIALS`) and `-fmlcc-search=20` (`MLCC_SEARCH`), clang
  compiled again beside them; the search (20 builds a unit) runs only when asked
  (`--cross-suite objects-search`).
- *objects-client*: the *objects* compiles with mlcc's native client and its warm
  compile server (`mlcc/client_build.py`, built for the run), which take Python's
  start-up and imports out of every compile (issue 26): the same objects, the CPU of
  the clients, the server and everything it ran counted as mlcc's.
- *linked*, for aarch64 Linux: the projects marked `cross_link` are built and
  linked with their own build system, the target's flags beside -Oz and lld as
  the linker, once with each compiler, and their programs and libraries are
  compared as the x86-64 bench compares them.

Results accumulate in `docs/bench-cross-results.json`, one entry per project,
target and suite, so that an interrupted run resumes where it stopped; the
summary and the section of docs/BENCHMARKS.md come from `bench_report`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlcc import args, targets
from mlcc.errors import ToolFailed
from mlcc.learn.corpus import derive
from mlcc.learn.evaluate import projects as pj
from mlcc.learn.evaluate.bench import (DEFAULT_CROSS_RESULTS, byte_compile_mlcc, default_markdown,
                                       git_revision, machine, save_results)
from mlcc.learn.evaluate.bench_builds import (PROFILES, Config, Project, build, check_not_in_corpus,
                                              compilers, corpus_packages, load_projects,
                                              mlcc_environment, native_client, select_projects)
from mlcc.learn.evaluate.bench_measure import (aggregate_log, find_objects, loadavg, now_utc,
                                               parse_log, sizes)
from mlcc.learn.evaluate.bench_report import (cross_lines, print_cross_tables, summarize_cross,
                                              write_cross_plots, write_cross_section)

CROSS_FORMAT = 1
LEVEL = "-Oz"
OBJECT_TARGETS = ("thumbv7m", "thumbv6m", "riscv32")
LINKED_TARGETS = ("aarch64",)
# The object suites: mlcc's settings beside clang, by suite (the K=4 trials and
# its 20-evaluation search per file). The search is run only when asked for.
OBJECT_SUITES = {"objects": {}, "objects-trials": {"MLCC_TRIALS": "4"},
                 "objects-search": {"MLCC_SEARCH": "20"}, "objects-client": {}}
# Suites whose mlcc is the native client (the compile server runs the driver)
CLIENT_SUITES = ("objects-client",)
DEFAULT_OBJECT_SUITES = ("objects", "objects-trials")
# Debian's aarch64 cross toolchain is installed without GNU ld: clang links with lld-19,
# which (unlike GNU ld) refuses a version script naming a symbol the build left out
# unless told not to (zlib's gz_intmax).
LINKER_FLAGS = ("-fuse-ld=lld", "-Wl,--undefined-version")
# A unit compiled for a 32-bit target warns where x86-64 did not (format strings,
# pointer casts): a project's -Werror must not turn that into a skipped unit.
NO_WARNINGS = "-w"
COMPILE_TIMEOUT = 1200
# e_machine of the linked suite's targets: a linked file must be the target's
ELF_MACHINES = {"aarch64": 183}
# The x86-64 build each project's units are logged from, under its work directory.
LOGGED_TREE = "x86_64"


# --------------------------------------------------------------------------- units of a logged build


@dataclasses.dataclass(frozen=True)
class Unit:
    """One compile an x86-64 build logged: where it ran, what it compiled, and its
    object's path relative to the build's work directory (what pairs files up)."""

    path: str
    cwd: str
    source: str
    driver: str
    argv: tuple[str, ...]


def units_from_log(log: Path, root: Path) -> list[Unit]:
    """The units mlcc compiled to object files in a build (its MLCC_LOG), once each, in order."""
    with open(log, errors="replace") as f:
        entries = parse_log(f)
    units: dict[str, Unit] = {}
    for e in entries:
        tiny = e.get("path") == "clang" and e.get("reason") == "tiny source"  # compiled by clang alone
        if not e.get("output") or not (tiny or (e.get("path") == "optimize" and e.get("size") is not None)):
            continue  # a pass-through command, or assembly output
        cwd = e.get("cwd") or str(root)
        path = os.path.relpath(os.path.normpath(os.path.join(cwd, e["output"])), root)
        # logs written before the driver was logged: the source's language decides
        driver = e.get("driver") or ("c++" if args.language_of(e["source"], None, "c") == "c++" else "c")
        units.setdefault(path, Unit(path, cwd, e["source"], driver, tuple(e["argv"])))
    return list(units.values())


def project_units(tree: Path) -> list[Unit]:
    """The units of the logged build in `tree` whose objects it left on disk: the project's
    own (configure and CMake probes left out, as the x86-64 bench leaves them out)."""
    on_disk = find_objects(tree)
    return [u for u in units_from_log(tree / "mlcc.log", tree) if u.path in on_disk]


def cross_command(unit: Unit, target: str) -> list[str]:
    """The unit's compile for `target`, the unit alone, without output or dependency files."""
    tokens = derive.derived_argv({"argv": list(unit.argv)}, "z", target)
    return [*derive.one_unit(tokens, unit.driver, unit.source), NO_WARNINGS]


def _first_error(exc: ToolFailed) -> str:
    lines = [line.strip() for line in exc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line]
    return ((errors or lines or [str(exc)])[0])[:300]


def run_timed(argv: list[str], cwd: str, env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    """Run one compile: its exit status (killed at `timeout` seconds), its stderr, and the
    CPU seconds it and the processes it waited for used (clang's cc1; mlcc's clang, opt
    and code generation)."""
    import signal
    import subprocess
    import tempfile
    import threading

    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return proc.returncode, stderr, usage.ru_utime + usage.ru_stime


def compile_units(units: Sequence[Unit], target: str, outdir: Path, jobs: int,
                  mlcc_env: dict[str, str], client: tuple[str, str] | None = None) -> dict:
    """Compile every unit for `target` with clang-19 and with mlcc (objects under `outdir`;
    mlcc is the native client `client` (C, C++) when given); the record of the
    (project, target) pair: sizes per compiler, skipped and failed units."""
    from mlcc.toolchain import find

    programs = {("clang", "c"): find("clang"), ("clang", "c++"): find("clang++")}
    programs[("mlcc", "c")], programs[("mlcc", "c++")] = client or compilers(Config("mlcc", LEVEL, "single"))
    env = {"clang": {k: v for k, v in mlcc_env.items() if not k.startswith("MLCC_")}, "mlcc": mlcc_env}
    commands: dict[str, tuple[Unit, list[str]]] = {}
    seen: set[tuple] = set()
    for unit in units:
        tokens = cross_command(unit, target)
        # libtool's PIC and non-PIC objects are the same compile once -fPIC is dropped
        if (unit.cwd, tuple(tokens)) not in seen:
            seen.add((unit.cwd, tuple(tokens)))
            commands[unit.path] = (unit, tokens)

    def compile_one(job: tuple[str, str]) -> tuple[str, str, tuple[int, int] | str, float]:
        path, compiler = job
        unit, tokens = commands[path]
        out = outdir / compiler / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        argv = [programs[(compiler, unit.driver)], *tokens, "-o", str(out)]
        try:
            code, stderr, cpu = run_timed(argv, unit.cwd, env[compiler], COMPILE_TIMEOUT)
        except OSError as exc:
            return path, compiler, str(exc), 0.0
        if code != 0:
            return path, compiler, _first_error(ToolFailed(argv, code, stderr)), cpu
        try:
            return path, compiler, sizes(out), cpu
        except (OSError, ValueError) as exc:
            return path, compiler, str(exc), cpu

    record: dict = {"units": len(units), "duplicates": len(units) - len(commands),
                    "clang": {"objects": {}, "code": {}}, "mlcc": {"objects": {}, "code": {}},
                    "skipped": {}, "mlcc_failed": {}}
    start = time.monotonic()
    jobs_ = [(path, compiler) for path in commands for compiler in ("clang", "mlcc")]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        outcomes = {(path, compiler): (result, cpu)
                    for path, compiler, result, cpu in pool.map(compile_one, jobs_)}
    for compiler in ("clang", "mlcc"):
        record[compiler]["cpu"] = 0.0  # CPU seconds of the paired units' compiles
    for path in commands:
        (clang, clang_cpu), (mlcc, mlcc_cpu) = outcomes[(path, "clang")], outcomes[(path, "mlcc")]
        if isinstance(clang, str):
            record["skipped"][path] = clang  # for both compilers alike
        elif isinstance(mlcc, str):
            record["mlcc_failed"][path] = mlcc
        else:
            for compiler, (total, code), cpu in (("clang", clang, clang_cpu), ("mlcc", mlcc, mlcc_cpu)):
                record[compiler]["objects"][path] = total
                record[compiler]["code"][path] = code
                record[compiler]["cpu"] += cpu
    for compiler in ("clang", "mlcc"):
        record[compiler]["cpu"] = round(record[compiler]["cpu"], 3)
    record["wall"] = round(time.monotonic() - start, 2)
    return record


# --------------------------------------------------------------------------- the suites of one project


def logged_build(project: Project, root: Path, jobs: int) -> dict:
    """Build `project` for x86-64 with mlcc in `root`/x86_64, its units logged; a summary."""
    tree = root / LOGGED_TREE
    record = build(project, Config("mlcc", LEVEL, "single"), tree, jobs)
    summary = {k: record.get(k) for k in ("ok", "error", "wall", "cpu", "date")}
    summary["workdir"] = str(tree)
    if record["ok"]:
        summary["units"] = len(project_units(tree))
    return summary


def object_suite(project: Project, tree: Path, target: str, root: Path, jobs: int,
                 suite: str = "objects") -> dict:
    """An object suite (OBJECT_SUITES) of one project for one target, from its logged
    x86-64 build `tree`."""
    run = {"project": project.name, "target": target, "suite": suite, "date": now_utc(),
           "ok": False, "error": None}
    units = project_units(tree)
    if not units:
        run["error"] = f"the x86-64 build logged no unit ({tree / 'mlcc.log'})"
        return run
    outdir = root / (target if suite == "objects" else f"{target}-{suite}")
    shutil.rmtree(outdir, ignore_errors=True)
    runtime = outdir / "run"
    runtime.mkdir(parents=True, mode=0o700)
    log = outdir / "mlcc.log"
    clang, clangxx = compilers(Config("clang", LEVEL))
    env = mlcc_environment(pj.build_env(clang, clangxx), "single", log, outdir / "decisions")
    env.update(XDG_RUNTIME_DIR=str(runtime), MLCC_SERVER_IDLE="600", **OBJECT_SUITES[suite])
    client = native_client() if suite in CLIENT_SUITES else None
    try:
        run.update(compile_units(units, target, outdir, jobs, env, client))
    finally:
        from mlcc import model_server
        servers = model_server.stop_all(str(runtime / "mlcc"))
    if "mlcc" in run:  # the servers' CPU is the build's too
        run["mlcc"]["cpu"] = round(run["mlcc"]["cpu"] + servers["cpu"], 3)
    if log.exists():
        with open(log, errors="replace") as f:
            summary = aggregate_log(parse_log(f))
        summary.pop("log_sizes")
        run["mlcc"]["log"] = summary
    run["ok"] = True
    return run


def _elf_machine(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def linked_suite(project: Project, target: str, root: Path, jobs: int) -> dict:
    """Build and link `project` for `target` with clang-19 and with mlcc (the same tree
    path for both, as the x86-64 bench does); the two build records."""
    t = targets.named(target)
    run: dict = {"project": project.name, "target": target, "suite": "linked", "date": now_utc()}
    tree = root / f"{target}-tree"
    for config in (Config("clang", LEVEL), Config("mlcc", LEVEL, "single")):
        record = build(project, config, tree, jobs, flags=t.flags, ldflags=LINKER_FLAGS)
        final = root / f"{target}-{config.compiler}"
        shutil.rmtree(final, ignore_errors=True)
        if tree.exists():
            tree.rename(final)
            record["workdir"] = str(final)
        if record["ok"]:
            wrong = [a for a in record["artifacts"] if _elf_machine(final / a) != ELF_MACHINES[target]]
            if wrong:
                record.update(ok=False, error=f"not built for {target}: {', '.join(wrong)}")
            else:
                record["artifact_code"] = {a: sizes(final / a)[1] for a in record["artifacts"]}
        record.pop("objects", None)  # the linked files are compared; the objects make the file long
        run[config.compiler] = record
    run["ok"] = run["clang"]["ok"] and run["mlcc"]["ok"]
    run["error"] = next((run[c]["error"] for c in ("clang", "mlcc") if run[c].get("error")), None)
    return run


# --------------------------------------------------------------------------- results file


def environment_identity() -> dict:
    """What the numbers depend on: the toolchain, and per target its flags, default, the
    default's code generation variants and the other pipelines single-shot builds
    (`also`), and trial sets (trials)."""
    from mlcc.learn.evaluate.bench import environment_identity as host_identity

    ident = {k: v for k, v in host_identity().items() if k != "model"}
    level = LEVEL[-1]
    ident["targets"] = {t.name: {"flags": list(t.flags), "drop": list(t.drop), "default": t.default(level),
                                 "codegen_variants": list(t.variants(level)),
                                 "also": list(t.also_built(level)),
                                 "trials": [list(s) for s in t.trial_sets(level)]}
                        for t in map(targets.named, (*OBJECT_TARGETS, *LINKED_TARGETS))}
    return ident


def stale_suites(old: dict | None, new: dict) -> set[str] | None:
    """The suites of one target that a change of its identity entry makes stale: None for
    all of them (flags or default). An entry recorded before the variants or trial sets
    were part of it had none and the trial sets of the day, respectively."""
    if old is None or any(old.get(k) != new[k] for k in ("flags", "drop", "default")):
        return None
    stale = set()
    if (old.get("codegen_variants", []) != new["codegen_variants"]
            or old.get("also", []) != new.get("also", [])):
        stale |= {"objects", "objects-client", "linked"}
    if "trials" in old and old["trials"] != new["trials"]:
        stale.add("objects-trials")
    return stale


def load_results(path: Path, identity: dict, fresh: bool) -> tuple[dict, str]:
    """The results file when it fits this setup (a target whose flags, default, variants or
    trial sets changed loses the runs they made), else a new one; and a note."""
    new = {"format": CROSS_FORMAT, "identity": identity, "invocations": [], "trees": {}, "runs": {}}
    if fresh or not path.exists():
        return new, ""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return new, f"ignoring unreadable {path} ({exc})"
    def toolchain(ident: dict) -> dict:
        return {k: v for k, v in ident.items() if k != "targets"}
    if old.get("format") != CROSS_FORMAT or toolchain(old.get("identity", {})) != toolchain(identity):
        return new, f"{path} was made with another mlcc or clang: starting afresh"
    before = old["identity"].get("targets", {})
    stale = {t: stale_suites(before.get(t), v) for t, v in identity["targets"].items()}

    def kept(run: dict) -> bool:
        suites = stale.get(run.get("target"), set())
        return suites is not None and run.get("suite") not in suites

    old["runs"] = {k: r for k, r in old["runs"].items() if kept(r)}
    old["identity"] = identity
    note = f"resuming from {path} ({sum(r.get('ok', False) for r in old['runs'].values())} runs)"
    redone = sorted(t if s is None else f"{t} ({', '.join(sorted(s))})" for t, s in stale.items() if s != set())
    if redone:
        note += f"; changed (flags, default, variants or trial sets), redone: {', '.join(redone)}"
    return old, note


def run_key(project: str, target: str, suite: str) -> str:
    return f"{project}|{target}|{suite}"


# --------------------------------------------------------------------------- the command


def cross_projects(projects: Sequence[Project], only: Sequence[str]) -> list[Project]:
    return select_projects(projects, PROFILES["full"], only)


def run(*, only: Sequence[str] = (), json_path: Path = DEFAULT_CROSS_RESULTS, markdown: Path | None = None,
        workdir: Path | None = None, jobs: int = 2, fresh: bool = False, report_only: bool = False,
        write_docs: bool = True, command: str = "", object_targets: Sequence[str] = OBJECT_TARGETS,
        linked_targets: Sequence[str] = LINKED_TARGETS,
        object_suites: Sequence[str] = DEFAULT_OBJECT_SUITES) -> int:
    """`mlcc-tool bench --profile cross`; returns 1 if a run failed, else 0."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    projects = load_projects()
    check_not_in_corpus(projects, corpus_packages())
    selected = cross_projects(projects, only)
    markdown = markdown or default_markdown()
    workdir = (workdir or Path(os.environ.get("MLCC_DATA") or Path.home() / ".cache" / "mlcc") / "bench") / "cross"
    json_path = Path(json_path)
    if not report_only:
        byte_compile_mlcc()
    results, note = load_results(json_path, environment_identity(), fresh)
    if note:
        console.print(f"[dim]{note}[/]")
    invocation = {"kind": "report" if report_only else "build", "command": command, "profile": "cross",
                  "date": now_utc(), "jobs": jobs, "machine": machine(), "git": git_revision()}
    results["invocations"].append(invocation)

    if not report_only:
        todo = [(p, t, s) for s in object_suites for p in selected for t in object_targets]
        todo += [(p, t, "linked") for p in selected if p.cross_link for t in linked_targets]
        todo = [(p, t, s) for p, t, s in todo if not results["runs"].get(run_key(p.name, t, s), {}).get("ok")]
        console.print(f"{len(selected)} projects; {len(todo)} (project, target, suite) runs to do")
        for project, target, suite in todo:
            root = workdir / project.name
            started = time.monotonic()
            if suite in OBJECT_SUITES:
                tree = _logged_tree(results, project, root, jobs, console)
                if tree is None:
                    record = {"project": project.name, "target": target, "suite": suite, "ok": False,
                              "error": results["trees"][project.name]["error"]}
                else:
                    record = object_suite(project, tree, target, root, jobs, suite)
            else:
                record = linked_suite(project, target, root, jobs)
            results["runs"][run_key(project.name, target, suite)] = record
            save_results(json_path, results)
            status = "[green]ok[/]" if record["ok"] else f"[red]failed[/] {(record.get('error') or '')[:200]}"
            extra = (f", {len(record['skipped'])} of {record['units'] - record['duplicates']} units skipped"
                     if suite in OBJECT_SUITES and record["ok"] else "")
            console.print(f"{project.name:14} {target:9} {suite:8} {status} "
                          f"({time.monotonic() - started:.0f} s{extra})")
    invocation["loadavg_end"] = loadavg()
    save_results(json_path, results)

    sections = summarize_cross(results["runs"], selected)
    print_cross_tables(console, sections)
    console.print(f"results: {json_path}")
    if write_docs:
        plots = {}
        try:
            written = write_cross_plots(sections, markdown.parent / "img")
            plots = {t: os.path.relpath(p, markdown.parent) for t, p in written.items()}
        except ImportError:
            console.print("[yellow]matplotlib is missing (pip install -e '.[learn]'): no plots[/]")
        write_cross_section(markdown, cross_lines(results, sections, plots))
        console.print(f"wrote the cross section of {markdown}" + (f" and {len(plots)} plots" if plots else ""))
    failed = any(not r["ok"] for s in sections for r in s["rows"].values())
    return 1 if failed else 0


def _logged_tree(results: dict, project: Project, root: Path, jobs: int, console) -> Path | None:
    """The project's logged x86-64 build: the one recorded if still on disk, else a new one."""
    known = results["trees"].get(project.name, {})
    tree = Path(known.get("workdir") or root / LOGGED_TREE)
    if known.get("ok") and (tree / "mlcc.log").exists():
        return tree
    console.print(f"{project.name:14} building for x86-64 with mlcc, its units logged")
    summary = logged_build(project, root, jobs)
    results["trees"][project.name] = summary
    if not summary["ok"]:
        return None
    console.print(f"{project.name:14} x86-64 build: {summary['units']} units in {summary['wall']:.0f} s")
    return Path(summary["workdir"])

