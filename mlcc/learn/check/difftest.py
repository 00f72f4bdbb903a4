"""Differential testing with Csmith: mlcc's -Oz/-Os builds against clang -O0.

Csmith writes self-checking C programs that print a checksum of their global
state; `csmith --seed N` always writes the same program. Each program is
built with `clang-19 -O0` (the reference) and with mlcc in several
configurations: the model's choice, trials, and every candidate pipeline
forced. Every build must print what the reference prints. A difference is a
miscompile, by LLVM under one of our pipelines or by mlcc's split of clang's
compile; each one is kept as a reproducer directory whose `repro.sh` also
rebuilds the program with plain `opt-19 -passes=...` and `clang-19`, without
mlcc, to tell the two apart (`info.json` says what the campaign found).

    python -m mlcc.learn.check difftest -n 1000 --jobs 2 --out build/difftest [--engine ray]

With `--target NAME` (a target of mlcc/data/targets.toml with a `link` and an
`emulator`) every build, the reference's too, is for that target: its flags
on every compile, its `link` flags on every link, and each program runs under
its qemu-user command with a CPU limit EMULATED_FACTOR times longer.

The summary (`DIR/summary.json`, `DIR/summary-<target>.json` for another
target) is rewritten after every program, so an interrupted campaign resumes
where it stopped. Programs are checked through the measurement engine
(`--engine`): a worker writes a mismatch's reproducer in a directory of its own and
sends its files back, and the head keeps them in DIR, whichever machine found it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from mlcc import targets
from mlcc.errors import MlccError, ToolchainMissing, ToolFailed
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.paths import MODELS, REPO
from mlcc.pipeline import CLANG, codegen_args, resolve
from mlcc.process import run_tool

CSMITH_INCLUDE = "/usr/include/csmith"
# Csmith programs are full of unused values and implicit conversions on purpose.
PROGRAM_FLAGS = ("-w",)
REFERENCE_LEVEL = "-O0"
RUN_TIMEOUT = 10.0       # CPU seconds for one run of a program; some Csmith programs loop for long
WALL_FACTOR = 6          # wall-clock limit of a run, as a multiple of its CPU limit (a backstop)
RETRY_FACTOR = 3         # an mlcc build that times out gets one more run this many times longer
# qemu-user runs a program 4 to 5 times slower than the host (a -O0 loop: 0.31 s natively,
# 1.5 s under qemu-aarch64, 1.2 s under qemu-arm): the limits under it are this many times longer
EMULATED_FACTOR = 5
BUILD_TIMEOUT = 600.0    # seconds for one mlcc or clang compile-and-link
TRIALS = 4
DEFAULT_OUT = REPO / "build" / "difftest"
SUMMARY = "summary.json"
# mlcc settings the campaign keeps from the caller's environment: where LLVM is,
# and which model is "the model". Every other MLCC_* would change what a
# configuration means, so it is dropped (and the config file ignored).
KEEP_ENVIRONMENT = ("MLCC_CLANG", "MLCC_CLANGXX", "MLCC_OPT", "MLCC_LLC", "MLCC_LLVM_BIN", "MLCC_MODEL")
# mlcc from the interpreter running this module: the same installation the campaign imports.
MLCC = (sys.executable, "-c", "from mlcc.cli import main_c; main_c()")


@dataclass(frozen=True)
class Config:
    """One way of building a program with mlcc."""

    name: str                 # "Oz-model", "Oz-trials4", "Oz-pipeline03", ...
    opt_level: str            # "z" or "s"
    flags: tuple[str, ...]    # mlcc options after -O<level>
    pipeline: str = ""        # the forced pipeline; "" when the model decides

    @property
    def argv(self) -> tuple[str, ...]:
        return (f"-O{self.opt_level}", *self.flags)


# ----------------------------------------------------------------------------- configurations


def _model_candidates(opt_level: str, target: str) -> tuple[list[str], str] | None:
    from mlcc import model

    path = os.environ.get("MLCC_MODEL") or str(model.bundled_model_path(opt_level, target))
    if not Path(path).exists():
        return None
    try:
        loaded = model.load(path)
    except MlccError as exc:
        print(f"difftest: warning: {exc}", file=sys.stderr)
        return None
    if loaded.opt_level != opt_level:
        return None
    return list(loaded.candidates), f"model {path} (sha256:{loaded.digest})"


def _table_candidates(opt_level: str, target: str) -> tuple[list[str], str] | None:
    if target != targets.HOST:
        return None  # the table is x86-64's
    path = MODELS / "data" / f"candidates-O{opt_level}.json"
    try:
        pipelines = json.loads(path.read_text())["pipelines"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return list(pipelines), str(path)


def _target_candidates(opt_level: str, target: str) -> tuple[list[str], str] | None:
    if target == targets.HOST:
        return None
    entry = targets.named(target)
    pipelines = [entry.default(opt_level), *entry.variants(opt_level),
                 *(p for s in entry.trial_sets(opt_level) for p in s)]
    return list(dict.fromkeys(pipelines)), (f"{targets.TARGETS_FILE.name}: {target}'s default, its code "
                                            f"generation variants and trial sets")


def candidate_pipelines(opt_level: str = "z", target: str = targets.HOST) -> tuple[list[str], str]:
    """The candidate pipelines for `target` and where they came from.

    The model's metadata, else the candidate table it is trained from (x86-64)
    or, for another target, the default and trial sets mlcc runs there (for
    -Os without either, the -Oz ones: the same pipelines on `optsize` rather
    than `minsize` functions), else clang's own -Oz pipeline.
    """
    levels = (opt_level,) if opt_level == "z" else (opt_level, "z")
    for level in levels:
        for source in (_model_candidates, _table_candidates, _target_candidates):
            found = source(level, target)
            if found and found[0]:
                return list(dict.fromkeys(found[0])), found[1]
    return [CLANG], "clang's own -Oz pipeline (no model, no candidate table)"


# how each kind of LTO build compiles and links (mlcc/lto.py: lld carries mlcc's options)
LTO_FLAGS = {"full": ("-flto", "-fuse-ld=lld"), "thin": ("-flto=thin", "-fuse-ld=lld")}


def configurations(levels: str = "zs", *, trials_levels: str = "zs", forced_levels: str = "zs",
                   trials: int = TRIALS, target: str = targets.HOST, lto=()) -> list[Config]:
    """Model choice at each level, trials, each LTO kind in `lto` (single-shot, and with
    trials at the link), then every candidate forced (one config each)."""
    configs = [Config(f"O{level}-model", level, ()) for level in levels]
    if trials:
        configs += [Config(f"O{level}-trials{trials}", level, (f"-fmlcc-trials={trials}",))
                    for level in trials_levels]
    for kind in lto:
        configs += [Config(f"O{level}-lto-{kind}", level, LTO_FLAGS[kind]) for level in levels]
        if trials:
            configs += [Config(f"O{level}-lto-{kind}-trials{trials}", level,
                               (*LTO_FLAGS[kind], f"-fmlcc-trials={trials}")) for level in trials_levels]
    for level in forced_levels:
        pipelines, _ = candidate_pipelines(level, target)
        configs += [Config(f"O{level}-pipeline{i:02d}", level, (f"-fmlcc-pipeline={p}",), p)
                    for i, p in enumerate(pipelines)]
    return configs


def configs_for_program(seed: int, configs: list[Config], forced_per_program: int) -> list[Config]:
    """All configurations, or the unforced ones plus a slice of the forced ones that
    rotates with the seed (so consecutive seeds cover every candidate in turn)."""
    forced = [c for c in configs if c.pipeline]
    if not forced_per_program or forced_per_program >= len(forced):
        return list(configs)
    start = (seed * forced_per_program) % len(forced)
    chosen = {forced[(start + i) % len(forced)].name for i in range(forced_per_program)}
    return [c for c in configs if not c.pipeline or c.name in chosen]


def model_digests(levels: str = "zs", target: str = targets.HOST) -> dict[str, str]:
    """sha256 (12 digits) of the model mlcc uses at each level for `target`, or "none"."""
    from mlcc import model

    out = {}
    for level in levels:
        path = os.environ.get("MLCC_MODEL") or str(model.bundled_model_path(level, target))
        try:
            out[level] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
        except OSError:
            out[level] = "none"
    return out


def fingerprint(configs: list[Config], forced_per_program: int, target: str = targets.HOST) -> str:
    """What a result depends on besides the seed (configurations, the models that
    decide for them, and another target's entry: its flags, link, emulator, and the
    defaults that decide without a model); a resumed campaign reuses only matching results."""
    levels = "".join(sorted({c.opt_level for c in configs if not c.pipeline}))
    parts = [[asdict(c) for c in configs], forced_per_program, list(PROGRAM_FLAGS),
             model_digests(levels, target)]
    if target != targets.HOST:
        entry = targets.named(target)
        # as the table writes it (the default `stdout` left out, as before the key
        # existed), with the contents of mlcc's own files it names
        described = json.loads(targets.portable(json.dumps(asdict(entry))))
        if described["stdout"] == "stdout":
            del described["stdout"]
        parts.append(described)
        own = [hashlib.sha256(Path(w).read_bytes()).hexdigest()
               for w in entry.link if w.startswith(str(targets.DATA)) and Path(w).is_file()]
        if own:
            parts.append(own)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- one program


def find_csmith() -> str:
    """csmith's path; raise ToolchainMissing saying how to install it."""
    found = shutil.which("csmith")
    if not found or not Path(CSMITH_INCLUDE, "csmith.h").is_file():
        raise ToolchainMissing("csmith or its headers are missing: apt-get install -y csmith "
                               f"libcsmith-dev (scripts/setup.sh does); headers expected in {CSMITH_INCLUDE}")
    return found


def check_target(target: targets.Target) -> None:
    """Raise ToolchainMissing unless `target`'s programs can be linked and run here."""
    if not target.runs_programs:
        runnable = ", ".join(t.name for t in targets.table().values() if t.runs_programs)
        raise ToolchainMissing(f"{target.name} has no `emulator` in {targets.TARGETS_FILE}: its programs "
                               f"cannot run here (targets that run: {runnable})")
    missing = [f for f in (*target.link, *target.flags) if f.startswith("/") and not Path(f).exists()]
    missing += [f.split("=", 1)[1] for f in target.flags if f.startswith("--sysroot=")
                and not Path(f.split("=", 1)[1]).is_dir()]
    if target.emulator and not shutil.which(target.emulator[0]):
        missing.append(target.emulator[0])
    if missing:
        packages = " ".join([*target.packages, *(("qemu-user",) if target.emulator else ())])
        raise ToolchainMissing(f"{target.name}: {', '.join(missing)} missing: apt-get install -y "
                               f"{packages} (scripts/setup.sh does)")


def run_limit(target: targets.Target, timeout: float) -> float:
    """CPU seconds for one run of a program on `target`, from the host's limit."""
    return timeout * EMULATED_FACTOR if target.emulator else timeout


def mlcc_environment(cache: str, log: str) -> dict[str, str]:
    """The caller's environment without mlcc settings, plus a private decision cache and log;
    every program, however small, takes the model's path (small units would go to clang whole)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_") or k in KEEP_ENVIRONMENT}
    env.update(MLCC_CACHE=cache, MLCC_LOG=log, MLCC_CONFIG=os.devnull, MLCC_SMALL_UNIT="0")
    return env


@dataclass(frozen=True)
class Run:
    """What one binary did: its output, or how it ended otherwise."""

    stdout: str
    status: str               # "exit 0", "exit 1", "signal 11", "timeout"

    @property
    def text(self) -> str:
        return self.stdout if self.status == "exit 0" else f"{self.stdout}<{self.status}>\n"


def run_binary(path: str, timeout: float, emulator=(), stdout: str = "stdout") -> Run:
    """Run a built program (under `emulator`, a qemu-user command, if given); a crash
    or timeout is a result, not an error. Its output is what arrives on `stdout`
    ("stderr" for a C library that prints on qemu's semihosting console).

    The limit is CPU time (prlimit), so how loaded the machine is does not
    change which programs finish; wall-clock time is only a backstop.
    """
    cpu = max(1, math.ceil(timeout))
    prlimit = shutil.which("prlimit")
    # soft limit first: SIGXCPU tells a CPU timeout from a crash. No core files: qemu
    # writes its own in the working directory for a crashing program when allowed.
    command = [*emulator, path]
    argv = [prlimit, f"--cpu={cpu}:{cpu + 1}", "--core=0", *command] if prlimit else command
    try:
        proc = run_tool(argv, timeout=timeout * WALL_FACTOR, capture_stdout=True, capture_stderr=True)
    except ToolFailed as exc:
        if exc.timed_out or exc.returncode == -signal.SIGXCPU:
            return Run("", "timeout")
        code = exc.returncode
        return Run("", f"signal {-code}" if code is not None and code < 0 else f"exit {code}")
    return Run((proc.stderr if stdout == "stderr" else proc.stdout).decode(errors="replace"), "exit 0")


def _read_log(path: str) -> dict:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    entries = [json.loads(line) for line in lines if line.strip()]
    return next((e for e in reversed(entries) if e.get("path") == "optimize"), entries[-1] if entries else {})


def opt_setup(opt_level: str, workdir: str, target_flags=()) -> tuple[tuple[str, ...], str]:
    """What opt needs to run as clang would at -O`opt_level` with `target_flags`: its
    target and tuning flags, and clang's own pipeline text (what `clang` stands for
    as a candidate)."""
    from mlcc import decide
    from mlcc.toolchain import find

    clang = find("clang")
    src, bc = os.path.join(workdir, "target.c"), os.path.join(workdir, "target.bc")
    Path(src).write_text("int x;\n")
    flags = (f"-O{opt_level}", *target_flags)
    run_tool([clang, *flags, "-emit-llvm", "-c", src, "-o", bc], capture_stderr=True)
    info = decide.target_info(clang, flags, bc, cache=None)
    return info.flags, info.clang_pipeline


def llvm_alone(program: str, opt_level: str, pipeline: str, workdir: str, timeout: float,
               target: targets.Target | None = None) -> Run:
    """Build `program` for `target` (the host's by default) without mlcc (clang-19
    front end, opt-19 -passes, clang-19 code generation and link) and run it."""
    from mlcc.toolchain import find

    target = target or targets.named(targets.HOST)
    clang, opt = find("clang"), find("opt")
    level = f"-O{opt_level}"
    opt_flags, clang_text = opt_setup(opt_level, workdir, target.flags)
    bitcode, optimized, exe = (os.path.join(workdir, n) for n in ("llvm.bc", "llvm.opt.bc", "llvm.exe"))
    run_tool([clang, level, *target.flags, f"-I{CSMITH_INCLUDE}", *PROGRAM_FLAGS, "-Xclang",
              "-disable-llvm-passes", "-emit-llvm", "-c", program, "-o", bitcode],
             capture_stderr=True, timeout=BUILD_TIMEOUT)
    run_tool([opt, *opt_flags, f"-passes={resolve(pipeline, clang_text)}", bitcode,
              "-o", optimized], capture_stderr=True, timeout=BUILD_TIMEOUT)
    run_tool([clang, level, *target.flags, "-Xclang", "-disable-llvm-passes",
              *codegen_args(pipeline, target.flags), optimized, *target.link, "-o", exe],
             capture_stderr=True, timeout=BUILD_TIMEOUT)
    return run_binary(exe, timeout, target.emulator, target.stdout)


def _repro_script(config: Config, opt_flags, codegen_extra, timeout: float,
                  target: targets.Target) -> str:
    from mlcc.toolchain import find

    clang, opt = find("clang"), find("opt")
    level = f"-O{config.opt_level}"
    extra = " ".join(PROGRAM_FLAGS)
    # the target's compile flags, link flags and emulator, each with its separating space
    tflags, link, run = (shlex.join(words) + " " if words else ""
                         for words in (target.flags, target.link, target.emulator))
    where = "" if target.name == targets.HOST else f" for {target.name}"
    into = "2>" if target.stdout == "stderr" else ">"   # where the program's output arrives
    return f"""#!/bin/sh
# Csmith program vs clang {REFERENCE_LEVEL}{where}: configuration {config.name} (mlcc {shlex.join(config.argv)}).
# Builds the reference, the mlcc build, and the same pipeline with LLVM alone
# (opt-19 -passes=..., no mlcc); prints each one's output status. Exits 1 while
# mlcc's build differs from the reference.
cd "$(dirname "$0")" || exit 2
INC=${{CSMITH_INCLUDE:-{CSMITH_INCLUDE}}}
T=${{TIMEOUT:-{int(timeout)}}}
{clang} {REFERENCE_LEVEL} {tflags}-I"$INC" {extra} program.c {link}-o ref.exe || exit 2
timeout "$T" {run}./ref.exe {into} expected.now; echo "reference: exit $?"

export MLCC_CACHE="$(mktemp -d)" MLCC_CONFIG=/dev/null
mlcc {shlex.join(config.argv)} {tflags}-I"$INC" {extra} program.c {link}-o mlcc.exe || exit 2
timeout "$T" {run}./mlcc.exe {into} mlcc.now; echo "mlcc: exit $?"

{clang} {level} {tflags}-I"$INC" {extra} -Xclang -disable-llvm-passes -emit-llvm -c program.c -o program.bc
{opt} {shlex.join(opt_flags)} -passes="$(cat pipeline)" program.bc -o program.opt.bc
{clang} {level} {tflags}-Xclang -disable-llvm-passes {shlex.join(codegen_extra)} program.opt.bc {link}-o llvm.exe
timeout "$T" {run}./llvm.exe {into} llvm.now; echo "LLVM alone: exit $?"

if cmp -s expected.now llvm.now; then echo "LLVM alone matches the reference"
else echo "LLVM alone differs from the reference"; fi
cmp -s expected.now mlcc.now && {{ echo "mlcc matches the reference"; exit 0; }}
echo "mlcc differs from the reference:"; diff expected.now mlcc.now; exit 1
"""


def mismatch_dir(out: Path, seed: int, config: Config, target: str = targets.HOST) -> Path:
    """Where a mismatch's reproducer goes: `mismatch-<seed>-<config>`, with the target's
    name after `mismatch-` for another target than x86-64."""
    return out / "-".join(["mismatch", *([target] if target != targets.HOST else []),
                           str(seed), config.name])


def _write_reproducer(out: Path, seed: int, config: Config, program: str, expected: Run,
                      actual_text: str, info: dict, timeout: float, workdir: str,
                      target: targets.Target) -> str:
    where = mismatch_dir(out, seed, config, target.name)
    where.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(program, where / "program.c")
    (where / "flags").write_text(shlex.join(config.argv) + "\n")
    try:
        opt_flags, clang_text = opt_setup(config.opt_level, workdir, target.flags)
    except ToolFailed:
        opt_flags, clang_text = (), CLANG
    pipeline = info.get("pipeline") or config.pipeline or CLANG
    # opt's text for it: `clang` stands for clang's own pipeline, spelled out here
    (where / "pipeline").write_text(resolve(pipeline, clang_text) + "\n")
    (where / "expected.out").write_text(expected.text)
    (where / "actual.out").write_text(actual_text)
    (where / "repro.sh").write_text(_repro_script(config, opt_flags, codegen_args(pipeline, target.flags),
                                                  timeout, target))
    (where / "repro.sh").chmod(0o755)
    (where / "info.json").write_text(json.dumps({"seed": seed, "target": target.name,
                                                 "config": asdict(config), **info}, indent=1) + "\n")
    return str(where)


def _check_config(config: Config, seed: int, program: str, expected: Run, tmp: str,
                  out: Path, timeout: float, result: dict, target: targets.Target | None = None) -> None:
    """Build with one configuration for `target` (the host's by default), run (for
    at most `timeout` CPU seconds), compare; record into `result`."""
    target = target or targets.named(targets.HOST)
    exe = os.path.join(tmp, f"{config.name}.exe")
    log = os.path.join(tmp, f"{config.name}.log")
    cache = tempfile.mkdtemp(prefix="cache-", dir=tmp)
    env = mlcc_environment(cache, log)
    argv = [*MLCC, *config.argv, *target.flags, f"-I{CSMITH_INCLUDE}", *PROGRAM_FLAGS, program,
            *target.link, "-o", exe]
    result["builds"] += 1
    info: dict = {}
    try:
        proc = run_tool(argv, timeout=BUILD_TIMEOUT, capture_stderr=True, env=env)
        stderr = proc.stderr.decode(errors="replace")
    except ToolFailed as exc:
        info = {"kind": "build", "stderr": exc.stderr[-4000:], "error": str(exc)}
        result["mismatches"].append({"config": config.name, "kind": "build",
                                     "dir": _write_reproducer(out, seed, config, program, expected,
                                                              f"<mlcc failed: {exc}>\n", info,
                                                              timeout, tmp, target)})
        return
    entry = _read_log(log)
    pipeline = entry.get("pipeline", "")
    if entry.get("fallback") or "mlcc: warning" in stderr:
        result["fallbacks"].append({"config": config.name, "fallback": entry.get("fallback"),
                                    "stderr": stderr.strip()[-2000:]})
    if not config.pipeline:
        result["pipelines"][config.name] = pipeline
    result["routes"][config.name] = entry.get("route", "")
    actual = run_binary(exe, timeout, target.emulator, target.stdout)
    if actual.status == "timeout":
        result["timeouts"]["mlcc"] += 1
        actual = run_binary(exe, timeout * RETRY_FACTOR, target.emulator, target.stdout)
    result["runs"] += 1
    if actual.text == expected.text:
        return
    kind = "timeout" if actual.status == "timeout" else "output"
    info = {"kind": kind, "pipeline": pipeline, "decision": entry.get("decision"),
            "fallback": entry.get("fallback"), "mlcc_stderr": stderr[-4000:]}
    if pipeline and not entry.get("fallback"):
        try:
            alone = llvm_alone(program, config.opt_level, pipeline, tmp, timeout * RETRY_FACTOR, target)
            info["llvm_alone"] = {"output": alone.text, "reproduces": alone.text != expected.text}
        except ToolFailed as exc:
            info["llvm_alone"] = {"error": str(exc)}
    result["mismatches"].append({"config": config.name, "kind": kind,
                                 "llvm_alone_reproduces": info.get("llvm_alone", {}).get("reproduces"),
                                 "dir": _write_reproducer(out, seed, config, program, expected,
                                                          actual.text, info, timeout, tmp, target)})


def check_program(job: tuple) -> dict:
    """Generate one Csmith program, build and run the reference and every configuration
    for the job's target; `timeout` is the host's limit, longer under an emulator."""
    seed, configs, out, timeout, target_name = job
    target = targets.named(target_name)
    timeout = run_limit(target, timeout)
    start = time.monotonic()
    result = {"seed": seed, "status": "compared", "reason": "", "builds": 0, "runs": 0,
              "mismatches": [], "fallbacks": [], "pipelines": {}, "routes": {},
              "timeouts": {"reference": 0, "mlcc": 0}, "configs": [c.name for c in configs]}

    def skip(reason: str) -> dict:
        result.update(status="skipped", reason=reason, seconds=round(time.monotonic() - start, 2))
        return result

    from mlcc.toolchain import find

    with tempfile.TemporaryDirectory(prefix=f"mlcc-difftest-{seed}-") as tmp:
        program = os.path.join(tmp, "program.c")
        try:
            # in tmp: csmith leaves a platform.info file in its working directory
            text = run_tool(["env", f"--chdir={tmp}", find_csmith(), "--seed", str(seed)],
                            capture_stdout=True, capture_stderr=True, timeout=120).stdout
        except ToolFailed as exc:
            return skip(f"csmith failed ({exc})")
        Path(program).write_bytes(text)
        reference = os.path.join(tmp, "reference.exe")
        try:
            run_tool([find("clang"), REFERENCE_LEVEL, *target.flags, f"-I{CSMITH_INCLUDE}", *PROGRAM_FLAGS,
                      program, *target.link, "-o", reference], capture_stderr=True, timeout=BUILD_TIMEOUT)
        except ToolFailed:
            return skip("reference does not build")
        expected = run_binary(reference, timeout, target.emulator, target.stdout)
        if expected.status == "timeout":
            result["timeouts"]["reference"] += 1
            return skip("reference timed out")
        if expected.status != "exit 0":
            return skip(f"reference ends with {expected.status.split()[0]}")
        result["expected"] = expected.stdout.strip()
        for config in configs:
            _check_config(config, seed, program, expected, tmp, out, timeout, result, target)
    result["seconds"] = round(time.monotonic() - start, 2)
    return result


def check_on_worker(job: tuple, files: dict) -> tuple[dict, dict[str, tuple[bytes, int]]]:
    """Worker: `check_program` with the reproducers written in a directory of the
    worker's; the result (naming them in the job's DIR) and their files for the head to
    keep (`keep_reproducers`): relative path -> (bytes, mode)."""
    seed, configs, out, timeout, target = job
    with tempfile.TemporaryDirectory(prefix="mlcc-reproducers-") as here:
        result = check_program((seed, configs, Path(here), timeout, target))
        kept = {str(path.relative_to(here)): (path.read_bytes(), path.stat().st_mode & 0o777)
                for path in sorted(Path(here).rglob("*")) if path.is_file()}
        for mismatch in result["mismatches"]:
            mismatch["dir"] = str(Path(out) / Path(mismatch["dir"]).relative_to(here))
    return result, kept


def keep_reproducers(out: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write a worker's reproducer files under `out`."""
    for name, (data, mode) in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


# ----------------------------------------------------------------------------- a campaign


def summarize(results: dict[str, dict], configs: list[Config], meta: dict) -> dict:
    """The campaign's numbers over every program result so far."""
    done = list(results.values())
    compared = [r for r in done if r["status"] == "compared"]
    skipped: dict[str, int] = {}
    for r in done:
        if r["status"] == "skipped":
            skipped[r["reason"]] = skipped.get(r["reason"], 0) + 1
    chosen: dict[str, dict[str, int]] = {}
    for r in compared:
        for name, p in r.get("pipelines", {}).items():
            chosen.setdefault(name, {})
            chosen[name][p] = chosen[name].get(p, 0) + 1
    # how each configuration's objects were made (the log's `route`: "plugin" inside clang,
    # "opt+clang", "clang"), so that a campaign says which route it checked
    routes: dict[str, dict[str, int]] = {}
    for r in compared:
        for name, route in r.get("routes", {}).items():
            routes.setdefault(name, {})
            routes[name][route] = routes[name].get(route, 0) + 1
    seconds = [r["seconds"] for r in done if "seconds" in r]
    return {
        **meta,
        "programs": len(done),
        "compared": len(compared),
        "configurations": [{"name": c.name, "flags": list(c.argv)} for c in configs],
        "builds": sum(r["builds"] for r in done),
        "runs_compared": sum(r["runs"] for r in done),
        "mismatches": [{"seed": r["seed"], **m} for r in done for m in r["mismatches"]],
        "skipped": dict(sorted(skipped.items())),
        "skipped_seeds": {str(r["seed"]): r["reason"] for r in done if r["status"] == "skipped"},
        "timeouts": {"reference": sum(r["timeouts"]["reference"] for r in done),
                     "mlcc_retried": sum(r["timeouts"]["mlcc"] for r in done)},
        "fallbacks": [{"seed": r["seed"], **f} for r in done for f in r["fallbacks"]],
        "model_choices": chosen,
        "routes": routes,
        "seconds_per_program": round(sum(seconds) / len(seconds), 2) if seconds else None,
        "results": {k: results[k] for k in sorted(results, key=int)},
    }


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def summary_file(out: Path, target: str = targets.HOST) -> Path:
    """A campaign's summary in `out`: SUMMARY for x86-64, `summary-<target>.json` for another."""
    return Path(out) / (SUMMARY if target == targets.HOST else f"summary-{target}.json")


def campaign(seeds, configs: list[Config], out: Path, *, jobs: int = 2, timeout: float = RUN_TIMEOUT,
             forced_per_program: int = 0, command: str = "", target: str = targets.HOST,
             backend: str = "local") -> dict:
    """Check every seed for `target` (resuming from its summary in `out`) on the engine's
    `backend`; return and write the summary. `timeout` is the host's CPU limit per run
    (see `run_limit`)."""
    from mlcc.toolchain import find

    entry = targets.named(target)
    find_csmith()
    find("clang"), find("opt")  # fail here, naming what to install, not in every worker
    check_target(entry)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = summary_file(out, target)
    key = fingerprint(configs, forced_per_program, target)
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if previous and previous.get("fingerprint") != key:
        stale = out / f"{summary_path.stem}-{previous.get('fingerprint', 'old')}.json"
        os.replace(summary_path, stale)
        print(f"difftest: other configurations in {summary_path}; kept it as {stale.name}",
              file=sys.stderr)
        previous = {}
    results: dict[str, dict] = dict(previous.get("results", {}))
    forced_levels = sorted({c.opt_level for c in configs if c.pipeline})
    meta = {"fingerprint": key, "command": command or previous.get("command", ""), "target": target,
            "candidates_from": {level: candidate_pipelines(level, target)[1] for level in forced_levels},
            "models": model_digests(target=target),
            "forced_per_program": forced_per_program,
            "run_timeout": timeout, "csmith": "csmith --seed N",
            "reference": shlex.join(["clang-19", REFERENCE_LEVEL, *entry.flags])}
    if target != targets.HOST:
        meta.update(link=[targets.portable(w) for w in entry.link], emulator=list(entry.emulator),
                    run_timeout_emulated=run_limit(entry, timeout))
    todo = [s for s in seeds if str(s) not in results]
    elapsed = float(previous.get("seconds", 0.0))
    start = time.monotonic()

    def save() -> dict:
        seconds = round(elapsed + time.monotonic() - start, 1)
        summary = summarize(results, configs, {**meta, "seconds": seconds})
        _write_json(summary_path, summary)
        return summary

    jobs_list = [(s, configs_for_program(s, configs, forced_per_program), out, timeout, target)
                 for s in todo]
    if not jobs_list:
        return save()
    checked = Engine(backend, jobs).map(check_on_worker, jobs_list, title="difftest",
                                        count=lambda checked: checked[0]["runs"])
    for result, reproducers in checked:  # the progress line counts runs compared
        keep_reproducers(out, reproducers)
        results[str(result["seed"])] = result
        save()
        for m in result["mismatches"]:
            print(f"difftest: MISMATCH seed {result['seed']} {m['config']} ({m['kind']}): {m['dir']}",
                  file=sys.stderr)
    return save()


# ----------------------------------------------------------------------------- command line


@click.command("difftest")
@click.option("-n", "count", default=100, show_default=True, help="Programs (consecutive seeds).")
@click.option("--seed-start", default=1, show_default=True)
@click.option("--jobs", default=2, show_default=True, help="Programs checked in parallel.")
@click.option("--out", default=str(DEFAULT_OUT), show_default=True, type=click.Path(file_okay=False))
@click.option("--levels", default="zs", show_default=True, help="Optimization levels (z, s).")
@click.option("--trials", default=TRIALS, show_default=True, help="K of -fmlcc-trials (0: none).")
@click.option("--forced-levels", default="zs", show_default=True,
              help="Levels at which every candidate is forced ('' for none).")
@click.option("--forced-per-program", default=0, show_default=True,
              help="Forced candidates per program, rotating with the seed (0: all).")
@click.option("--timeout", default=RUN_TIMEOUT, show_default=True,
              help=f"CPU seconds per program run ({EMULATED_FACTOR}x under an emulator).")
@click.option("--target", "target", type=click.Choice(list(targets.table())), default=targets.HOST,
              show_default=True, help="Build and run every program for this target (mlcc/data/targets.toml).")
@click.option("--lto", "lto", multiple=True, type=click.Choice(list(LTO_FLAGS)),
              help="Also build each program with -flto (full) or -flto=thin, linked by lld.")
@engine_option
def run(count, seed_start, jobs, out, levels, trials, forced_levels, forced_per_program, timeout, target,
        lto, backend):
    """Check N Csmith programs; write DIR/summary.json (DIR/summary-<target>.json for another
    target) and DIR/mismatch-[<target>-]<seed>-<config>/."""
    try:
        configs = configurations(levels, trials_levels=levels, forced_levels=forced_levels,
                                 trials=trials, target=target, lto=lto)
        command = shlex.join(["python", "-m", "mlcc.learn.check", *sys.argv[1:]])
        summary = campaign(range(seed_start, seed_start + count), configs, Path(out), jobs=jobs,
                           timeout=timeout, forced_per_program=forced_per_program, command=command,
                           target=target, backend=backend)
    except MlccError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{summary['programs']} programs ({summary['compared']} compared, "
               f"{sum(summary['skipped'].values())} skipped), {len(configs)} configurations, "
               f"{summary['builds']} mlcc builds, {summary['runs_compared']} runs compared, "
               f"{len(summary['mismatches'])} mismatches, {len(summary['fallbacks'])} fallbacks, "
               f"{summary['timeouts']['reference']} reference timeouts; "
               f"{summary['seconds']} s -> {summary_file(Path(out), target)}")
    for m in summary["mismatches"]:
        click.echo(f"  MISMATCH seed {m['seed']} {m['config']} ({m['kind']}): {m['dir']}")
    if summary["mismatches"]:
        click.get_current_context().exit(1)
