"""The measurement engine (mlcc/learn/engine.py): every result streamed once on either
backend, a worker with another LLVM (or none) refused, a task whose worker dies run
again, a small search and a labeling step whose tables are the same on Ray as on the
local pool, and the steps ported to it (data-share, corpus derive, triage, difftest's
reproducers) giving what their worker gives when called here.

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

from click.testing import CliRunner

from mlcc import model
from mlcc.errors import MlccError, ToolchainMissing, WorkerMismatch
from mlcc.learn import engine
from mlcc.learn.check import difftest, triage
from mlcc.learn.corpus import derive
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine
from mlcc.learn.measure import Unit
from mlcc.learn.search import data_share, search
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


def measured(corpus: Path, store_path: Path, engine: Engine, pipelines: list[str], greedy: int) -> dict:
    """`pipelines` and `greedy` edits on every unit into a table: (unit, pipeline) -> size."""
    jobs = [search.Job(Unit.load(corpus, name), pipelines, {}, greedy=greedy) for name in SOURCES]
    search.run_jobs(jobs, search.Store(store_path), engine, "test")
    with gzip.open(store_path, "rt") as f:
        rows = [json.loads(line) for line in f]
    table = {(r["unit"], r["pipeline"]): r["size"] for r in rows}
    assert len(table) == len(rows) == (len(pipelines) + greedy) * len(SOURCES)  # nothing twice
    return table


def small_search(corpus: Path, store_path: Path, engine: Engine) -> dict:
    """clang's pipeline, opt's -Oz and one greedy edit on every unit (`search explore`'s jobs)."""
    return measured(corpus, store_path, engine, [CLANG, "default<Oz>"], greedy=1)


def small_label(corpus: Path, store_path: Path, engine: Engine) -> dict:
    """clang's pipeline and the bundled -Oz model's first candidates on every unit, no
    edits (`search label`'s jobs)."""
    candidates = [p for p in model.load(str(model.bundled_model_path("z"))).candidates if p != CLANG]
    return measured(corpus, store_path, engine, [CLANG, *candidates[:3]], greedy=0)


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


def test_a_worker_without_llvm_is_refused_and_no_table_written(corpus, tmp_path, monkeypatch):
    identity = engine.llvm_identity()

    def no_llvm(tool):
        raise ToolchainMissing(f"{tool}-19 not found")
    monkeypatch.setattr(engine, "find", no_llvm)  # what the forked workers find
    engine.llvm_identity.cache_clear()
    try:
        with pytest.raises(WorkerMismatch, match="has no LLVM 19 .*clang-19 not found"):
            small_search(corpus, tmp_path / "table.jsonl.gz", Engine("local", 2, identity=identity))
    finally:
        engine.llvm_identity.cache_clear()
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
@pytest.mark.skipif(CLANG19 is None, reason="needs clang-19")
def test_a_labeling_step_on_ray_writes_the_local_engines_table(ray_here, corpus, tmp_path):
    local = small_label(corpus, tmp_path / "local.jsonl.gz", Engine("local", 2))
    assert small_label(corpus, tmp_path / "ray.jsonl.gz", Engine("ray", 2)) == local
    assert all(local.values())


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


# ----------------------------------------------------------------------------- ported steps

BACKENDS = ["local", pytest.param("ray", marks=needs_ray)]


@pytest.fixture
def engine_backend(request):
    """The backend a test runs on; Ray's started for it when asked for."""
    if request.param == "ray":
        request.getfixturevalue("ray_here")
    return request.param


@pytest.mark.parametrize("engine_backend", BACKENDS, indirect=True)
def test_data_share_through_the_engine_is_its_worker_here(corpus, engine_backend):
    units = [Unit.load(corpus, name) for name in SOURCES]
    here = dict(data_share.measure_unit(u, {u.bitcode: u.bitcode}) for u in units)
    through = dict(Engine(engine_backend, 2).map(data_share.measure_unit, units, title="data share",
                                                 inputs=lambda u: [u.bitcode]))
    assert through == here and all(sizes[0] > 0 for sizes in here.values())


@pytest.mark.parametrize("engine_backend", BACKENDS, indirect=True)
def test_triage_through_the_engine_is_its_worker_here(corpus, engine_backend):
    tasks = [(Unit.load(corpus, name), [(0, "default<Oz>"), (1, "clang[machine-outliner]")])
             for name in SOURCES]
    here = sorted((row for task in tasks for row in triage.triage_unit(task, {task[0].bitcode: task[0].bitcode})),
                  key=lambda r: (r["unit"], r["candidate"]))
    through = sorted((row for rows in Engine(engine_backend, 2).map(
        triage.triage_unit, tasks, title="triage", inputs=lambda task: [task[0].bitcode]) for row in rows),
        key=lambda r: (r["unit"], r["candidate"]))
    assert through == here and {r["verdict"] for r in here} <= {"code", "suspect"}


@pytest.mark.parametrize("engine_backend", BACKENDS, indirect=True)
def test_corpus_derive_through_the_engine_writes_what_its_worker_writes_here(tmp_path, monkeypatch,
                                                                              engine_backend):
    build = tmp_path / "build"
    build.mkdir()
    monkeypatch.setenv("MLCC_DATA", str(tmp_path / "data"))
    collected = Layout.from_environment().units("proj")
    collected.mkdir(parents=True)
    units = []
    for name, text in SOURCES.items():
        (build / f"{name}.c").write_text(text)
        (collected / f"{name}.json").write_text(json.dumps({
            "id": name, "argv": ["-Oz", "-c", f"{name}.c", "-o", f"{name}.o"], "codegen_args": ["-Oz"],
            "cwd": str(build), "driver": "c", "language": "c", "opt_level": "z",
            "source": str(build / f"{name}.c")}))
        (collected / f"{name}.bc").write_bytes(b"")  # only its presence counts
        units.append({"project": "proj", "id": name, "split": "train"})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"units": units}))
    monkeypatch.setattr(derive, "MANIFEST_FILE", manifest)
    result = CliRunner().invoke(derive.main, ["--level", "s", "--jobs", "2", "--engine", engine_backend])
    for name in SOURCES:
        assert derive.derive_unit((str(collected), str(tmp_path / "here"), name, "s", "x86_64")) is None
    assert result.exit_code == 0, result.output
    assert "3 units derived for x86_64 at -Os, 0 failed" in result.output
    through = Layout.from_environment().units("proj", "s")
    for name in SOURCES:
        for suffix in (".bc", ".json"):
            assert (through / f"{name}{suffix}").read_bytes() == (tmp_path / "here" / f"{name}{suffix}").read_bytes()


def test_difftest_reproducers_written_on_a_worker_are_kept_by_the_head(tmp_path, monkeypatch):
    def one_mismatch(job):
        seed, configs, out, timeout, target = job
        where = Path(out) / f"mismatch-{seed}-Oz-model"
        where.mkdir(parents=True)
        (where / "repro.sh").write_text("#!/bin/sh\nexit 1\n")
        (where / "repro.sh").chmod(0o755)
        return {"seed": seed, "mismatches": [{"config": "Oz-model", "dir": str(where)}]}
    monkeypatch.setattr(difftest, "check_program", one_mismatch)
    out = tmp_path / "campaign"
    result, files = difftest.check_on_worker((7, [], str(out), 1.0, "x86_64"), {})
    assert result["mismatches"][0]["dir"] == str(out / "mismatch-7-Oz-model")
    assert not out.exists()  # the worker wrote elsewhere; the head keeps them
    difftest.keep_reproducers(out, files)
    script = out / "mismatch-7-Oz-model" / "repro.sh"
    assert script.read_text() == "#!/bin/sh\nexit 1\n" and os.access(script, os.X_OK)
