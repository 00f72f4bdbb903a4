"""`mlcc-tool`: everything that is not a compile (setup, inspection, learning).

Built with click; never imported by the compile path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from mlcc import __version__
from mlcc.errors import MlccError

DATA = Path(__file__).parent / "data"


class Tool(click.Group):
    """mlcc-tool's commands; an MlccError a command raises is one `mlcc-tool: error:` line
    and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlccError as exc:
            click.echo(f"mlcc-tool: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        ctx.invoke(version)
        ctx.exit()


@click.group(cls=Tool, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show mlcc, its tools and its model, then exit.")
def main() -> None:
    """mlcc's companion command: setup, model and cache inspection, training, benchmarks."""


@main.command("toolchain-file")
def toolchain_file() -> None:
    """Print the path of the CMake toolchain file that selects mlcc and mlcc++."""
    click.echo(str(DATA / "mlcc-toolchain.cmake"))


def _tool_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"not runnable: {exc.strerror}"
    lines = [l for l in out.stdout.splitlines() if "version" in l.lower()]
    return lines[0].strip() if lines else out.stdout.strip().splitlines()[0]


def setup_report() -> dict:
    """mlcc, its tools and its model, as one dictionary."""
    from mlcc import model, toolchain
    from mlcc.errors import ToolchainMissing

    report: dict = {"mlcc": __version__, "python": sys.version.split()[0], "tools": {}}
    for name in toolchain.TOOLS:
        try:
            path = toolchain.find(name)
            report["tools"][name] = {"path": path, "version": _tool_version(path)}
        except ToolchainMissing as exc:
            report["tools"][name] = {"error": str(exc)}
    report["model"] = model.identities()
    report["cache"] = _cache_stats(None)
    report["route"] = _route()
    return report


def _route() -> dict:
    """Which `mlcc` a build finds on PATH, and whether a compile server serves it."""
    import shutil
    from mlcc import client_build, model_server
    found = shutil.which("mlcc")
    client = found is not None and client_build.is_client(found)
    servers = [s for s in model_server.servers() if s.get("kind") == "compile" and s["current"]]
    if not client:
        how = "Python entry point, in process (`mlcc-tool install-client` builds the native client)"
    elif servers:
        how = f"native client + compile server (pid {servers[0]['pid']})"
    else:
        how = "native client; its compile server starts with the next command"
    return {"mlcc": found, "native_client": client, "compile_servers": len(servers), "how": how,
            "plugin": _plugin()}


def _plugin() -> str:
    """Whether opt's work runs inside clang, through mlcc's pass plugin."""
    from mlcc import plugin_build, toolchain
    from mlcc.errors import ToolchainMissing
    try:
        found = plugin_build.installed(toolchain.find("clang"))
    except (ToolchainMissing, OSError):
        found = None
    if found is None:
        return "not built for this clang: opt and clang run apart (`mlcc-tool install-client` builds it)"
    return f"{found}: a unit's one chosen pipeline runs inside clang"


@main.command("version")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def version(as_json: bool = False) -> None:
    """Show the whole setup: mlcc, clang/opt/llc paths and versions, model."""
    report = setup_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"mlcc {report['mlcc']} (Python {report['python']})")
    for name, info in report["tools"].items():
        click.echo(f"  {name:8} {info.get('path', '-')}  {info.get('version', info.get('error'))}")
    click.echo(f"  model    {report['model']}")
    c = report["cache"]
    click.echo(f"  cache    {c['directory']} ({c['entries']} entries, {c['bytes']} bytes; "
               f"{c['outputs']} outputs, {c['output_bytes']} bytes)")
    click.echo(f"  route    {report['route']['mlcc'] or 'mlcc not on PATH'}: {report['route']['how']}")
    click.echo(f"  plugin   {report['route']['plugin']}")


@main.group()
def cache() -> None:
    """The decision cache (which pipeline each unchanged file gets) and the outputs it keeps."""


def _cache(directory: str | None):
    from mlcc.cache import DecisionCache
    import os
    return DecisionCache(directory or os.environ.get("MLCC_CACHE") or None)


def _cache_stats(directory: str | None) -> dict:
    from mlcc.output_cache import OutputCache
    decisions = _cache(directory)
    return {**decisions.stats(), **OutputCache(decisions).stats()}


@cache.command("stats")
@click.option("--dir", "directory", default=None, help="Cache directory (default: MLCC_CACHE or XDG).")
@click.option("--json", "as_json", is_flag=True)
def cache_stats(directory: str | None, as_json: bool) -> None:
    """Entries and bytes in the decision cache and its finished outputs."""
    stats = _cache_stats(directory)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        click.echo(f"{stats['directory']}: {stats['entries']} entries, {stats['bytes']} bytes "
                   f"(limit {stats['limit']} entries); {stats['outputs']} outputs, "
                   f"{stats['output_bytes']} bytes (limit {stats['output_limit']} bytes)")


@cache.command("clear")
@click.option("--dir", "directory", default=None)
def cache_clear(directory: str | None) -> None:
    """Remove every entry of the decision cache and every kept output."""
    from mlcc.output_cache import OutputCache
    c = _cache(directory)
    outputs = OutputCache(c).clear()
    click.echo(f"removed {c.clear()} entries and {outputs} outputs from {c.directory}")


@main.group()
def server() -> None:
    """The servers that keep mlcc warm: the compile server behind the native client,
    and the model server of Python-entry builds (docs/USAGE.md)."""


@server.command("status")
@click.option("--json", "as_json", is_flag=True)
def server_status(as_json: bool) -> None:
    """The compile and model servers running for this user."""
    import time
    from mlcc import model_server
    found = model_server.servers()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no model server running")
    for s in found:
        other = '' if s['current'] else ' (another mlcc or Python)'
        up = time.time() - s['started']
        if s.get("kind") == "compile":
            click.echo(f"compile server pid {s['pid']}: {s['answered']} commands, {s['cpu']:.2f} s CPU "
                       f"(with their tools), up {up:.0f} s, exits after {s['idle']:g} s idle"
                       f"{other}; {s['socket']}")
            forks = s.get("fork_server")
            if forks:
                click.echo(f"  clang fork server pid {forks['pid']} for {forks['clang']}")
        else:
            click.echo(f"pid {s['pid']}: {s['answered']} units answered, {s['cpu']:.2f} s CPU, up "
                       f"{up:.0f} s, exits after {s['idle']:g} s idle{other}; {s['socket']}")


@server.command("stop")
def server_stop() -> None:
    """Stop every compile and model server of this user (the next compile starts a new
    one; commands running finish first)."""
    from mlcc import model_server
    directory = model_server.runtime_dir()
    stopped = model_server.stop_all(directory) if directory else {"servers": 0, "compile": 0}
    click.echo(f"stopped {stopped['servers'] - stopped['compile']} model server(s)")
    if stopped["compile"]:
        click.echo(f"stopped {stopped['compile']} compile server(s)")


@main.command("install-client")
@click.option("--bindir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to put mlcc and mlcc++ (default: this Python's scripts directory, "
                   "over the Python console scripts).")
def install_client(bindir: Path | None) -> None:
    """Build the native client with clang-19 and install it as mlcc and mlcc++; build
    mlcc's pass plugin and the clang fork server for clang-19 (a warning if either
    cannot be built)."""
    from mlcc import client_build, fork_server_build, plugin_build
    from mlcc.errors import MlccError
    try:
        for path in client_build.build(bindir or client_build.default_bindir()):
            click.echo(f"installed {path}")
    except (MlccError, OSError) as exc:
        raise click.ClickException(f"cannot build the native client: {exc}")
    try:
        click.echo(f"installed {plugin_build.build()}")
    except (MlccError, OSError) as exc:
        click.echo(f"mlcc: warning: cannot build the pass plugin: {exc}; opt and clang run apart", err=True)
    try:
        click.echo(f"installed {fork_server_build.build()}")
    except (MlccError, OSError) as exc:
        click.echo(f"mlcc: warning: cannot build the clang fork server: {exc}; clang starts per run",
                   err=True)


@main.command()
@click.argument("log", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG of time per stage.")
def stats(log: str | None, as_json: bool, plot: str | None) -> None:
    """Summarize a build's MLCC_LOG: paths taken, reasons, pipelines, time per stage, cache hits."""
    import os
    from collections import Counter, defaultdict

    path = log or os.environ.get("MLCC_LOG")
    if not path:
        raise click.UsageError("give the log file (or set MLCC_LOG)")
    entries = []
    bad = 0
    with open(path) as f:
        for line in f:
            try:
                entries.append(json.loads(line))
            except ValueError:
                bad += 1
    optimized = [e for e in entries if e.get("path") == "optimize"]
    plain = [e for e in entries if e.get("path") == "clang"]
    stage = defaultdict(float)
    for e in optimized:
        for k, v in (e.get("seconds") or {}).items():
            stage[k] += v
    summary = {
        "log": path, "entries": len(entries), "unreadable_lines": bad,
        "optimized_units": len(optimized), "plain_clang_commands": len(plain),
        "plain_clang_reasons": dict(Counter(e.get("reason", "?") for e in plain).most_common()),
        "decisions": dict(Counter((e.get("decision") or "?").split(",")[0].split(":")[0]
                                  for e in optimized).most_common()),
        "pipelines": dict(Counter(e.get("pipeline") for e in optimized).most_common(10)),
        "cache": dict(Counter(e.get("cache", "off") for e in optimized)),
        "fallbacks": sum(1 for e in optimized if e.get("fallback")),
        "seconds_per_stage": {k: round(v, 3) for k, v in sorted(stage.items())},
        "object_bytes": sum(e.get("size") or 0 for e in optimized),
    }
    predicted = [e["scores"][e["pipeline"]] for e in optimized
                 if e.get("scores") and e.get("pipeline") in e["scores"]]
    if predicted:
        summary["predicted_mean_size_vs_clang"] = round(sum(predicted) / len(predicted), 4)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=f"mlcc build log {path}")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        for k, v in summary.items():
            table.add_row(k.replace("_", " "), json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        Console().print(table)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = list(summary["seconds_per_stage"])
        ax.bar(names, [summary["seconds_per_stage"][n] for n in names])
        ax.set_ylabel("seconds (sum over units)")
        ax.set_title("mlcc time per stage")
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        click.echo(f"wrote {plot}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
@click.option("--measure", is_flag=True, help="Also build every candidate and measure its real size.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--top", default=8, show_default=True, help="How many features to show.")
def explain(source: str, flags: tuple[str, ...], measure: bool, as_json: bool, top: int) -> None:
    """Why mlcc picks the pipeline it picks for SOURCE compiled with FLAGS (default -Oz).

    Shows the features that weighed most (how much the chosen candidate's
    prediction moves when each feature is set to its training median), every
    candidate's predicted size against clang's pipeline, and the choice.
    """
    import os
    import tempfile

    import numpy as np

    from mlcc import features, model, model_file
    from mlcc.args import parse
    from mlcc.errors import MlccError
    from mlcc.plan import OptimizePlan, make_plan
    from mlcc.settings import Settings
    from mlcc.toolchain import for_driver

    argv = list(flags) or ["-Oz"]
    if not any(a in ("-c", "-S") for a in argv):
        argv.append("-c")
    driver_kind = "c++" if os.path.splitext(source)[1] in (".cc", ".cpp", ".cxx", ".C") else "c"
    cmd = parse([*argv, source], driver_kind)
    plan = make_plan(cmd)
    if not isinstance(plan, OptimizePlan):
        raise click.ClickException(f"mlcc would run plain clang for this command ({plan.reason})")
    unit = plan.units[0]
    with tempfile.TemporaryDirectory(prefix="mlcc-explain-") as tmp:
        bitcode = os.path.join(tmp, "unit.bc")
        from mlcc import decide, frontend
        tools = for_driver(driver_kind)
        try:
            frontend.compile_to_bitcode(tools.clang, unit, bitcode)
        except MlccError as exc:
            raise click.ClickException(str(exc))
        info = decide.target_info(tools.clang, unit.codegen_args, bitcode, cache=None)
        target = model.target_of(info.triple)
        path = None if target is None else model.model_path(cmd.opt_level, Settings(), target.name)
        if path is None:  # nothing learned to explain: say what single-shot runs instead
            decision = model.choose(bitcode, cmd.opt_level, Settings(server=False), triple=info.triple)
            # single-shot also builds these from the default's opt run, the smallest kept
            variants = list(target.variants(cmd.opt_level)) if target is not None else []
            result = {"source": source, "flags": argv, "target": info.triple, "model": None,
                      "chosen": decision.pipeline, "decision": decision.source,
                      "codegen_variants": variants}
            also = f", and {len(variants)} code generation variants, the smallest kept" if variants else ""
            click.echo(json.dumps(result, indent=2) if as_json else
                       f"{source} {' '.join(argv)}  ->  {decision.pipeline}{also} ({decision.source}; "
                       f"target {info.triple})")
            return
        try:
            m = model.load(path)
        except MlccError as exc:
            raise click.ClickException(str(exc))
        raw = features.extract_features(bitcode)
        try:  # the model's own ranking, which trials start from
            ranked = model.rank(bitcode, cmd.opt_level, path, target.name)
        except MlccError as exc:
            raise click.ClickException(f"the model was not used: {exc}")
        if not ranked.scores:  # a model for another level
            raise click.ClickException(f"the model was not used: {ranked.source}")
        # what single-shot runs: the model's choice, or the target's default where the
        # model does not decide single-shot (targets.toml's single_shot)
        decision = model.choose(bitcode, cmd.opt_level, Settings(server=False), triple=info.triple)
        scores = [ranked.scores[c] for c in m.candidates]
        chosen = m.candidates.index(ranked.pipeline) if ranked.pipeline in m.candidates else 0
        medians = model_file.get(m.metadata(), "feature_medians", [])
        weights = []
        if medians:  # each feature in turn set to its training median (transformed)
            x = model_file.transform(raw)
            batch = np.repeat(x[None, :], len(x), axis=0)
            batch[np.arange(len(x)), np.arange(len(x))] = np.asarray(medians, dtype=np.float32)
            out = model_file.predict(m.session, batch)
            delta = out[:, chosen] - scores[chosen]
            order = np.argsort(-np.abs(delta))[:top]
            weights = [{"feature": features.FEATURE_NAMES[i], "value": float(raw[i]),
                        "effect_if_median": float(delta[i])} for i in order]
        measured = {}
        if measure:
            from mlcc.learn.measure import Prepared, Unit, measure as measure_one
            prep = Prepared(Unit("explain", "", bitcode, unit.codegen_args, driver_kind),
                            bitcode, info.flags, tools.clang, tools.opt, info.clang_pipeline,
                            info.triple)
            measured = {c: measure_one(prep, c) for c in m.candidates}
    result = {
        "source": source, "flags": argv, "target": info.triple, "model": model.identity(cmd.opt_level, target=target.name),
        "chosen": decision.pipeline, "decision": decision.source, "model_choice": ranked.pipeline,
        "candidates": [{"pipeline": c, "predicted_vs_clang": scores[i],
                        "measured_bytes": measured.get(c)} for i, c in enumerate(m.candidates)],
        "features": weights,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    console = Console()
    from rich.markup import escape  # pipelines like clang[gvn-no-pre] are not markup
    console.print(f"[bold]{escape(source)}[/] {escape(' '.join(argv))}  ->  "
                  f"[green]{escape(decision.pipeline)}[/] ({escape(decision.source)}; "
                  f"target {escape(info.triple)})")
    if ranked.pipeline != decision.pipeline:
        console.print(f"the model ranks candidate {chosen} first ([bold]*[/] below), which trials and "
                      f"search start from")
    ft = Table(title="features that weighed most (change of the model's first choice's prediction at the median)")
    ft.add_column("feature")
    ft.add_column("value", justify="right")
    ft.add_column("effect", justify="right")
    for w in weights:
        ft.add_row(w["feature"], f"{w['value']:g}", f"{w['effect_if_median']:+.4f}")
    console.print(ft)
    ct = Table(title="candidates")
    ct.add_column("#", justify="right")
    ct.add_column("predicted size vs clang", justify="right")
    if measure:
        ct.add_column("measured bytes", justify="right")
    ct.add_column("pipeline", overflow="fold")
    from mlcc.pipeline import CLANG
    clang_bytes = measured.get(CLANG)
    for i, c in enumerate(m.candidates):
        mark = "*" if c == ranked.pipeline else ""
        row = [f"{i}{mark}", f"{scores[i]:.4f}"]
        if measure:
            b = measured.get(c)
            row.append("failed" if b is None else (f"{b} ({100.0 * (b - clang_bytes) / clang_bytes:+.2f}%)"
                                                   if clang_bytes else str(b)))
        row.append(escape(c))
        ct.add_row(*row)
    console.print(ct)


@main.command()
@click.argument("directories", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The model file to write (ONNX).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path),
              help="Where measurements are kept (default: DIRECTORY/.mlcc-retrain); reruns resume.")
@click.option("--level", type=click.Choice(["z", "s"]),
              help="Optimization level to learn (default: the level the units were collected at).")
@click.option("--explore-units", default=60, show_default=True,
              help="Training units searched with random pipelines and greedy edits.")
@click.option("--random", "n_random", default=24, show_default=True,
              help="Random pipelines measured on every explored unit.")
@click.option("--greedy", default=4, show_default=True, help="Greedy edits per explored unit.")
@click.option("--k-max", default=8, show_default=True, help="At most this many candidate pipelines.")
@click.option("--holdout", default=0.2, show_default=True,
              help="Share of units held out to validate the model.")
@click.option("--jobs", "-j", default=2, show_default=True, help="Units measured in parallel.")
# the choices of mlcc/learn/engine.py's BACKENDS: the learning side stays out of this
# module's imports (mlcc-tool's other commands are on the compile path's budget)
@click.option("--engine", "backend", type=click.Choice(("local", "ray")), default="local",
              envvar="MLCC_ENGINE", show_default=True, show_envvar=True,
              help="Where the measurements run (docs/MODEL.md, the Ray section).")
def retrain(directories, out, work, level, explore_units, n_random, greedy, k_max, holdout,
            jobs, backend) -> None:
    """Train a size model on your own code, collected with MLCC_COLLECT=DIRECTORY.

    Measures pipelines on the collected units (resumable), chooses candidates,
    trains and writes OUT; select it with MLCC_MODEL=OUT. See docs/MODEL.md.
    """
    from rich.console import Console

    from mlcc.learn import retrain as retrain_lib

    retrain_lib.run(list(directories), out, work=work, level=level,
                    explore_units=explore_units, n_random=n_random, greedy=greedy,
                    k_max=k_max, holdout=holdout, jobs=jobs, backend=backend,
                    console=Console(stderr=True))


@main.command()
@click.option("--profile", type=click.Choice(["quick", "full", "cross"]),
              help="quick (the default for builds): three small projects at -Oz, single-shot and a "
                   "warm rebuild (minutes); full: every project, -Oz and -Os, single-shot, trials and "
                   "a warm rebuild (hours); cross: other targets at -Oz, every project's units for "
                   "thumbv7m, thumbv6m and riscv32 and the CMake projects linked for aarch64 (its "
                   "results in docs/bench-cross-results.json). --report and --driver-speed default to "
                   "the profile the results file was last built with.")
@click.option("--only", multiple=True, metavar="PROJECT", help="Build only these projects (repeatable).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Results file; builds already in it are not redone (default: "
                   "docs/bench-results.json, committed with the docs made from it).")
@click.option("--fresh", is_flag=True, help="Ignore the results file's builds and start over.")
@click.option("--redo", multiple=True, metavar="CONFIG",
              help="Build this configuration again even if the results file has it, e.g. "
                   "'mlcc -Oz warm' or 'clang -Oz' (repeatable).")
@click.option("--repeat", default=1, show_default=True, metavar="N", type=click.IntRange(min=1),
              help="Build each configuration N times, round by round, and report the median "
                   "CPU and wall time of its runs. A configuration the results file holds with "
                   "fewer runs gets the ones it lacks; one named by --redo gets N new ones.")
@click.option("--driver-speed", is_flag=True,
              help="Instead of building projects: time the driver alone on a tiny file and sqlite3.c.")
@click.option("--report", "report_only", is_flag=True,
              help="Build nothing: print and write the report from the results file.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown summary (default: docs/BENCHMARKS.md of the source checkout).")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the PNG plots (default: img/ beside the Markdown file).")
@click.option("--no-docs", is_flag=True, help="Write neither the Markdown summary nor the plots.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where projects are built (default: $MLCC_DATA/bench, else ~/.cache/mlcc/bench).")
@click.option("--jobs", "-j", default=2, show_default=True, help="Parallel jobs of each build.")
@click.option("--cross-suite", "cross_suites", multiple=True,
              type=click.Choice(["objects", "objects-client", "objects-trials", "objects-search"]),
              help="--profile cross: the object suites to run (repeatable; default: objects, "
                   "mlcc single-shot, and objects-trials, -fmlcc-trials=4; objects-search is "
                   "-fmlcc-search=20, 20 builds a unit; objects-client is single-shot through "
                   "the native client and its compile server).")
@click.option("--cross-target", "cross_targets", multiple=True, metavar="TARGET",
              help="--profile cross: only these targets (repeatable; default: all of them).")
def bench(profile, only, json_path, fresh, redo, repeat, driver_speed, report_only, markdown, plots_dir,
          no_docs, workdir, jobs, cross_suites, cross_targets) -> None:
    """Code size and build time of real projects built with mlcc against clang-19.

    Writes a table, the results file, docs/BENCHMARKS.md, plots in docs/img/ and the
    README's headline figures.
    """
    import shlex

    from mlcc.errors import MlccError
    from mlcc.learn.evaluate import bench as bench_lib

    command = shlex.join(["mlcc-tool", *sys.argv[1:]])
    if repeat > 1 and (driver_speed or report_only):
        raise click.UsageError("--repeat goes with builds, not with --driver-speed or --report")
    if (cross_suites or cross_targets) and profile != "cross":
        raise click.UsageError("--cross-suite and --cross-target go with --profile cross")
    if profile == "cross":
        from mlcc.learn.evaluate import bench_cross

        if driver_speed or redo or plots_dir or repeat > 1:
            raise click.UsageError("--profile cross takes neither --driver-speed, --redo, --repeat nor --plots")
        known = (*bench_cross.OBJECT_TARGETS, *bench_cross.LINKED_TARGETS)
        unknown = [t for t in cross_targets if t not in known]
        if unknown:
            raise click.UsageError(f"--cross-target {unknown[0]}: the cross profile has {', '.join(known)}")

        def chosen(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(t for t in names if not cross_targets or t in cross_targets)

        try:
            status = bench_cross.run(only=only, json_path=json_path or bench_lib.DEFAULT_CROSS_RESULTS,
                                     markdown=markdown, workdir=workdir, jobs=jobs, fresh=fresh,
                                     report_only=report_only, write_docs=not no_docs, command=command,
                                     object_suites=cross_suites or bench_cross.DEFAULT_OBJECT_SUITES,
                                     object_targets=chosen(bench_cross.OBJECT_TARGETS),
                                     linked_targets=chosen(bench_cross.LINKED_TARGETS))
        except MlccError as exc:
            raise click.ClickException(str(exc))
        sys.exit(status)
    try:
        status = bench_lib.run(profile_name=profile, only=only,
                               json_path=json_path or bench_lib.DEFAULT_RESULTS,
                               markdown=markdown, plots_dir=plots_dir, workdir=workdir, jobs=jobs,
                               fresh=fresh, redo=redo, repeat=repeat, speed=driver_speed,
                               report_only=report_only,
                               write_docs=not no_docs, command=command)
    except MlccError as exc:
        raise click.ClickException(str(exc))
    sys.exit(status)
