"""The model step: which pass pipeline to run on one translation unit.

The model is an ONNX file whose metadata says what made it: LLVM major
version, feature schema (version and hash), feature transform, candidate
pipelines, the margin a candidate must beat clang's pipeline by, training
data. A model that does not fit this mlcc is refused with one clear message
and the unit gets clang's own pipeline: never a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlcc import model_file
from mlcc.errors import ModelError, ModelMismatch
from mlcc.model_file import HOST_TARGET
from mlcc.pipeline import CLANG

SHIPPED_LEVELS = ("z", "s")  # mlcc ships a model for these levels (mlcc/models/)


@dataclass(frozen=True)
class Decision:
    """The chosen pipeline, where it came from, and the model's scores if any."""

    pipeline: str
    source: str                                  # "model", "forced", "clang-default: <why>"
    ranked: tuple[str, ...] = ()                 # candidates, best predicted first
    scores: dict[str, float] = field(default_factory=dict)  # predicted size / clang's
    via: str = ""                                # where the model ran: "server", "in process (...)"
    slow_size: float | None = None               # the unit's, when read (passes.slow_pass_size, .bounded)
    trial_sets: tuple[tuple[str, ...], ...] = () # what -fmlcc-trials=K builds, K = 1, 2, ... (trials.py)


# a unit under `small_unit` bytes of bitcode: clang's pipeline, the model unasked (both routes)
SMALL_UNIT = Decision(CLANG, "clang-default: small unit")


@dataclass(frozen=True)
class SizeModel:
    """A loaded model and what its metadata promises (`model_file.Contract`)."""

    path: str
    digest: str
    opt_level: str
    candidates: tuple[str, ...]
    margin: float
    session: object
    trial_sets: tuple[tuple[str, ...], ...] = ()  # the training projects' best set of K, K = 1, 2, ...
    target: str = HOST_TARGET

    def predict(self, feature_vector) -> list[float]:
        """Predicted size relative to clang's, per candidate, for one unit's raw features."""
        return [float(v) for v in self.predict_many([feature_vector])[0]]

    def predict_many(self, feature_rows):
        """Predicted sizes for a matrix of raw feature rows (one row per unit)."""
        return model_file.predict(self.session, model_file.transform(feature_rows))

    def metadata(self) -> dict[str, str]:
        return model_file.metadata_of(self.session)


def bundled_model_path(opt_level: str, target: str = HOST_TARGET) -> Path:
    """The model shipped inside the mlcc package for `target` at -O`opt_level` (it may
    be missing: mlcc ships models for x86-64 at SHIPPED_LEVELS only, so far)."""
    return Path(str(model_file.bundled_path(opt_level, target)))


_LOADED: dict[tuple, SizeModel] = {}


def load(path: str) -> SizeModel:
    """Load and check a model file; raise ModelError / ModelMismatch with what to do."""
    import hashlib  # here: the pass-through path imports this module for nothing_to_decide
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
    session = model_file.open_session(blob, path)
    contract = model_file.check(session, path)
    model = SizeModel(path=path, digest=hashlib.sha256(blob).hexdigest()[:12],
                      opt_level=contract.opt_level, candidates=contract.candidates,
                      margin=contract.margin, session=session, trial_sets=contract.trial_sets,
                      target=contract.target)
    _LOADED[key] = model
    return model


def nothing_to_decide(opt_level: str, settings) -> str | None:
    """Why clang itself gives exactly what mlcc would at this level, or None: no model
    for the level (clang's pipeline either way; trials have only it to try), nothing
    forced, searched or collected. A bundled model missing from the install is said
    once per build."""
    if settings.pipeline or settings.search or settings.collect:
        return None
    if model_path(opt_level, settings) is None:
        broken = missing_bundled(opt_level, settings)
        if broken:
            from mlcc.notices import warn_once
            warn_once(f"{broken}; compiling with clang's own pipelines")
        return f"no model for -O{opt_level}"
    return None


def model_path(opt_level: str, settings, target: str = HOST_TARGET) -> str | None:
    """The model file for `target` at -O`opt_level`: the one the settings name, else the
    bundled one if the install has it, else None."""
    if settings.model == "none":  # clang's own pipelines at every level
        return None
    if settings.model:
        return settings.model
    path = bundled_model_path(opt_level, target)
    return str(path) if path.exists() else None


def deciding_model(opt_level: str, settings, target) -> str | None:
    """The model file that decides a unit of `target` (targets.Target) at -O`opt_level`
    with these settings: `model_path`, but None where single-shot runs the target's
    default instead of asking its bundled model (`single_shot` in data/targets.toml) and
    the settings name no model and ask for no trials or search."""
    path = model_path(opt_level, settings, target.name)
    if (path is not None and not settings.model and not settings.trials and not settings.search
            and not target.asks_model(opt_level)):
        return None
    return path


def missing_bundled(opt_level: str, settings=None) -> str | None:
    """What is wrong when mlcc should use its bundled x86-64 model for -O`opt_level` and
    the install lacks it (a package built without its data), else None."""
    if settings is not None and settings.model:
        return None  # asked for another model, or none
    if opt_level not in SHIPPED_LEVELS or bundled_model_path(opt_level).exists():
        return None
    return (f"the bundled -O{opt_level} model is missing ({bundled_model_path(opt_level)}): "
            "reinstall mlcc, or name a model with MLCC_MODEL")


def target_of(triple: str):
    """The known target (`targets.Target`) a unit's triple is, or None; "" (a caller that
    did not ask clang) is x86-64, the host mlcc's first models were made for."""
    from mlcc import targets
    return targets.named(HOST_TARGET) if not triple else targets.of_triple(triple)


def choose(bitcode: str, opt_level: str, settings, via: str = "in process",
           triple: str = "") -> Decision:
    """Decide the pipeline for `bitcode`, compiled for `triple`, at -O`opt_level` in
    this process: forced, else the target's model, else the target's measured default,
    else clang's. An unknown target and a model that cannot be used are said once per
    build. `model_server.choose` asks the build's model server first."""
    from mlcc.notices import warn_once
    if settings.pipeline:
        return _forced(bitcode, settings.pipeline, opt_level)
    target = target_of(triple)
    if target is None:
        if opt_level in SHIPPED_LEVELS and settings.model != "none":
            warn_once(f"mlcc has no pipelines for target {triple}; compiling with clang's own pipeline")
        return Decision(CLANG, f"clang-default: no model for target {triple}")
    path = deciding_model(opt_level, settings, target)
    if path is None:
        broken = missing_bundled(opt_level, settings) if target.name == HOST_TARGET else None
        if broken:  # -fmlcc-search or -fmlcc-collect got here without nothing_to_decide's word
            warn_once(f"{broken}; compiling with clang's own pipelines")
        default = CLANG if settings.model == "none" else target.default(opt_level)
        if default != CLANG:  # slow passes only on units small enough, as for a model's choice
            forced, sets = _forced(bitcode, default, opt_level), target.trial_sets(opt_level)
            # ranked as a model's candidates are: -fmlcc-search starts from the default and
            # the pipelines of the largest trial set, so it finds at least what trials find
            ranked = tuple(dict.fromkeys((forced.pipeline, *(sets[-1] if sets else ()))))
            why = ("its model ranks only trials and search" if not (target.asks_model(opt_level) or broken)
                   else f"no model for -O{opt_level}")
            return replace(forced, source=f"{target.name} default ({why})",
                           trial_sets=sets, ranked=ranked, via=via)
        return Decision(CLANG, f"clang-default: no model for {target.name} -O{opt_level}")
    from mlcc.errors import MlccError
    try:
        decision = (trial_set_only(bitcode, opt_level, path, target.name, settings.trials)
                    if settings.trials and not settings.search else None)
        decision = decision or rank(bitcode, opt_level, path, target.name)
    except MlccError as exc:
        warn_once(f"{exc}; using clang's own pipeline")
        return Decision(CLANG, f"clang-default: {exc}", via=via)
    return replace(decision, via=via)


def _forced(bitcode: str, forced: str, opt_level: str) -> Decision:
    """A forced pipeline ("clang" is clang's own, pipeline.CLANG), with its slow passes
    only on units small enough, as for the model's choices (passes.bounded)."""
    from mlcc import passes
    if not passes.runs_slow(forced):
        return Decision(pipeline=forced, source="forced")
    from mlcc import ir_reader  # the counts alone: no features, no numpy
    from mlcc.errors import MlccError
    try:
        shape = ir_reader.shape(bitcode)
    except MlccError:
        return Decision(pipeline=forced, source="forced")  # not counted: as given
    size = passes.slow_pass_size(shape.instructions, shape.largest_function, opt_level)
    return Decision(pipeline=passes.bounded(forced, size), source="forced", slow_size=size)


def trial_set_only(bitcode: str, opt_level: str, path: str, target: str, k: int) -> Decision | None:
    """For `-fmlcc-trials=k`: the model at `path`'s decision without its features and
    inference, when its set for k, as it runs on this unit (`passes.bounded`), is k
    pipelines besides clang's: trials then build clang's pipeline and that set, and the
    model's ranking is never read (`trials.trial_pipelines`). None otherwise (`rank`)."""
    model = load(path)
    if model.target != target or model.opt_level != opt_level or not model.trial_sets:
        return None
    which = min(k, len(model.trial_sets)) - 1  # the set trials.trial_pipelines takes
    if len(model.trial_sets[which]) < k:
        return None
    from mlcc import ir_reader, passes  # the counts alone: no features, no inference
    from mlcc.errors import MlccError
    try:
        shape = ir_reader.shape(bitcode)
    except MlccError:
        return None  # `rank` says what is wrong with it
    size = passes.slow_pass_size(shape.instructions, shape.largest_function, opt_level)
    sets = tuple(tuple(dict.fromkeys(passes.bounded(p, size) for p in s)) for s in model.trial_sets)
    if len(set(sets[which]) - {CLANG}) < k:
        return None  # the bound made two of them one: the ranking fills the set
    return Decision(pipeline=passes.bounded(model.candidates[0], size),
                    source=f"model {model.digest}, its trial set", slow_size=size, trial_sets=sets)


def rank(bitcode: str, opt_level: str, path: str, target: str = HOST_TARGET) -> Decision:
    """The model at `path`'s choice for `bitcode`, compiled for `target`; raises
    MlccError when the model cannot be used, ModelMismatch when it was made for another
    target (clang's pipeline when it is for another level)."""
    model = load(path)
    if model.target != target:
        raise ModelMismatch(f"model {path} was made for target {model.target}, not {target}")
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
    size = features.slow_pass_size(vector, opt_level)
    ranked = tuple(dict.fromkeys(passes.bounded(model.candidates[i], size) for i in order))
    return Decision(pipeline=passes.bounded(model.candidates[best], size),
                    source=f"model {model.digest}", ranked=ranked,
                    scores={model.candidates[i]: round(scores[i], 5) for i in range(len(scores))},
                    slow_size=size,
                    trial_sets=tuple(tuple(dict.fromkeys(passes.bounded(p, size) for p in s))
                                     for s in model.trial_sets))


def defaults(opt_level: str, settings, target: str = HOST_TARGET) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """What single-shot gives a unit of `target` at -O`opt_level` without reading it, and
    the sets -fmlcc-trials=K builds: the model's candidate 0 (its default: the pipeline
    best on its training projects) and its trial sets, else the target's default and
    sets; clang's own and no sets for a model that cannot be used here."""
    from mlcc.errors import MlccError
    from mlcc.targets import named

    path = model_path(opt_level, settings, target)
    if path is None:
        if settings.model == "none":
            return CLANG, ()
        entry = named(target)
        return entry.default(opt_level), entry.trial_sets(opt_level)
    try:
        loaded = load(path)
    except MlccError:
        return CLANG, ()
    if loaded.target != target or loaded.opt_level != opt_level or not loaded.candidates:
        return CLANG, ()
    return loaded.candidates[0], tuple(loaded.trial_sets)


def identity_for(opt_level: str, settings, triple: str = "") -> str:
    """What decides pipelines for this level and target: the model file's size, time and
    path, or the target's default."""
    target = target_of(triple)
    if target is None:
        return f"none:{triple}"
    path = deciding_model(opt_level, settings, target)
    if path is None:
        return f"default:{target.name}:{CLANG if settings.model == 'none' else target.default(opt_level)}"
    try:
        st = os.stat(path)
    except OSError:
        return f"missing:{path}"
    # size+mtime+path: cheap, and a retrained model (new file) changes it
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def identities() -> str:
    """The models in use at -Oz and -Os, for --version: one when a setting names it."""
    settings = _user_settings()
    if settings.model:  # one file (or none) for every level
        return identity(settings=settings)
    return "; ".join([*(identity(level, settings) for level in SHIPPED_LEVELS),
                      f"targets: {target_summary(settings)}"])


def target_summary(settings) -> str:
    """What single-shot runs for each known target: its model, else its default (and the
    default's code generation variants, unless turned off)."""
    from mlcc import targets

    def single_shot(t, level: str) -> str:
        if deciding_model(level, settings, t):
            return f"-O{level} model"
        extra = []
        if settings.codegen_variants:  # what single-shot builds beside the default
            extra = [f"{len(t.variants(level))} code generation variants"] if t.variants(level) else []
            extra += ["clang's pipeline" if p == CLANG else p for p in t.also_built(level)]
        ranks = " (its model ranks trials)" if model_path(level, settings, t.name) else ""
        return f"-O{level} {t.default(level)}" + (f" + {', '.join(extra)}" if extra else "") + ranks

    parts = []
    for t in targets.table().values():
        runs = [single_shot(t, level) for level in SHIPPED_LEVELS]
        parts.append(f"{t.name} {', '.join(runs)}")
    return "; ".join(parts)


def _user_settings():
    """The settings a compile here would have (environment, config file), for --version."""
    from mlcc import settings as settings_mod
    from mlcc.errors import MlccError
    try:
        return settings_mod.load({})
    except MlccError:  # a broken config file: the compile says so; describe the default
        return settings_mod.Settings(model=os.environ.get("MLCC_MODEL", ""))


def identity(opt_level: str = "z", settings=None, target: str = HOST_TARGET) -> str:
    """A short description of the model in use at -O`opt_level` for `target`, and why
    there is none."""
    settings = _user_settings() if settings is None else settings
    if settings.model == "none":
        return "model: none (MLCC_MODEL=none), clang's own pipelines"
    broken = missing_bundled(opt_level, settings) if target == HOST_TARGET else None
    if broken:
        return f"model: none, clang's own pipelines at -O{opt_level}: {broken}"
    path = settings.model or str(bundled_model_path(opt_level, target))
    try:
        m = load(path)
    except ModelError as exc:
        return f"model: unusable ({exc}), clang's own pipelines"
    return (f"model: {Path(m.path).name} sha256:{m.digest}, -O{m.opt_level}, "
            f"{len(m.candidates)} candidates")
