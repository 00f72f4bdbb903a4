"""What a model file is: the contract between training and the driver.

A model is an ONNX graph from a unit's transformed feature vector (a float32
row) to one predicted size per candidate pipeline, relative to clang's own.
Its metadata, under `mlcc.*` keys, says what made it: format, LLVM major
version, feature schema, feature transform, candidates, margin, trial sets,
training data. Training writes the file with `metadata`; the driver, explain
and the report read it with `open_session`, `check` and `predict`. Nothing
else knows these keys or the transform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlcc.errors import ModelError, ModelMismatch

FORMAT = 1
TRANSFORM = "log1p"  # of the raw counts, clipped at 0: sizes and counts span decades
PREFIX = "mlcc."


HOST_TARGET = "x86_64"  # the first models' target: their files and metadata do not name it


def bundled_path(opt_level: str, target: str = HOST_TARGET):
    """Where the model shipped with mlcc for `target` at -O`opt_level` lives: package
    data, `size-O<level>.onnx` for x86-64, `size-<target>-O<level>.onnx` for the others.
    Every install on a file system has it beside this module; `importlib.resources`,
    whose imports took 75 ms of a compile (python3 -S -X importtime), is asked only for
    a package that is not (a zip)."""
    name = f"size-O{opt_level}.onnx" if target == HOST_TARGET else f"size-{target}-O{opt_level}.onnx"
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isdir(here):
        from pathlib import Path
        return Path(here, "models", name)
    from importlib import resources
    return resources.files("mlcc").joinpath("models", name)


def transform(features):
    """The feature transform the graph expects, on one row or a matrix of raw features."""
    import numpy as np
    return np.log1p(np.maximum(np.asarray(features, dtype=np.float32), 0)).astype(np.float32)


def open_session(blob: bytes, path: str):
    """An onnxruntime session for the model bytes, one thread (a compile runs beside
    others); raises ModelError for a file that is not an ONNX model."""
    try:
        import onnxruntime as ort
        ort.set_default_logger_severity(3)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"model {path} is not a valid ONNX model ({type(exc).__name__})") from None


def metadata_of(session) -> dict[str, str]:
    """The model's metadata, every value a string (JSON for the structured ones)."""
    return dict(session.get_modelmeta().custom_metadata_map)


def get(meta: dict[str, str], key: str, default=None):
    """A structured value (lists, tables: stored as JSON) of `mlcc.<key>` in `meta`,
    or `default` when absent."""
    import json
    raw = meta.get(PREFIX + key)
    return default if raw is None else json.loads(raw)


def text(meta: dict[str, str], key: str, default: str = "") -> str:
    """A plain value (stored as the string itself) of `mlcc.<key>` in `meta`."""
    return meta.get(PREFIX + key, default)


def predict(session, transformed):
    """Predicted sizes (relative to clang's) for a matrix of transformed feature rows:
    one row per unit, one column per candidate."""
    import numpy as np
    x = np.asarray(transformed, dtype=np.float32)
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


@dataclass(frozen=True)
class Contract:
    """What the driver needs from a model's metadata, checked against this mlcc."""

    opt_level: str
    candidates: tuple[str, ...]
    margin: float
    trial_sets: tuple[tuple[str, ...], ...] = ()  # the training projects' best set of K, K = 1, 2, ...
    target: str = HOST_TARGET                      # the target its training units were compiled for


def check(session, path: str) -> Contract:
    """The model's contract; raises ModelMismatch, saying what to do, when the model was
    made for another mlcc (format, LLVM, feature schema or transform, knobs)."""
    from mlcc import features
    from mlcc.toolchain import LLVM_MAJOR

    meta = metadata_of(session)
    checks = (("format", str(FORMAT), "model format"),
              ("llvm_major", str(LLVM_MAJOR), "LLVM major version"),
              ("feature_schema_hash", features.schema_hash(), "feature schema"),
              ("feature_transform", TRANSFORM, "feature transform"))
    for key, expected, what in checks:
        if meta.get(PREFIX + key) != expected:
            raise ModelMismatch(
                f"model {path} was made for another {what} ({meta.get(PREFIX + key, 'none')}, "
                f"this mlcc has {expected}); retrain it with `make model` or set MLCC_MODEL")
    try:
        candidates = tuple(get(meta, "candidates"))
        margin = float(meta.get(PREFIX + "margin", "0"))
        opt_level = meta[PREFIX + "opt_level"]
    except (KeyError, ValueError, TypeError):
        raise ModelMismatch(f"model {path} lacks its candidate pipelines in its metadata") from None
    if any("clang[" in c for c in candidates):
        from mlcc import knobs
        changed = knobs.mismatched(get(meta, "knobs", {}), candidates)
        if changed:
            raise ModelMismatch(
                f"model {path} was made with other clang pipeline knobs ({', '.join(changed)}) "
                f"than this mlcc's mlcc/data/clang-knobs.toml; retrain it with `make model` or set MLCC_MODEL")
    try:  # models made before the sets existed have none: trials take the model's top K
        trial_sets = tuple(tuple(str(p) for p in s) for s in get(meta, "trial_sets", []))
    except (ValueError, TypeError):
        raise ModelMismatch(f"model {path} has unreadable trial sets in its metadata") from None
    if any(p not in candidates for s in trial_sets for p in s):
        raise ModelMismatch(f"model {path} has trial sets that are not among its candidates")
    outputs = session.get_outputs()[0].shape
    if len(outputs) != 2 or outputs[1] != len(candidates):
        raise ModelMismatch(f"model {path} predicts {outputs} values for {len(candidates)} candidates")
    return Contract(opt_level, candidates, margin, trial_sets, text(meta, "target", HOST_TARGET))


def metadata(*, opt_level: str, candidates, margin: float, trial_sets, target: str = HOST_TARGET,
             **made_of) -> dict[str, str]:
    """The metadata a new model carries: the contract the driver checks (format, LLVM,
    level, target, feature schema and transform, candidates and their knobs, margin, trial sets) and
    `made_of`, what made it (training data, learner, scores), under `mlcc.<key>`."""
    import json

    from mlcc import features, knobs
    from mlcc.toolchain import LLVM_MAJOR

    candidates = list(candidates)
    values = {
        "format": str(FORMAT),
        "llvm_major": str(LLVM_MAJOR),
        "opt_level": opt_level,
        "target": target,
        "feature_schema_version": str(features.SCHEMA_VERSION),
        "feature_schema_hash": features.schema_hash(),
        "feature_transform": TRANSFORM,
        "candidates": candidates,
        "default": candidates[0],
        "knobs": knobs.definitions(candidates),
        "margin": str(margin),
        "trial_sets": trial_sets,
        **made_of,
    }
    return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
