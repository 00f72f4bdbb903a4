"""The bundled model and what happens when a model is missing, broken or foreign."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import mlcc_env

from mlcc import features, knobs, model, pipeline
from mlcc.errors import ModelError, ModelMismatch
from mlcc.toolchain import LLVM_MAJOR

FIXTURE = Path(__file__).parent / "data" / "compare"
MLCC = shutil.which("mlcc")
BUNDLED = model.bundled_model_path("z")

pytestmark = pytest.mark.skipif(not BUNDLED.exists(), reason="no bundled -Oz model in models/")


def _env(tmp_path: Path, **extra) -> dict:
    return mlcc_env(tmp_path / "cache", **extra)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


@pytest.mark.parametrize("level", ["z", "s"])
def test_bundled_model_carries_its_metadata(level):
    m = model.load(str(model.bundled_model_path(level)))
    meta = m.session.get_modelmeta().custom_metadata_map
    assert m.opt_level == level
    assert meta["mlcc.llvm_major"] == str(LLVM_MAJOR)
    assert meta["mlcc.feature_schema_hash"] == features.schema_hash()
    assert meta["mlcc.feature_schema_version"] == str(features.SCHEMA_VERSION)
    assert "clang" in m.candidates  # clang's own pipeline, exactly: what trials start from
    assert meta["mlcc.default"] == m.candidates[0]  # candidate 0: what a unit gets by default
    assert json.loads(meta.get("mlcc.knobs", "{}")) == knobs.definitions(m.candidates)
    # K = 8 chosen from the selection curve, minus pipelines removed (miscompiles, compile time)
    chosen = Path(__file__).parents[1] / "models" / "data" / f"candidates-O{level}.json"
    removed = json.loads(chosen.read_text()).get("removed", [])
    assert 8 <= len(m.candidates) + len(removed) <= 64
    training = json.loads(meta["mlcc.training_data"])
    assert training["manifest_sha256"] and training["measurements_sha256"]
    assert set(training["train_projects"]).isdisjoint(training["validation_projects"])
    assert "objective" in meta["mlcc.objective"] or ".text" in meta["mlcc.objective"]
    # -fmlcc-trials=K builds the set of K chosen together on the training projects
    assert [len(s) for s in m.trial_sets] == list(range(1, len(m.candidates)))
    assert all("clang" not in s and set(s) <= set(m.candidates) for s in m.trial_sets)


def test_model_decides_for_real_code(work: Path, tmp_path: Path):
    """A model the settings name decides single-shot (the bundled one ranks trials only:
    targets.toml's single_shot)."""
    log = tmp_path / "log"
    env = _env(tmp_path, MLCC_LOG=str(log), MLCC_MODEL=str(BUNDLED))
    proc = subprocess.run([MLCC, "-Oz", "src/main.c", "src/util.c", "-o", "prog"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    assert all(e["decision"].startswith("model ") for e in entries)
    assert all(len(e["scores"]) == len(model.load(str(BUNDLED)).candidates) for e in entries)
    assert all("features" not in e["seconds"] or e["seconds"]["features"] >= 0 for e in entries)


def _broken_model(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.onnx"
    blob = BUNDLED.read_bytes()
    if kind == "truncated":
        path.write_bytes(blob[: len(blob) // 3])
    elif kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("other-llvm", "other-schema"):
        import onnx
        onx = onnx.load_from_string(blob)
        key = "mlcc.llvm_major" if kind == "other-llvm" else "mlcc.feature_schema_hash"
        for prop in onx.metadata_props:
            if prop.key == key:
                prop.value = "18" if kind == "other-llvm" else "0" * 16
        path.write_bytes(onx.SerializeToString())
    elif kind == "other-knobs":  # a candidate's knob means something else in this mlcc
        import json

        import onnx
        onx = onnx.load_from_string(blob)
        props = {prop.key: prop for prop in onx.metadata_props}
        candidates = json.loads(props["mlcc.candidates"].value)
        candidates[-1] = "clang[gvn-no-pre]"
        props["mlcc.candidates"].value = json.dumps(candidates)
        knobs = {"gvn-no-pre": {"why": "-", "replace": ["gvn<>", "gvn<no-load-pre>"]}}
        if "mlcc.knobs" in props:
            props["mlcc.knobs"].value = json.dumps(knobs)
        else:
            entry = onx.metadata_props.add()
            entry.key, entry.value = "mlcc.knobs", json.dumps(knobs)
        path.write_bytes(onx.SerializeToString())
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize("kind", ["truncated", "garbage", "empty", "other-llvm", "other-schema",
                                  "other-knobs", "missing"])
def test_unusable_model_means_clangs_pipeline_and_one_warning(kind: str, work: Path, tmp_path: Path):
    bad = _broken_model(tmp_path, kind)
    proc = subprocess.run([MLCC, "-Oz", "-c", "src/util.c", "-o", "m.o"], cwd=work,
                          env=_env(tmp_path, MLCC_MODEL=str(bad)), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcc: warning: ") and "clang's own pipeline" in lines[0]
    subprocess.run(["clang-19", "-Oz", "-c", "src/util.c", "-o", "c.o"], cwd=work, check=True)
    assert (work / "m.o").read_bytes() == (work / "c.o").read_bytes()


def test_load_raises_typed_errors(tmp_path: Path):
    with pytest.raises(ModelError):
        model.load(str(_broken_model(tmp_path, "garbage")))
    with pytest.raises(ModelMismatch):
        model.load(str(_broken_model(tmp_path, "other-llvm")))
    with pytest.raises(ModelMismatch, match="gvn-no-pre"):
        model.load(str(_broken_model(tmp_path, "other-knobs")))


def test_a_slow_candidate_runs_only_on_units_within_the_bound(work: Path, tmp_path: Path, monkeypatch):
    """A candidate with a slow pass (the IR outliner) stands for itself on a unit of at most
    `passes.SLOW_BOUND` instructions whose largest function has at most
    `passes.SLOW_FUNCTION_BOUND`, and for itself without that pass otherwise: in the
    model's choice and in the ranking trials and search start from."""
    from mlcc import passes

    bitcode = tmp_path / "lib.bc"
    subprocess.run(["clang-19", "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(work / "src" / "lib.c"), "-o", str(bitcode)], check=True)
    count = features.extract_feature_dict(str(bitcode))["TotalInsts"]
    slow, fast = "clang[no-licm,iroutliner]", "clang[no-licm]"
    # The predicted sizes are given: what is tested is what the driver makes of them.
    ranker = model.SizeModel(path="m.onnx", digest="0" * 12, opt_level="z",
                             candidates=("clang", slow, fast), margin=0.0, session=None)
    monkeypatch.setattr(model, "load", lambda path: ranker)
    monkeypatch.setattr(model.SizeModel, "predict", lambda self, vector: [1.0, 0.9, 0.95])

    monkeypatch.setattr(passes, "SLOW_BOUND", count)
    within = model.rank(str(bitcode), "z", "m.onnx")
    assert (within.pipeline, within.ranked) == (slow, (slow, fast, "clang"))
    assert within.slow_size == count

    monkeypatch.setattr(passes, "SLOW_BOUND", count - 1)
    over = model.rank(str(bitcode), "z", "m.onnx")
    assert (over.pipeline, over.ranked) == (fast, (fast, "clang"))
    assert set(over.scores) == {"clang", slow, fast}

    # a unit within the bound whose largest function is over its own bound: the same
    largest = features.extract_feature_dict(str(bitcode))["max_func_insts"]
    monkeypatch.setattr(passes, "SLOW_BOUND", count)
    monkeypatch.setattr(passes, "SLOW_FUNCTION_BOUND", {"z": largest - 1})
    big_function = model.rank(str(bitcode), "z", "m.onnx")
    assert (big_function.pipeline, big_function.ranked) == (fast, (fast, "clang"))
    monkeypatch.setattr(passes, "SLOW_FUNCTION_BOUND", {"z": largest})
    assert model.rank(str(bitcode), "z", "m.onnx").pipeline == slow
    monkeypatch.setattr(passes, "SLOW_BOUND", count - 1)

    # the trial sets too: a set that held both collapses to one pipeline
    ranker = replace(ranker, trial_sets=((slow,), (slow, fast)))
    monkeypatch.setattr(model, "load", lambda path: ranker)
    assert model.rank(str(bitcode), "z", "m.onnx").trial_sets == ((fast,), (fast,))


@pytest.mark.parametrize("level", ["z", "s"])
def test_trials_skip_the_features_when_the_models_set_is_whole(level, work: Path, tmp_path: Path,
                                                               monkeypatch):
    """Under -fmlcc-trials=K with the bundled model's set for K whole on the unit, the
    decision reads no features and runs no inference, and trials build what the model's
    ranked decision would have them build."""
    from mlcc import passes
    from mlcc.trials import trial_pipelines

    path = str(model.bundled_model_path(level))
    bitcode = tmp_path / "lib.bc"
    subprocess.run(["clang-19", f"-O{level}", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(work / "src" / "lib.c"), "-o", str(bitcode)], check=True)
    ranked = model.rank(str(bitcode), level, path)
    called = []
    monkeypatch.setattr(features, "extract_features", lambda *a: called.append(a))
    for k in (1, 2, 3):
        quick = model.trial_set_only(str(bitcode), level, path, model.HOST_TARGET, k)
        assert quick is not None and quick.scores == {} and quick.ranked == ()
        assert trial_pipelines(quick, k) == trial_pipelines(ranked, k)
        assert quick.slow_size == ranked.slow_size
    assert called == []
    # past the sets' sizes, or a set the bound made smaller: the ranking is needed
    loaded = model.load(path)
    assert model.trial_set_only(str(bitcode), level, path, model.HOST_TARGET, len(loaded.trial_sets) + 2) is None
    slow, fast = "clang[no-licm,iroutliner]", "clang[no-licm]"
    monkeypatch.setattr(model, "load", lambda p: replace(loaded, trial_sets=((slow,), (slow, fast))))
    monkeypatch.setattr(passes, "SLOW_BOUND", 0)
    assert model.trial_set_only(str(bitcode), level, path, model.HOST_TARGET, 2) is None


def test_trials_build_the_set_chosen_together_else_the_models_top_k():
    from mlcc.trials import search_start, trial_pipelines

    ranked = ("d", "a", "b", "c")
    with_sets = model.Decision("d", "model", ranked=ranked, trial_sets=(("b",), ("a", "c"), ("a", "b", "c")))
    clang = pipeline.CLANG
    assert trial_pipelines(with_sets, 1) == [clang, "b"]
    assert trial_pipelines(with_sets, 2) == [clang, "a", "c"]
    assert trial_pipelines(with_sets, 9) == [clang, "a", "b", "c", "d"]  # past the sets: the ranking
    # a set the bound on slow passes shrank is filled up from the ranking
    shrunk = replace(with_sets, trial_sets=(("b",), ("a",)))
    assert trial_pipelines(shrunk, 2) == [clang, "a", "d"]
    without = replace(with_sets, trial_sets=())
    assert trial_pipelines(without, 2) == [clang, "d", "a"]
    assert search_start(with_sets) == [clang, *ranked]  # search starts from the ranking


def test_a_forced_slow_pipeline_is_bounded_as_the_models_choice_is(work: Path, tmp_path: Path, monkeypatch):
    """`-fmlcc-pipeline` with a slow pass: the pass runs only on units within the bound, so
    forcing the model's default (the benchmark's "fixed" build) runs what the model would."""
    from types import SimpleNamespace

    from mlcc import passes

    bitcode = tmp_path / "lib.bc"
    subprocess.run(["clang-19", "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
                    str(work / "src" / "lib.c"), "-o", str(bitcode)], check=True)
    count = features.extract_feature_dict(str(bitcode))["TotalInsts"]
    slow, fast = "clang[no-licm,iroutliner]", "clang[no-licm]"
    forcing = SimpleNamespace(pipeline=slow)
    monkeypatch.setattr(passes, "SLOW_BOUND", count)
    assert model.choose(str(bitcode), "z", forcing) == model.Decision(slow, "forced", slow_size=count)
    monkeypatch.setattr(passes, "SLOW_BOUND", count - 1)
    assert model.choose(str(bitcode), "z", forcing).pipeline == fast
    monkeypatch.setattr(passes, "SLOW_BOUND", count)
    largest = features.extract_feature_dict(str(bitcode))["max_func_insts"]
    monkeypatch.setattr(passes, "SLOW_FUNCTION_BOUND", {"z": largest - 1})
    assert model.choose(str(bitcode), "z", forcing).pipeline == fast  # what rank would run
    assert model.choose(str(bitcode), "s", forcing).pipeline == slow  # -Os has no such bound
    # no slow pass: nothing is counted
    assert model.choose(str(bitcode), "z", SimpleNamespace(pipeline=fast)) == model.Decision(fast, "forced")


# a function that reads a constant array with volatile loads (the attributor deleted them)
VOLATILE_FLUSH = Path(__file__).parent / "data" / "volatile_flush.c"


@pytest.mark.parametrize("level", ["z", "s"])
def test_every_bundled_candidate_keeps_volatile_loads_from_a_constant_array(level, tmp_path):
    from mlcc import passes
    from mlcc.objective import object_size

    src = VOLATILE_FLUSH
    assert not passes.eligible("function(jump-threading,sroa),cgscc(attributor-light-cgscc),clang")
    assert not passes.eligible("attributor-light,clang[gvn-no-pre]")
    for i, candidate in enumerate(model.load(str(model.bundled_model_path(level))).candidates):
        obj = tmp_path / f"c{i}.o"
        subprocess.run([MLCC, f"-O{level}", "-c", str(src), "-o", str(obj)], check=True,
                       env=_env(tmp_path, MLCC_PIPELINE=candidate), cwd=tmp_path)
        assert object_size(obj) >= 1 << 16, candidate  # the array, read by the volatile loads
