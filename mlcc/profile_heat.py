"""Whether a profiled unit holds hot code, by its own profile.

A unit compiled with a front-end profile (`-fprofile-instr-use`) carries the
profile in its bitcode: the module's ProfileSummary and, on functions and
branches, `function_entry_count` and `branch_weights`. A count at or above the
summary's hot threshold (the smallest count among the blocks that make up
99 % of the run, LLVM's `-profile-summary-cutoff-hot`) marks the unit hot.
A hot unit gets clang's own pipeline: mlcc's pipelines trade speed for bytes,
and a profiled build is asked to keep its profile's speed (lua at -Os:
1.32x the instructions when every unit took mlcc's pipeline; docs/BENCHMARKS.md).
"""

from __future__ import annotations

import re

HOT_CUTOFF = 990_000  # parts per million of the run
# a DetailedSummary entry: !{i32 cutoff, i64 min count, i32 number of counts}
_SUMMARY_ENTRY = re.compile(r"!\{i32 (\d+), i64 (\d+), i32 \d+\}")
_COUNTS = re.compile(r'!\{!"(?:branch_weights|function_entry_count)"((?:, i(?:32|64) \d+)+)\}')
_NUMBER = re.compile(r"i(?:32|64) (\d+)")


def hot_threshold(ir_text: str) -> int | None:
    """The count at which code is hot by the module's ProfileSummary (None without one)."""
    if '!"ProfileSummary"' not in ir_text:
        return None
    entries = sorted((int(c), int(n)) for c, n in _SUMMARY_ENTRY.findall(ir_text))
    return next((count for cutoff, count in entries if cutoff >= HOT_CUTOFF), None)


def max_count(ir_text: str) -> int:
    """The largest entry count or branch weight in the module (0 without any)."""
    return max((int(n) for group in _COUNTS.findall(ir_text) for n in _NUMBER.findall(group)), default=0)


def holds_hot_code(bitcode: str) -> bool:
    """True when the unit's own profile says some of its code is hot, or when the
    bitcode cannot be read here (then clang's pipeline is the safe answer)."""
    import llvmlite.binding as llvm

    try:
        with open(bitcode, "rb") as f:
            text = str(llvm.parse_bitcode(f.read()))
    except (OSError, RuntimeError):
        return True
    threshold = hot_threshold(text)
    return threshold is not None and threshold > 0 and max_count(text) >= threshold
