"""The measurement engine (mlcc/learn/engine.py): every result streamed once on either
backend, a worker with another LLVM refused, a task whose worker dies run again, and a
small search whose table is the same on Ray as on the local pool.

The Ray tests skip when Ray is not installed, unless MLCC_REQUIRE_RAY is set (then
they fail): `scripts/setup.sh` installs it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlcc.errors import MlccError, WorkerMismatch
from mlcc.learn.engine import Engine
from mlcc.learn.measure import Unit
from mlcc.learn.search import search
from mlcc.pipeline import CLANG

try:
    import ray
except ImportError:
    ray = None

needs_ray = pytest.mark.skipif(ray is None and not os.environ.get("MLCC_REQUIRE_RAY"),
                               reason="Ray is not installed (pip install 'mlcc[ray]'); "
                                      "MLCC_REQUIRE_RAY=1 makes this a failure")
CLANG19 = shutil.which("clang-19")
OTHER_LLVM = ("clang version 18.1.0", ("/usr/bin/clang-18", 1, 1), ("/usr/bin/opt-18", 1, 1))
SOURCES = {
    "fill": "int t[64]; int fill(int n) { int s = 0; for (int i = 0; i < n && i < 64; i++) "
            "{ t[i] = i * i; s += t[i]; } return s; }\n",
    "pick": "int pick(int k) { switch (k) { case 0: return 3; case 1: return 9; case 2: return 27; "
            "case 3: return 81; default: return k * 5; } }\n",
    "copy": "void copy(char *d, const char *s, int n) { while (n--) *d++ = *s++; }\n"
            "int sum(const int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i]; return s; }\n",
}


def square(x: int, files: dict) -> int:
    return x * x


def dies_once(task: tuple[int, str], files: dict) -> int:
    """Kills its worker the first time it runs task 2 (a marker file remembers)."""
    index, marker = task
    if index == 2 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(9)
    return index


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three units as `mlcc` collects them: bitcode and the flags they were compiled with."""
    units = tmp_path_factory.mktemp("project")
    for name, text in SOURCES.items():
        (units / f"{name}.c").write_text(text)
        subprocess.run([CLANG19, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                        str(units / f"{name}.c"), "-o", str(units / f"{name}.bc")], check=True)
        (units / f"{name}.json").write_text(json.dumps({"codegen_args": ["-Oz"], "driver": "c"}))
    return units


def small_search(corpus: Path, store_path: Path, engine: Engine) -> dict:
    """clang's pipeline, opt's -Oz and one greedy edit on every unit: (unit, pipeline) -> size."""
    jobs = [search.Job(Unit.load(corpus, name), [CLANG, "default<Oz>"], {}, greedy=1)
            for name in SOURCES]
    search.run_jobs(jobs, search.Store(store_path), engine, "test search")
    with gzip.open(store_path, "rt") as f:
        rows = [json.loads(line) for line in f]
    table = {(r["unit"], r["pipeline"]): r["size"] for r in rows}
    assert len(table) == len(rows) == 3 * len(SOURCES)  # nothing measured twice
    return table


@pytest.fixture(scope="module")
def ray_here():
    """A Ray of 2 CPUs on this machine, running this module's functions by value."""
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def test_the_local_engine_streams_every_result_once():
    results = list(Engine("local", 2).map(square, range(40), title="squares"))
    assert sorted(results) == [x * x for x in range(40)]


def test_a_task_that_kills_its_local_worker_is_run_again(tmp_path):
    tasks = [(i, str(tmp_path / "died")) for i in range(6)]
    assert sorted(Engine("local", 2).map(dies_once, tasks, title="deaths")) == list(range(6))
    assert (tmp_path / "died").exists()


def test_a_local_worker_with_another_llvm_is_refused(corpus, tmp_path):
    with pytest.raises(WorkerMismatch, match="another LLVM than the head"):
        list(Engine("local", 2, identity=OTHER_LLVM).map(square, range(4), title="refused"))
    with pytest.raises(WorkerMismatch):
        small_search(corpus, tmp_path / "table.jsonl.gz", Engine("local", 1, identity=OTHER_LLVM))
    assert not (tmp_path / "table.jsonl.gz").exists()


def test_without_ray_the_ray_engine_says_how_to_install_it(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    with pytest.raises(MlccError, match=r"pip install 'mlcc\[ray\]'"):
        small_search(corpus, tmp_path / "table.jsonl.gz", Engine("ray", 2))
    assert not (tmp_path / "table.jsonl.gz").exists()  # no partial table


@needs_ray
def test_an_unreachable_ray_address_is_one_error_and_no_table(corpus, tmp_path, monkeypatch):
    import ray as real_ray
    monkeypatch.setattr(real_ray, "is_initialized", lambda: False)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(MlccError, match="cannot reach the Ray cluster at RAY_ADDRESS=127.0.0.1:1"):
        small_search(corpus, tmp_path / "table.jsonl.gz", Engine("ray", 2))
    assert not (tmp_path / "table.jsonl.gz").exists()


@needs_ray
@pytest.mark.skipif(CLANG19 is None, reason="needs clang-19")
def test_a_search_on_ray_writes_the_local_engines_table(ray_here, corpus, tmp_path):
    local = small_search(corpus, tmp_path / "local.jsonl.gz", Engine("local", 2))
    on_ray = small_search(corpus, tmp_path / "ray.jsonl.gz", Engine("ray", 2))
    assert on_ray == local and all(local.values())
    # the bitcode went through the object store, kept on the worker under its sha256
    digest = hashlib.sha256((corpus / "fill.bc").read_bytes()).hexdigest()
    assert (Path(tempfile.gettempdir()) / "mlcc-inputs" / f"{digest}.bc").exists()


@needs_ray
def test_ray_streams_every_result_once_and_reruns_a_task_whose_worker_died(ray_here, tmp_path):
    assert sorted(Engine("ray", 2).map(square, range(40), title="squares")) == [x * x for x in range(40)]
    tasks = [(i, str(tmp_path / "died")) for i in range(6)]
    assert sorted(Engine("ray", 2).map(dies_once, tasks, title="deaths")) == list(range(6))
    assert (tmp_path / "died").exists()


@needs_ray
def test_a_ray_worker_with_another_llvm_is_refused(ray_here):
    with pytest.raises(WorkerMismatch, match="another LLVM than the head"):
        list(Engine("ray", 2, identity=OTHER_LLVM).map(square, range(4), title="refused"))
