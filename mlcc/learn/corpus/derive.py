"""Corpora derived from the collected one: at -Os, and for other targets.

`make corpus` builds every project once, at -Oz, for x86-64. Instead of
building every project again, each collected unit's own command is rerun in
its build directory, front end only, changed:

- at -Os (`derive --level s`): clang's -Os and -Oz front ends differ only in
  the `minsize` attribute (on functions and on call sites);
- for another target of `mlcc/data/targets.toml` (`derive --target thumbv7m`):
  the target's flags and headers, the x86-64-only flags dropped
  (`targets.Target.retarget`). The build tree was configured for x86-64 Linux,
  so a unit that needs what the target's C library lacks fails, and is counted.

The bitcode is kept under `corpus-Os/<project>/` or `corpus-<target>/<project>/`
with the collected unit's id: the manifest, its split and the samples serve
every level and target. It needs the build trees `make corpus` leaves: the front
ends run through the measurement engine (`--engine`), and on a Ray cluster every
node needs them at the same paths (a shared file system); the head writes the units.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from mlcc import args, plan, targets
from mlcc.errors import MlccError
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.process import run_tool
from mlcc.toolchain import find

# Flags that would make the rerun front end write dependency files into the build tree.
DEPENDENCY_FLAGS = ("-MD", "-MMD", "-MF", "-MT", "-MQ", "-MP")


def _writes_dependencies(arg: args.Arg) -> bool:
    return arg.name in DEPENDENCY_FLAGS or (
        arg.name == "-Wp," and arg.value.startswith(("-MD,", "-MMD,")))


def without_dependency_files(tokens, driver: str) -> list[str]:
    """A compile command's tokens without the flags that write dependency files."""
    return [t for a in args.parse(tokens, driver).args if not _writes_dependencies(a) for t in a.tokens]


def one_unit(tokens, driver: str, source: str) -> list[str]:
    """A compile command's tokens compiling `source` alone, without its output and
    dependency-file flags (the caller adds `-o`): the other inputs are left out."""
    return [t for a in args.parse(tokens, driver).args
            if not _writes_dependencies(a) and a.name != "-o" and not (a.is_input and a.value != source)
            for t in a.tokens]


def relevel(tokens, level: str) -> list[str]:
    """The command's tokens with -Oz replaced by -O`level`."""
    return [f"-O{level}" if t == "-Oz" else t for t in tokens]


def derived_argv(meta: dict, level: str, target: str) -> list[str]:
    """The collected unit's command at -O`level`, for `target`."""
    argv = relevel(meta["argv"], level)
    return argv if target == targets.HOST else targets.named(target).retarget(argv)


def frontend_command(meta: dict, level: str, target: str = targets.HOST) -> list[str]:
    """clang's front end for the collected unit `meta`, at -O`level`, for `target`,
    without its dependency-file flags and without output (the caller adds `-o`). Runs
    in the unit's build directory (planning checks the command's paths)."""
    os.chdir(meta["cwd"])
    kept = without_dependency_files(derived_argv(meta, level, target), meta["driver"])
    made = plan.make_plan(args.parse(kept, meta["driver"]))
    if isinstance(made, plan.PlainClang):
        raise MlccError(f"not an optimized compile ({made.reason})")
    for unit in made.units:
        if os.path.normpath(os.path.join(meta["cwd"], unit.source)) == meta["source"]:
            clang = find("clang++" if meta["driver"] == "c++" else "clang")
            return [clang, *unit.frontend_args, unit.source]
    raise MlccError("not among the command's sources")


def derived_codegen_args(meta: dict, level: str, target: str) -> list[str]:
    args_ = relevel(meta["codegen_args"], level)
    return args_ if target == targets.HOST else targets.named(target).retarget(args_)


@dataclass(frozen=True)
class Derived:
    """A unit derived on a worker, for the head to keep: its bitcode and metadata."""

    dest: str
    unit_id: str
    meta: str
    bitcode: bytes


def front_end(job: tuple[str, str, str, str, str], files: dict[str, str]) -> Derived | str:
    """Worker: one unit's front end at the new level or target, the collected unit's
    metadata where the engine put it (`files`); the unit, or an error message."""
    src_dir, dest, unit_id, level, target = job
    meta = json.loads(Path(files[os.path.join(src_dir, f"{unit_id}.json")]).read_text())
    here = os.getcwd()
    try:
        argv = frontend_command(meta, level, target)
        with tempfile.TemporaryDirectory(prefix="mlcc-derive-") as tmp:
            out = os.path.join(tmp, f"{unit_id}.bc")
            run_tool([*argv, "-w", "-o", out], cwd=meta["cwd"], capture_stderr=True, timeout=600)
            bitcode = Path(out).read_bytes()
    except (MlccError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{meta['source']}: {first}"
    finally:
        os.chdir(here)  # a worker lives on (Ray's do), the build directory may not
    derived = {**meta, "opt_level": level, "target": target,
               "argv": derived_argv(meta, level, target),
               "codegen_args": derived_codegen_args(meta, level, target),
               "derived_from": "z"}
    return Derived(dest, unit_id, json.dumps(derived, indent=1, sort_keys=True), bitcode)


def keep(unit: Derived) -> None:
    """Write a derived unit where the step keeps it, the bitcode last: it marks the unit done."""
    dest = Path(unit.dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{unit.unit_id}.json").write_text(unit.meta)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".tmp-", suffix=".bc")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(unit.bitcode)
        os.replace(tmp, dest / f"{unit.unit_id}.bc")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def derive_unit(job: tuple[str, str, str, str, str]) -> str | None:
    """One unit derived and kept on this machine, without the engine; an error message or None."""
    src_dir, _, unit_id, _, _ = job
    meta = os.path.join(src_dir, f"{unit_id}.json")
    unit = front_end(job, {meta: meta})
    if isinstance(unit, str):
        return unit
    keep(unit)
    return None


@click.command()
@click.option("--level", type=click.Choice(["z", "s"]), default="s", show_default=True)
@click.option("--target", "target", type=click.Choice(list(targets.table())), default=targets.HOST,
              show_default=True)
@click.option("--jobs", default=os.cpu_count() or 2, show_default=True)
@engine_option
def main(level: str, target: str, jobs: int, backend: str) -> None:
    """Derive the corpus at -O`level` for `target` of every unit in
    models/corpus-manifest.json (resumable; units that fail are tried again next time)."""
    if level == "z" and target == targets.HOST:
        raise click.UsageError("that is the collected corpus itself: give --level s or --target")
    console = Console(stderr=True)
    layout = Layout.from_environment()
    manifest = json.loads(MANIFEST_FILE.read_text())
    todo, missing = [], 0
    for u in manifest["units"]:
        dest = layout.units(u["project"], level, target)
        if not (layout.units(u["project"]) / f"{u['id']}.json").exists():
            missing += 1  # not in this machine's -Oz corpus (its build changed or timed out)
        elif not (dest / f"{u['id']}.bc").exists():
            todo.append((str(layout.units(u["project"])), str(dest), u["id"], level, target))
    todo = list(dict.fromkeys(todo))
    failed = []
    units = Engine(backend, jobs).map(front_end, todo, title=f"{target} -O{level} front ends",
                                      inputs=lambda job: [os.path.join(job[0], f"{job[2]}.json")])
    for unit in units:
        if isinstance(unit, str):
            failed.append(unit)
        else:
            keep(unit)
    for error in failed[:10]:
        console.print(f"[yellow]failed: {error}")
    console.print(f"{len(todo) - len(failed)} units derived for {target} at -O{level}, "
                  f"{len(failed)} failed, {len(manifest['units']) - len(todo) - missing} already there, "
                  f"{missing} not in the -Oz corpus", soft_wrap=True)
