"""IR feature extraction for one translation unit.

Reads the unoptimised LLVM bitcode that the front end produced
(``clang -Oz -Xclang -disable-llvm-passes -emit-llvm -c``) with LLVM's own
bitcode reader (through :mod:`llvmlite.binding`) and turns it into a
fixed-length ``float32`` vector.  The names and the order of the vector's
entries are data: ``mlcc/data/feature-schema.json``.

Feature groups (see the schema for the exact list):

* the 56 Autophase features (Haj-Ali et al., "AutoPhase", MLSys 2020), with
  the semantics of CompilerGym's ``Autophase`` observation;
* one count per LLVM instruction opcode (``inst_<opcode>``, like
  CompilerGym's ``InstCount``) and ``inst_other`` for opcodes the schema
  does not name;
* module-level extras that matter for code size (function attributes and
  linkage, globals, call sites, switches, loops, function sizes);
* ``log1p_<name>``: ``log1p`` of another feature of the schema.

Semantics worth knowing:

* Autophase counters follow CompilerGym's ``InstCount`` pass: every
  function of the module is visited, so ``TotalFuncs`` counts declarations
  too; predecessor/successor counts and critical edges count parallel edges
  (a switch with two cases to one block) once per edge; constants are counted
  per operand occurrence; ``returnInt`` counts ``call`` (not ``invoke``) to a
  known function returning an integer.
* The module is read by the LLVM inside llvmlite (newer than 19), which
  upgrades 19's bitcode on load.  Two visible effects: ``switch`` case values
  are no longer operands (so, unlike CompilerGym on old LLVMs, they are not
  in ``const32Bit``/``numConstZeroes``/...), and the ``llvm.lifetime.*``
  intrinsics lose their size argument (the old declarations stay, counted in
  ``TotalFuncs``/``funcs_declared_intrinsic``).  Debug records are not
  instructions, so ``-g`` does not change any feature.
* Extras: ``funcs_*`` attributes and linkage count defined functions;
  ``funcs_address_taken``: defined or declared functions used by an
  instruction other than as the callee; ``funcs_internal_no_direct_call`` /
  ``_called_once``: internal functions, not address-taken by an instruction,
  with 0 / 1 direct call sites (references from global initializers are not
  seen); ``funcs_small``: at most 10 instructions; ``calls_*``: call sites
  (``call``, ``invoke``, ``callbr``) by callee kind; ``gvars_private`` are
  clang's string literals and constant tables (llvmlite does not expose the
  ``constant`` flag), ``gvars_bytes`` the ABI size of all defined globals;
  ``back_edges``/``loop_headers``: edges into a block on the DFS stack, and
  their distinct targets (natural loops, for reducible CFGs);
  ``blocks_unreachable``: blocks other than the entry with no predecessor.

The module's IR is read and counted by :mod:`mlcc.ir_counts`; this module
holds the schema and turns the counts into the vector.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np

from mlcc import ir_counts, ir_reader
from mlcc.errors import FeatureError

__all__ = [
    "FEATURE_NAMES",
    "SCHEMA_VERSION",
    "FeatureError",
    "extract_features",
    "extract_feature_dict",
    "slow_pass_size",
    "schema_hash",
]


# --------------------------------------------------------------------------
# Schema (data, not code)

_SCHEMA_PATH = Path(__file__).parent / "data" / "feature-schema.json"


def _load_schema() -> dict:
    with open(_SCHEMA_PATH, encoding="utf-8") as fh:
        schema = json.load(fh)
    names = schema.get("features")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RuntimeError(f"{_SCHEMA_PATH}: 'features' must be a list of strings")
    if len(set(names)) != len(names):
        raise RuntimeError(f"{_SCHEMA_PATH}: duplicate feature names")
    return schema


_SCHEMA = _load_schema()
SCHEMA_VERSION: int = int(_SCHEMA["schema_version"])
FEATURE_NAMES: tuple[str, ...] = tuple(_SCHEMA["features"])
_TOTAL_INSTS = FEATURE_NAMES.index("TotalInsts")
_LARGEST_FUNCTION = FEATURE_NAMES.index("max_func_insts")


def schema_hash() -> str:
    """First 16 hex digits of the sha256 of the schema's canonical JSON."""
    canon = json.dumps(
        {"schema_version": SCHEMA_VERSION, "features": list(FEATURE_NAMES)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canon.encode("ascii")).hexdigest()[:16]


_INST_PREFIX = "inst_"
_LOG_PREFIX = "log1p_"
# Opcodes that the schema counts one by one; every other opcode goes to
# ``inst_other``.
_SCHEMA_OPCODES = frozenset(
    n[len(_INST_PREFIX):].encode("ascii")
    for n in FEATURE_NAMES
    if n.startswith(_INST_PREFIX) and n != "inst_other"
)

# --------------------------------------------------------------------------
# Extraction


def extract_feature_dict(bitcode_path: str | os.PathLike) -> dict[str, float]:
    """Every feature of the schema, by name (same values as
    :func:`extract_features`)."""
    vec = extract_features(bitcode_path)
    return dict(zip(FEATURE_NAMES, vec.tolist()))


def slow_pass_size(vector, opt_level: str) -> float:
    """What decides whether a slow pass may run on the unit at -O`opt_level`
    (`passes.bounded`), from its feature vector: its instructions, unless its largest
    function is over the level's bound (`passes.slow_pass_size`)."""
    from mlcc import passes
    return passes.slow_pass_size(float(vector[_TOTAL_INSTS]), float(vector[_LARGEST_FUNCTION]),
                                 opt_level)


def extract_features(bitcode_path: str | os.PathLike) -> np.ndarray:
    """Feature vector of one bitcode file: float32, shape ``(len(FEATURE_NAMES),)``.

    Raises :class:`FeatureError` when the file cannot be read or is not
    LLVM bitcode.
    """
    data, shown = ir_reader.read_bitcode(bitcode_path)
    return _vectorize(ir_counts.count(data, shown))


def _vectorize(values: dict) -> np.ndarray:
    out = np.empty(len(FEATURE_NAMES), dtype=np.float32)
    opcodes: Counter = values["_opcodes"]
    for k, name in enumerate(FEATURE_NAMES):
        if name.startswith(_LOG_PREFIX):
            v = math.log1p(_lookup(values, opcodes, name[len(_LOG_PREFIX):]))
        else:
            v = _lookup(values, opcodes, name)
        out[k] = v
    return out


def _lookup(values: dict, opcodes: Counter, name: str) -> float:
    if name in values:
        return values[name]
    if name == "inst_other":
        return sum(n for op, n in opcodes.items() if op not in _SCHEMA_OPCODES)
    if name.startswith(_INST_PREFIX):
        return opcodes.get(name[len(_INST_PREFIX):].encode("ascii"), 0)
    raise KeyError(f"feature {name!r} in {_SCHEMA_PATH.name} is not computed by mlcc.features")
