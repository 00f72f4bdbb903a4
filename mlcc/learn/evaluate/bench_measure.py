"""What one benchmark build measures, and the driver alone.

A build's sizes: the objective of every object file it left on disk, keyed by
its path in the tree (so two builds pair up file by file), and the
`.text+.data+.rodata` of its linked programs and libraries. Its times: wall and
CPU of the whole build from `getrusage(RUSAGE_CHILDREN)`, and for mlcc the
seconds per stage summed over its `MLCC_LOG` lines. `driver_speed` times the
driver alone on a tiny file and on sqlite's amalgamation, against clang.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from mlcc.errors import MlccError
from mlcc.learn.evaluate import projects as pj
from mlcc.learn.paths import REPO
from mlcc.objective import counts, object_size, section_sizes
from mlcc.pipeline import CLANG

# Stages in MLCC_LOG's "seconds", in the order a unit goes through them.
STAGES = ("frontend", "target", "model", "opt", "codegen", "whole", "fallback")

# Objects of CMake's compiler identification and try-compile probes are not
# the project's (and are built without the project's flags).
_PROBE_DIR = re.compile(r"^(\d+(\.\d+)+|CMakeScratch|CMakeTmp|CompilerId.*)$")

# mlcc settings a build runs with; the caller's own MLCC_* variables (other
# than the model and the toolchain) must not change what is measured.
KEPT_MLCC_VARIABLES = ("MLCC_MODEL", "MLCC_LLVM_BIN", "MLCC_CLANG", "MLCC_CLANGXX", "MLCC_OPT",
                       "MLCC_ONE_PROCESS",  # MLCC_ONE_PROCESS=0: the split route, side by side
                       "MLCC_FORK_SERVER")  # MLCC_FORK_SERVER=0: clang started per run, side by side

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


# --------------------------------------------------------------------------- sizes and times of one build


def children_cpu() -> float:
    """User + system seconds of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def linked_size(path: str | os.PathLike) -> int:
    """.text+.data+.rodata (with subsections) of a linked program or shared library."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(size for name, size in section_sizes(data).items() if counts(name))


def is_code(name: str) -> bool:
    """.text and its subsections: the code part of the objective."""
    return name == ".text" or name.startswith(".text.")


def sizes(path: str | os.PathLike) -> tuple[int, int]:
    """(objective, code bytes) of an ELF file, from one read of its section headers."""
    with open(path, "rb") as f:
        table = section_sizes(f.read())
    return (sum(size for name, size in table.items() if counts(name)),
            sum(size for name, size in table.items() if is_code(name)))


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
        if e.get("pipeline") not in (None, "", CLANG, f"default<O{e.get('opt_level', 'z')}>"):
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


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- driver speed


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


def _process_cpu(pid: int) -> float | None:
    """CPU seconds so far of process `pid`, of its children it has waited for and of
    those still running (a compile server's clang fork server, which it reaps only when
    it stops); None when it is gone (`compile_server.process_cpu`)."""
    from mlcc.compile_server import process_cpu
    try:
        total = process_cpu(pid)
    except OSError:
        return None
    for child in _children(pid):
        try:
            total += process_cpu(child)
        except OSError:  # reaped meanwhile: counted in the parent's next reading
            pass
    return total


def _children(pid: int) -> list[int]:
    """The running children of process `pid` (/proc's `children` of each of its threads)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


_server_pids: dict[Path, list[int]] = {}


def _servers_cpu(runtime: Path | None) -> float:
    """CPU seconds so far of the servers in `runtime`'s mlcc/ (their finished children
    included, and the servers that exited on their own): what the native client's
    compiles cost outside the client's process.
    Read from /proc, the servers asked for their pids only when one is new or gone (an
    answer costs the server a fork, which would be counted)."""
    if runtime is None:
        return 0.0
    pids = _server_pids.get(runtime, [])
    cpu = [_process_cpu(pid) for pid in pids]
    from mlcc import model_server
    if not pids or None in cpu:
        pids = _server_pids[runtime] = [int(s["pid"]) for s in model_server.servers(str(runtime / "mlcc"))]
        cpu = [_process_cpu(pid) for pid in pids]
    return sum(c for c in cpu if c is not None) + sum(model_server.exited_cpu(str(runtime / "mlcc")).values())


def _timed(argv: list[str], env: dict[str, str], cwd: Path,
           runtime: Path | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one command run to completion; the CPU includes what the
    servers in `runtime` spent meanwhile."""
    from mlcc.process import run_tool

    served = _servers_cpu(runtime)
    before, start = children_cpu(), time.perf_counter()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        run_tool(argv, env=env, capture_stdout=True, capture_stderr=True)
    finally:
        os.chdir(old)
    wall, cpu = time.perf_counter() - start, children_cpu() - before
    return wall, cpu + _servers_cpu(runtime) - served


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
                if not k.startswith("MLCC_") or k in KEPT_MLCC_VARIABLES}
    # one compile on its own: the model loads in the compiler process, no model server;
    # the native client's compile server runs in a runtime directory of the benchmark's
    # own, so that its CPU is counted with each command's (_timed) and it stops after
    runtime = workdir / "run"
    runtime.mkdir(mode=0o700)
    base_env.update(MLCC_CONFIG=os.devnull, MLCC_TRIALS="0", MLCC_SEARCH="0", MLCC_SERVER="0",
                    XDG_RUNTIME_DIR=str(runtime))
    out: dict = {"date": now_utc(), "loadavg_before": loadavg(), "files": {}}
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
                wall, cpu = _timed(argv, env, source.parent, runtime if name.startswith("mlcc") else None)
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
    from mlcc import model_server
    model_server.stop_all(str(runtime / "mlcc"))
    out["loadavg_after"] = loadavg()
    return out
