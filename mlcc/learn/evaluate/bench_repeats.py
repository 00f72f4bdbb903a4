"""Builds measured more than once (`mlcc-tool bench --repeat N`): one configuration's
runs folded into one result whose times are their medians.

This machine's CPU times wander by 10 % and more between two builds of the same tree,
and one slow clang build can move a ratio by a tenth; the ratios issue 26 asks for are
taken from medians. A run's sizes must not change from one build to the next (mlcc's
decisions do not depend on time); when they do, the result says so.
"""

from __future__ import annotations

import statistics

# what is timed in a run and folded as a median; the rest is the newest run's
TIMES = ("cpu", "wall")


def fold(earlier: dict | None, newest: dict) -> dict:
    """`newest`, one build of a configuration, folded with the `earlier` result of the
    same configuration (None: the first build). The result keeps each build's times under
    `repeats`, in the order they ran; its CPU, wall time, stage breakdown and compile
    server CPU are their medians, its sizes the newest build's. `sizes_differ` lists the
    object files whose size changed between two builds. A failed build is not folded."""
    if not newest.get("ok") or not earlier or not earlier.get("ok"):
        return {**newest, "repeats": [_times(newest)]} if newest.get("ok") else newest
    runs = [*earlier.get("repeats", [_times(earlier)]), _times(newest)]
    folded = {**newest, "repeats": runs}
    for key in TIMES:
        folded[key] = round(statistics.median(r[key] for r in runs), 2)
    if all("breakdown" in r for r in runs):
        folded["breakdown"] = {k: round(statistics.median(r["breakdown"].get(k, 0.0) for r in runs), 3)
                               for k in runs[-1]["breakdown"]}
    if all("server_cpu" in r for r in runs):
        folded["model_servers"] = {**newest.get("model_servers", {}),
                                   "cpu": round(statistics.median(r["server_cpu"] for r in runs), 2)}
    differ = sorted(set(earlier.get("sizes_differ", []))
                    | {path for path, size in newest.get("objects", {}).items()
                       if earlier.get("objects", {}).get(path, size) != size})
    if differ:
        folded["sizes_differ"] = differ
    else:
        folded.pop("sizes_differ", None)
    return folded


def count(result: dict | None) -> int:
    """How many builds a result holds (0: none, or a failed one)."""
    if not result or not result.get("ok"):
        return 0
    return len(result.get("repeats", [None]))


def _times(run: dict) -> dict:
    """What `fold` keeps of one build."""
    out = {key: run.get(key) for key in TIMES}
    out["date"] = run.get("date")
    if "breakdown" in run:
        out["breakdown"] = dict(run["breakdown"])
    if "model_servers" in run:
        out["server_cpu"] = float(run["model_servers"].get("cpu", 0.0))
    return out
