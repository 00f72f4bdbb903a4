"""mlcc's own settings: `-fmlcc-*` flags over `MLCC_*` variables over a config file.

The compile command line belongs to clang, so mlcc's options are spelled
`-fmlcc-NAME[=VALUE]` and removed before clang sees them. The same setting
comes from the environment as `MLCC_NAME` and from the config file
(`$MLCC_CONFIG`, else `$XDG_CONFIG_HOME/mlcc/config.toml`) as `name = value`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from mlcc.errors import UsageError

FLAG_PREFIX = "-fmlcc-"

# K of a bare `-fmlcc-trials`: on the training projects (out-of-fold predictions
# of the first model, 8 candidates)
# each trial up to the third buys at least 0.15 points of total size, the fourth
# under 0.1 (docs/MODEL-REPORT.md, "Trials"); each trial is one more opt and code
# generation per file.
DEFAULT_TRIALS = 3
BARE_FLAG_VALUES = {"trials": str(DEFAULT_TRIALS)}


@dataclass(frozen=True)
class Settings:
    """Every knob of the driver, after precedence has been applied."""

    disable: bool = False        # be exactly clang
    model: str = ""              # path of the ONNX model; "" = the bundled one
    log: str = ""                # append one JSON line per translation unit
    collect: str = ""            # keep pre-optimization bitcode + command here
    verbose: bool = False        # one `mlcc:` line per file on stderr
    trials: int = 0              # build clang's pipeline + K candidates (trials.trial_pipelines), keep the smallest
    search: int = 0              # evaluations per file for model-guided search
    cache: str = ""              # decision cache directory; "" = XDG default
    no_cache: bool = False
    timeout: float = 600.0       # seconds for one opt or code generation run
    pipeline: str = ""           # force a pipeline ("clang" = clang's own), skip the model
    small_unit: int = 8192       # bitcode bytes under which clang's pipeline runs, model unasked
    tiny_source: int = 1000      # code bytes under which a source goes to clang whole, front end unrun
    codegen_variants: bool = True  # single-shot also builds the target's code generation variants and `also` pipelines (targets.toml)
    server: bool = True          # keep the model loaded in a background process for the build
    server_idle: float = 60.0    # seconds that process (and the compile server) wait idle before exiting
    compile_server: bool = True  # the native client hands commands to a warm compile server
    fork_server: bool = True     # in the compile server, clang runs forked from a warm clang (mlcc/fork_server.py)
    plugin: bool = True          # run a chosen pipeline inside clang through mlcc's pass plugin, where built (mlcc/plugin_build.py)
    one_process: bool = True     # where the decision reads nothing of the unit, compile it from source in one clang (mlcc/one_process.py)
    reuse_builds: bool = True    # trials and search: a build that optimizes the unit to an earlier one's module takes its object (mlcc/trials.py)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name.replace("_", "-") for f in fields(cls))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, raw, source: str):
    field = next(f for f in fields(Settings) if f.name == name)
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    text = str(raw).strip()
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind == "int":
            value = int(text)
            if value < 0:
                raise ValueError(text)
            return value
        if kind == "float":
            value = float(text)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(text)
            return value
        if name == "pipeline" and "clang[" in text:
            from mlcc import knobs  # only when a forced pipeline names knobs
            unknown = knobs.unknown_in(text)
            if unknown:
                raise UsageError(f"invalid value '{text}' for {source}: unknown clang pipeline "
                                 f"knob(s) {', '.join(unknown)} (known: {', '.join(knobs.table())})")
        return text
    except ValueError:
        raise UsageError(f"invalid value '{text}' for {source}") from None


def split_mlcc_flags(argv) -> tuple[list[str], dict[str, str]]:
    """Remove `-fmlcc-*` flags from argv; return (clang argv, {name: raw value})."""
    rest: list[str] = []
    found: dict[str, str] = {}
    known = set(Settings.names())
    for arg in argv:
        if not arg.startswith(FLAG_PREFIX):
            rest.append(arg)
            continue
        body = arg[len(FLAG_PREFIX):]
        name, _, value = body.partition("=")
        if name in known:
            value = value if "=" in body else BARE_FLAG_VALUES.get(name, "1")
        elif name.startswith("no-") and name[3:] in known and not value:
            name, value = name[3:], "0"
        elif not value and "=" not in body:
            value = "1"
        if name not in known:
            raise UsageError(f"unknown option '{arg}' (known: "
                             + ", ".join(FLAG_PREFIX + n for n in sorted(known)) + ")")
        found[name] = value
    return rest, found


def _config_file(environ) -> str | None:
    explicit = environ.get("MLCC_CONFIG")
    if explicit:
        return explicit
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(base, "mlcc", "config.toml")
    return path if os.path.isfile(path) else None


def _has_content(path: str) -> bool:
    """False for an empty file (MLCC_CONFIG=/dev/null turns the config file off): no TOML
    parser to load. A file that cannot be read is for tomllib to report."""
    if path == os.devnull:
        return False
    try:
        return not os.path.isfile(path) or os.path.getsize(path) > 0
    except OSError:
        return True


def load(flags: dict[str, str], environ=os.environ) -> Settings:
    """Apply precedence: command line > environment > config file > defaults."""
    values: dict[str, object] = {}
    config = _config_file(environ)
    if config is not None and _has_content(config):
        import tomllib  # only when a config file exists: keeps start-up lean
        try:
            with open(config, "rb") as f:
                table = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read config file {config}: {exc}") from None
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in {f.name for f in fields(Settings)}:
                raise UsageError(f"unknown setting '{key}' in {config}")
            values[name] = _convert(name, raw, f"'{key}' in {config}")
    for f in fields(Settings):
        env_name = "MLCC_" + f.name.upper()
        if env_name in environ:
            values[f.name] = _convert(f.name, environ[env_name], env_name)
    for name, raw in flags.items():
        key = name.replace("-", "_")
        values[key] = _convert(key, raw, FLAG_PREFIX + name)
    return Settings(**values)
