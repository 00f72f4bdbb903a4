"""The model step: which pass pipeline to run on one translation unit.

The model is an ONNX file whose metadata says what made it: LLVM major
version, feature schema (version and hash), feature transform, candidate
pipelines, the margin a candidate must beat clang's pipeline by, training
data. A model that does not fit this mlcc is refused with one clear message
and the unit gets clang's own pipeline: never a crash.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlcc.errors import ModelError, ModelMismatch
from mlcc.pipeline import CLANG

MODEL_FORMAT = 1
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Decision:
    """The chosen pipeline, where it came from, and the model's scores if any."""

    pipeline: str
    source: str                                  # "model", "forced", "clang-default: <why>"
    ranked: tuple[str, ...] = ()                 # candidates, best predicted first
    scores: dict[str, float] = field(default_factory=dict)  # predicted size / clang's
    via: str = ""                                # where the model ran: "server", "in process (...)"
    instructions: float | None = None            # the unit's, when the model read it (passes.bounded)
    trial_sets: tuple[tuple[str, ...], ...] = () # what -fmlcc-trials=K builds, K = 1, 2, ... (trials.py)


@dataclass(frozen=True)
class SizeModel:
    """A loaded model and what its metadata promises."""

    path: str
    digest: str
    opt_level: str
    candidates: tuple[str, ...]
    margin: float
    session: object
    trial_sets: tuple[tuple[str, ...], ...] = ()  # the training projects' best set of K, K = 1, 2, ...

    def predict(self, feature_vector) -> list[float]:
        import numpy as np
        x = np.log1p(np.maximum(np.asarray(feature_vector, dtype=np.float32), 0))[None, :]
        out = self.session.run(None, {self.session.get_inputs()[0].name: x})[0]
        return [float(v) for v in np.asarray(out).reshape(-1)]


def bundled_model_path(opt_level: str) -> Path:
    return BUNDLED_DIR / f"size-O{opt_level}.onnx"


_LOADED: dict[tuple, SizeModel] = {}


def load(path: str) -> SizeModel:
    """Load and check a model file; raise ModelError / ModelMismatch with what to do."""
    import hashlib  # here: the pass-through path imports this module for nothing_to_decide
    import json
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror}") from None
    key = (path, st.st_size, st.st_mtime_ns)  # a file replaced in place is loaded again
    if key in _LOADED:
        return _LOADED[key]
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror}") from None
    try:
        import onnxruntime as ort
        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"model {path} is not a valid ONNX model ({type(exc).__name__})") from None
    from mlcc import features
    from mlcc.toolchain import LLVM_MAJOR

    checks = (("mlcc.format", str(MODEL_FORMAT), "model format"),
              ("mlcc.llvm_major", str(LLVM_MAJOR), "LLVM major version"),
              ("mlcc.feature_schema_hash", features.schema_hash(), "feature schema"),
              ("mlcc.feature_transform", "log1p", "feature transform"))
    for key, expected, what in checks:
        if meta.get(key) != expected:
            raise ModelMismatch(
                f"model {path} was made for another {what} ({meta.get(key, 'none')}, "
                f"this mlcc has {expected}); retrain it with `make model` or set MLCC_MODEL")
    try:
        candidates = tuple(json.loads(meta["mlcc.candidates"]))
        margin = float(meta.get("mlcc.margin", "0"))
        opt_level = meta["mlcc.opt_level"]
    except (KeyError, ValueError, TypeError):
        raise ModelMismatch(f"model {path} lacks its candidate pipelines in its metadata") from None
    if "clang[" in meta["mlcc.candidates"]:
        from mlcc import knobs
        changed = knobs.mismatched(json.loads(meta.get("mlcc.knobs", "{}")), candidates)
        if changed:
            raise ModelMismatch(
                f"model {path} was made with other clang pipeline knobs ({', '.join(changed)}) "
                f"than this mlcc's mlcc/data/clang-knobs.toml; retrain it with `make model` or set MLCC_MODEL")
    try:  # models made before the sets existed have none: trials take the model's top K
        trial_sets = tuple(tuple(str(p) for p in s) for s in json.loads(meta.get("mlcc.trial_sets", "[]")))
    except (ValueError, TypeError):
        raise ModelMismatch(f"model {path} has unreadable trial sets in its metadata") from None
    if any(p not in candidates for s in trial_sets for p in s):
        raise ModelMismatch(f"model {path} has trial sets that are not among its candidates")
    outputs = session.get_outputs()[0].shape
    if len(outputs) != 2 or outputs[1] != len(candidates):
        raise ModelMismatch(f"model {path} predicts {outputs} values for {len(candidates)} candidates")
    model = SizeModel(path=path, digest=hashlib.sha256(blob).hexdigest()[:12],
                      opt_level=opt_level, candidates=candidates, margin=margin, session=session,
                      trial_sets=trial_sets)
    _LOADED[key] = model
    return model


def nothing_to_decide(opt_level: str, settings) -> str | None:
    """Why clang itself gives exactly what mlcc would at this level, or None: no model
    for the level (clang's pipeline either way; trials have only it to try), nothing
    forced, searched or collected."""
    if settings.pipeline or settings.search or settings.collect:
        return None
    if _model_path(opt_level, settings) is None:
        return f"no model for -O{opt_level}"
    return None


def _model_path(opt_level: str, settings) -> str | None:
    if settings.model == "none":  # clang's own pipelines at every level
        return None
    if settings.model:
        return settings.model
    path = bundled_model_path(opt_level)
    return str(path) if path.exists() else None


def choose(bitcode: str, opt_level: str, settings) -> Decision:
    """Decide the pipeline for `bitcode` at -O`opt_level`: forced, else the model
    (in the model server when allowed, see model_server.py), else clang's."""
    if settings.pipeline:
        return _forced(bitcode, settings.pipeline)
    path = _model_path(opt_level, settings)
    if path is None:
        return Decision(CLANG, f"clang-default: no model for -O{opt_level}")
    via = "in process"
    if settings.server:
        from mlcc import model_server
        decision, via = model_server.ask(bitcode, opt_level, path, settings.server_idle)
        if decision is not None:
            return decision
    from mlcc.errors import MlccError
    try:
        decision = rank(bitcode, opt_level, path)
    except MlccError as exc:
        print(f"mlcc: warning: {exc}; using clang's own pipeline", file=sys.stderr)
        return Decision(CLANG, f"clang-default: {exc}", via=via)
    return replace(decision, via=via)


def _forced(bitcode: str, forced: str) -> Decision:
    """A forced pipeline ("clang" is clang's own, pipeline.CLANG), with its slow passes
    only on units small enough, as for the model's choices (passes.bounded)."""
    from mlcc import passes
    if not passes.runs_slow(forced):
        return Decision(pipeline=forced, source="forced")
    from mlcc import features
    from mlcc.errors import MlccError
    try:
        instructions = features.instruction_count(features.extract_features(bitcode))
    except MlccError:
        return Decision(pipeline=forced, source="forced")  # not counted: as given
    return Decision(pipeline=passes.bounded(forced, instructions), source="forced",
                    instructions=instructions)


def rank(bitcode: str, opt_level: str, path: str) -> Decision:
    """The model at `path`'s choice for `bitcode`; raises MlccError when the model
    cannot be used (clang's pipeline when it is for another level)."""
    model = load(path)
    if model.opt_level != opt_level:
        return Decision(CLANG, f"clang-default: model is for -O{model.opt_level}")
    from mlcc import features, passes
    vector = features.extract_features(bitcode)
    scores = model.predict(vector)
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    best = order[0]
    if scores[best] > scores[0] - model.margin:
        best = 0  # candidate 0 is the default: clang's own, or the pipeline best on training projects
    # what runs on this unit: slow passes only on units small enough (passes.bounded)
    instructions = features.instruction_count(vector)
    ranked = tuple(dict.fromkeys(passes.bounded(model.candidates[i], instructions) for i in order))
    return Decision(pipeline=passes.bounded(model.candidates[best], instructions),
                    source=f"model {model.digest}", ranked=ranked,
                    scores={model.candidates[i]: round(scores[i], 5) for i in range(len(scores))},
                    instructions=instructions,
                    trial_sets=tuple(tuple(dict.fromkeys(passes.bounded(p, instructions) for p in s))
                                     for s in model.trial_sets))


def identity_for(opt_level: str, settings) -> str:
    """What decides pipelines for this level: the model file's digest, or "none"."""
    path = _model_path(opt_level, settings)
    if path is None:
        return "none"
    try:
        st = os.stat(path)
    except OSError:
        return f"missing:{path}"
    # size+mtime+path: cheap, and a retrained model (new file) changes it
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def identities() -> str:
    """The models in use at -Oz and -Os, for --version: one when MLCC_MODEL names it."""
    if os.environ.get("MLCC_MODEL"):
        return identity()
    return "; ".join(identity(level) for level in ("z", "s"))


def identity(opt_level: str = "z") -> str:
    """A short description of the model in use at -O`opt_level`."""
    path = os.environ.get("MLCC_MODEL") or str(bundled_model_path(opt_level))
    if not Path(path).exists():
        return "model: none, clang's own pipelines"
    try:
        m = load(path)
    except ModelError as exc:
        return f"model: unusable ({exc})"
    return (f"model: {Path(m.path).name} sha256:{m.digest}, -O{m.opt_level}, "
            f"{len(m.candidates)} candidates")
