"""The measurement engine: map a function over independent tasks, the results
streamed back to the head as they finish, on this machine or on a Ray cluster.

    engine = Engine("ray", jobs=2)   # from --engine (`engine_option`) and --jobs
    for rows in engine.map(measure_unit, jobs, title="explore",
                           inputs=lambda job: [job.unit.bitcode], count=len):
        store.append(rows)

The function is called as `fn(task, files)`, `files` mapping each path of
`inputs(task)` to where that file is on the worker. Backends:

- `local` (the default): forked worker processes on this machine, each fed one
  task at a time, Ctrl-C left to the head; a task whose worker dies is run again
  (at most `RETRIES` times). Input files are read where they are.
- `ray` (`--engine ray` or MLCC_ENGINE=ray; `pip install 'mlcc[ray]'`): Ray tasks
  on the cluster RAY_ADDRESS names, or on a Ray started here with `jobs` CPUs.
  Input files travel through Ray's object store by content, each put once while
  tasks need it; a worker keeps them under their sha256. Ray re-runs a task whose
  worker died (`RETRIES`).

Either way only the head writes tables: workers return values. Every task carries
the head's LLVM (`llvm_identity`) and a worker with another one refuses it, so
that a mixed cluster cannot put two compilers' sizes in one table.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import os
import pickle
import signal
import socket
import tempfile
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click

from mlcc.errors import MlccError, WorkerMismatch
from mlcc.output_cache import tool_identity
from mlcc.process import run_tool
from mlcc.toolchain import find

BACKENDS = ("local", "ray")
RETRIES = 3  # runs of a task after its worker died (Ray's own default)
RAY_HINT = "pip install 'mlcc[ray]'"
# Tasks handed to Ray at once, per CPU of the cluster: enough to keep every CPU busy
# while results come back, few enough that the object store holds only their inputs.
RAY_TASKS_PER_CPU = 2


def engine_option(command):
    """The `--engine` option of a measuring step (MLCC_ENGINE gives its default)."""
    return click.option("--engine", "backend", type=click.Choice(BACKENDS), default="local",
                        envvar="MLCC_ENGINE", show_default=True, show_envvar=True,
                        help="Where the measurements run: forked processes here, or Ray "
                             "(the cluster at RAY_ADDRESS, else a Ray of --jobs CPUs here).")(command)


@functools.cache
def llvm_identity() -> tuple:
    """What must be the same for two machines' sizes to share a table: clang's version
    line and the path, size and modification time of clang and opt."""
    clang, opt = find("clang"), find("opt")
    version = run_tool([clang, "--version"], capture_stdout=True).stdout.decode().splitlines()[0]
    return (version, *(tuple(tool) for tool in tool_identity(clang, opt)))


def _same_llvm(expected: tuple) -> None:
    """Refuse to measure on a worker whose LLVM is not the head's, or that has none."""
    try:
        found = llvm_identity()
    except MlccError as exc:
        raise WorkerMismatch(f"worker {socket.gethostname()} has no LLVM 19 ({exc}): install the "
                             "head's LLVM on every node of the cluster, or leave this one out") from None
    if found != expected:
        raise WorkerMismatch(f"worker {socket.gethostname()} has another LLVM than the head "
                             f"({found} against {expected}): give every node of the cluster "
                             "the same LLVM, or leave this one out")


@dataclass(frozen=True)
class Engine:
    """Where a step's tasks run: `backend` (one of BACKENDS) with `jobs` workers here."""

    backend: str = "local"
    jobs: int = os.cpu_count() or 2
    identity: tuple | None = None  # the head's LLVM; None: `llvm_identity()`

    def map(self, fn: Callable, tasks: Iterable, *, title: str,
            inputs: Callable[[Any], Iterable[str]] | None = None,
            count: Callable[[Any], int] | None = None) -> Iterator:
        """`fn(task, files)` for every task, each result yielded once as it comes (in no
        particular order), with a progress line; `count(result)` is how many
        measurements a result holds (1 if not given). Starting the backend happens
        here, so that a bad setup fails before any result is written."""
        tasks = list(tasks)
        inputs = inputs or (lambda task: ())
        if not tasks:
            return iter(())
        identity = self.identity or llvm_identity()
        if self.backend == "ray":
            stream = _ray_stream(_start_ray(self.jobs), fn, tasks, inputs, identity)
        else:
            stream = _local_stream(fn, tasks, inputs, identity, max(1, self.jobs))
        return _progress(stream, len(tasks), title, count or (lambda result: 1))


def _progress(results: Iterator, total: int, title: str, count: Callable) -> Iterator:
    """`results`, passed through while a progress line shows tasks done, measurements
    per second and the time left."""
    # here, not at the top: `mlcc-tool` imports this module for `engine_option` alone
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[rows]} measurements, {task.fields[rate]}/s"))
    start, rows = time.perf_counter(), 0
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            bar = progress.add_task(title, total=total, rows=0, rate="-")
            for result in results:
                rows += count(result)
                rate = rows / max(time.perf_counter() - start, 1e-9)
                progress.update(bar, advance=1, rows=rows, rate=f"{rate:.1f}")
                yield result
    finally:
        results.close()  # stops the workers when the reader stops early


# ----------------------------------------------------------------------------- local


def _local_stream(fn: Callable, tasks: list, inputs: Callable, identity: tuple,
                  jobs: int) -> Iterator:
    """Forked workers, one task each at a time; a worker that dies has its task run
    again in a new one."""
    ctx = multiprocessing.get_context("fork")
    workers: dict = {}  # the head's end of a worker's pipe -> its process
    idle: list = []
    busy: dict = {}  # pipe -> index of the task its worker runs
    pending = deque(range(len(tasks)))
    deaths: Counter = Counter()

    def spawn() -> None:
        head, end = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(end, head, fn, identity), daemon=True)
        process.start()
        end.close()  # the worker's alone now: its death is the head's end-of-file
        workers[head] = process
        idle.append(head)

    try:
        for _ in range(min(jobs, len(tasks))):
            spawn()
        while pending or busy:
            while pending and idle:
                pipe, index = idle.pop(), pending.popleft()
                pipe.send((tasks[index], {path: path for path in inputs(tasks[index])}))
                busy[pipe] = index
            for pipe in wait(list(busy)):
                index = busy.pop(pipe)
                try:
                    ok, value = pipe.recv()
                except EOFError:
                    process = workers.pop(pipe)
                    process.join()
                    deaths[index] += 1
                    if deaths[index] > RETRIES:
                        raise MlccError(f"a task's worker died {deaths[index]} times (last exit "
                                        f"code {process.exitcode}): {tasks[index]!r:.200}") from None
                    pending.appendleft(index)
                    spawn()
                    continue
                idle.append(pipe)
                if not ok:
                    raise value
                yield value
    finally:
        for pipe, process in workers.items():
            if pipe in busy:
                process.terminate()  # stopped mid-task: an error or Ctrl-C in the head
            else:
                with contextlib.suppress(OSError):  # an idle worker may have died too
                    pipe.send(None)  # nothing more to do
            pipe.close()
        for process in workers.values():
            process.join()


def _serve(pipe, head_end, fn: Callable, identity: tuple) -> None:
    """A local worker: run the tasks the head sends until it says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the head's to handle
    head_end.close()  # the fork's copy: the head's death must be this end's end of file
    while True:
        try:
            message = pipe.recv()
        except EOFError:
            return
        if message is None:
            return
        task, files = message
        try:
            _same_llvm(identity)
            reply = (True, fn(task, files))
        except Exception as exc:
            reply = (False, _portable(exc))
        try:
            pipe.send(reply)
        except OSError:  # the head is gone
            return


def _portable(exc: Exception) -> Exception:
    """`exc` as it can travel back to the head, with the worker's traceback as a note."""
    exc.__notes__ = [*getattr(exc, "__notes__", ()), traceback.format_exc()]  # add_note() in 3.11
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return MlccError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


# ----------------------------------------------------------------------------- ray


def _start_ray(jobs: int):
    """Ray, connected to the cluster at RAY_ADDRESS or started here with `jobs` CPUs."""
    try:
        import ray
    except ImportError:
        raise MlccError(f"--engine ray needs Ray, which is not installed: {RAY_HINT}") from None
    if ray.is_initialized():
        return ray
    address = os.environ.get("RAY_ADDRESS")
    if address and not _answers(address):  # ray.init would retry for minutes
        raise MlccError(f"cannot reach the Ray cluster at RAY_ADDRESS={address}: check the "
                        "address and that `ray start --head` runs there, or unset RAY_ADDRESS "
                        "to run on this machine")
    try:
        if address:
            ray.init()  # reads RAY_ADDRESS, as every Ray program does
        else:
            ray.init(address="local", num_cpus=jobs, include_dashboard=False)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if address:
            raise MlccError(f"cannot reach the Ray cluster at RAY_ADDRESS={address} ({reason}): "
                            "check the address and that `ray start --head` runs there, or "
                            "unset RAY_ADDRESS to run on this machine") from None
        raise MlccError(f"cannot start Ray here ({reason}): run with --engine local") from None
    return ray


def _answers(address: str, seconds: float = 5) -> bool:
    """Whether something listens at a Ray address (`host:port` or `ray://host:port`);
    True for the addresses Ray resolves itself (`auto`, `local`)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return True
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError:
        return False
    return True


def _ray_stream(ray, fn: Callable, tasks: list, inputs: Callable, identity: tuple) -> Iterator:
    """Ray tasks, a bounded number in flight; each input file is put in the object store
    once, under its sha256, and dropped when no task in flight reads it."""
    remote = ray.remote(num_cpus=1, max_retries=RETRIES)(_ray_task)
    window = max(2, RAY_TASKS_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))
    pending = deque(range(len(tasks)))
    running: dict = {}  # object ref of a task's result -> the digests of its inputs
    stored: dict[str, Any] = {}  # sha256 -> object ref of the file's bytes
    readers: Counter = Counter()  # sha256 -> tasks in flight that read it
    digests: dict[str, str] = {}  # path on the head -> sha256

    def ship(path: str) -> tuple[str, Any]:
        digest = digests.get(path)
        if digest not in stored:
            data = Path(path).read_bytes()
            digest = digests[path] = hashlib.sha256(data).hexdigest()
            stored[digest] = ray.put(data)
        readers[digest] += 1
        return digest, stored[digest]

    try:
        while pending or running:
            while pending and len(running) < window:
                task = tasks[pending.popleft()]
                files = {path: ship(path) for path in inputs(task)}
                running[remote.remote(fn, task, files, identity)] = [d for d, _ in files.values()]
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                for digest in running.pop(ref):
                    readers[digest] -= 1
                    if not readers[digest]:
                        del stored[digest], readers[digest]
                yield _ray_result(ray, ref)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)


def _ray_result(ray, ref):
    """A task's result; its error as the worker raised it."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise (exc.cause or MlccError(str(exc))) from None
    except ray.exceptions.WorkerCrashedError as exc:
        raise MlccError(f"a task's worker died {RETRIES + 1} times: {exc}") from None


def _ray_task(fn: Callable, task, files: dict[str, tuple[str, Any]], identity: tuple):
    """A Ray worker: the task's input files written here once, named by their sha256."""
    import ray

    _same_llvm(identity)
    store = Path(tempfile.gettempdir()) / "mlcc-inputs"
    store.mkdir(exist_ok=True)
    local = {}
    for path, (digest, ref) in files.items():
        here = store / (digest + Path(path).suffix)
        if not here.exists():
            partial = here.with_name(f"{here.name}.{os.getpid()}")
            partial.write_bytes(ray.get(ref))
            os.replace(partial, here)  # whole or not there, whatever other workers do
        local[path] = str(here)
    return fn(task, local)
