"""How much could a per-call-site inlining policy add on C++ units? (issue 28, idea 3)

LLVM 19's ML inliner can ask a process outside the compiler for each decision: with
`-enable-ml-inliner=release -inliner-interactive-channel-base=B` the inliner writes
each call site's features (the MLGO inliner's, plus the default heuristic's own
decision with `-inliner-interactive-include-default`) to the pipe `B.out` and reads
its answer, one int64 (inline or not), from `B.in`. The protocol is LLVM's training
log: a JSON header line naming the tensors, then per call site a line
`{"observation": N}`, the raw tensors in the header's order and a newline.

This study answers from Python with the default heuristic's decision, flipped at
random: each call site with probability p (cycling over PROBABILITIES), seeded per
unit and trial. It runs on clang's own -Oz pipeline (clang compiles the unit's
bitcode with its passes; the ML advisor is only built by clang's pipeline builder,
not by a pipeline given as text), so the room it bounds is the room over clang's
inlining, not over mlcc's default. The unit's best is the smallest of clang's
object, the rebuilt default's and the trials: an estimate from below of what a per-call-site policy could
find, not something a learner would reach. A first build answers every call site
with the default and must give clang's own object; the rows say where it did not.

    python scripts/mlgo_inline_room.py [--language c++] [--trials 16] [--jobs 2] [--limit 0]

writes models/data/mlgo-inline-room-<target>-<language>-Oz.json (docs/MODEL.md,
issue 28's table). Needs the target's corpus (`make corpus`).
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcc import codegen  # noqa: E402
from mlcc.errors import ToolFailed  # noqa: E402
from mlcc.learn.corpus.layout import Layout  # noqa: E402
from mlcc.learn.measure import Unit, _plan, prepare  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.learn.search import search  # noqa: E402
from mlcc.objective import object_size  # noqa: E402
from inline_hint_room import language_sample, on_disk  # noqa: E402
from per_function_room import gains  # noqa: E402

PROBABILITIES = (0.005, 0.02, 0.05, 0.2)
TYPE_BYTES = {"int64_t": 8, "int32_t": 4, "float": 4, "double": 8}


def _tensor_bytes(spec: dict) -> int:
    count = 1
    for n in spec.get("shape", [1]):
        count *= n
    return count * TYPE_BYTES[spec["type"]]


class Host:
    """Answers one compile's inlining questions on the channel `base` with `policy`
    (the rebuilt default decision, 0 or 1, in; the answer out); counts questions and
    flips."""

    def __init__(self, base: str, policy):
        self.base, self.policy = base, policy
        self.questions = self.flips = 0
        self.finished = threading.Event()

    def serve(self) -> None:
        try:
            with open(self.base + ".in", "wb", buffering=0) as to_compiler, \
                    open(self.base + ".out", "rb") as from_compiler:
                header = from_compiler.readline()
                if not header:
                    return
                specs = json.loads(header)["features"]
                names = [s["name"] for s in specs]
                cost, threshold = names.index("cost_estimate"), names.index("threshold")
                while True:
                    line = from_compiler.readline()
                    if not line:
                        return
                    event = json.loads(line)
                    if "context" in event:
                        event = json.loads(from_compiler.readline())
                    tensors = [from_compiler.read(_tensor_bytes(s)) for s in specs]
                    from_compiler.readline()
                    default = int(struct.unpack("<q", tensors[cost])[0] < struct.unpack("<q", tensors[threshold])[0])
                    answer = self.policy(default)
                    self.questions += 1
                    self.flips += answer != default
                    to_compiler.write(struct.pack("<q", answer))
        except (OSError, ValueError, KeyError):  # the compile died or spoke out of turn
            return
        finally:
            self.finished.set()

    def release(self) -> None:
        """After the compile ended: unblock a host still waiting to open a pipe."""
        while not self.finished.wait(0.01):
            for name, flags in ((".in", os.O_RDONLY), (".out", os.O_WRONLY)):
                try:
                    os.close(os.open(self.base + name, flags | os.O_NONBLOCK))
                except OSError:
                    pass


def _unit_row(args) -> dict | None:
    """Worker: one unit's clang build, its all-default channel build and its trials."""
    unit_dir, unit_id, project, clang_size, trials, seed = args
    unit = Unit.load(Path(unit_dir), unit_id)
    with tempfile.TemporaryDirectory(prefix="mlcc-mlgo-") as tmp:
        try:
            prep = prepare(unit, tmp)
        except Exception:  # a unit whose tools fail is left out
            return None
        plan = _plan(unit)

        def build(i: int, policy) -> tuple[int | None, Host | None]:
            obj = os.path.join(tmp, f"o{i}.o")
            host, extra = None, ()
            if policy is not None:
                base = os.path.join(tmp, f"channel{i}")
                os.mkfifo(base + ".in")
                os.mkfifo(base + ".out")
                host = Host(base, policy)
                extra = ("-mllvm", "-enable-ml-inliner=release",
                         "-mllvm", f"-inliner-interactive-channel-base={base}")
                serving = threading.Thread(target=host.serve, daemon=True)
                serving.start()
            try:
                codegen.generate(prep.clang, plan, prep.bitcode, obj, clang_passes=True,
                                 extra_args=extra, timeout=300)
                size = object_size(obj)
            except ToolFailed:
                size = None
            if host is not None:
                host.release()
                serving.join()
            return size, host

        start = time.perf_counter()
        plain, _ = build(0, None)
        seconds = time.perf_counter() - start
        if plain is None:
            return None
        channel, host = build(1, lambda d: d)
        sizes, flips, failed = [], [], 0
        for i in range(trials):
            rng = random.Random(f"{seed}:{unit_id}:{i}")
            p = PROBABILITIES[i % len(PROBABILITIES)]
            size, trial_host = build(2 + i, lambda d, rng=rng, p=p: 1 - d if rng.random() < p else d)
            if size is None:
                failed += 1
                continue
            sizes.append(size)
            flips.append(trial_host.flips)
    return {"unit": unit_id, "project": project, "clang": clang_size, "plain": plain,
            "channel_default": channel, "call_sites": host.questions if host else 0,
            "best": min([plain, *([channel] if channel else []), *sizes]), "trials": len(sizes), "failed": failed, "flips": flips,
            "smaller_trials": sum(s < plain for s in sizes),
            "changed_trials": sum(s != plain for s in sizes), "clang_seconds": round(seconds, 3)}


@click.command()
@click.option("--language", type=click.Choice(["c++", "c"]), default="c++", show_default=True)
@click.option("--trials", default=16, show_default=True, help="builds with flipped decisions per unit")
@click.option("--jobs", default=2, show_default=True)
@click.option("--limit", default=0, show_default=True,
              help="at most this many units per sample, seeded (0: all)")
@click.option("--seed", default=0, show_default=True)
def main(language: str, trials: int, jobs: int, limit: int, seed: int) -> None:
    name = search.TARGET
    store = search.Store(search.MEASUREMENTS).by_unit()
    layout = Layout.from_environment()
    manifest = search.load_manifest()
    result = {"target": name, "language": language, "pipeline": "clang's own -Oz", "trials": trials,
              "probabilities": list(PROBABILITIES), "seed": seed, "samples": {}}
    for sample in ("train", "validation"):
        units = language_sample(manifest, sample, language, limit, seed)
        work = [(directory, u["id"], u["project"], clang, trials, seed)
                for directory, u, clang in on_disk(units, store, layout)]
        print(f"{name} {language} {sample}: {len(work)} units", flush=True)
        start = time.perf_counter()
        with ProcessPoolExecutor(jobs) as pool:
            rows = [r for r in pool.map(_unit_row, work, chunksize=1) if r]
        summary = {key: gains(rows, key) for key in ("plain", "best")}
        summary["channel_default"] = gains([r for r in rows if r["channel_default"]], "channel_default")
        summary.update(units=len(rows), wall_seconds=round(time.perf_counter() - start, 1),
                       units_with_a_smaller_trial=sum(r["best"] < r["plain"] for r in rows),
                       channel_default_differs=sum(r["channel_default"] != r["plain"] for r in rows),
                       plain_differs_from_table=sum(r["plain"] != r["clang"] for r in rows),
                       call_sites=sum(r["call_sites"] for r in rows),
                       failed_trials=sum(r["failed"] for r in rows))
        print(f"  {json.dumps(summary)}", flush=True)
        result["samples"][sample] = {**summary, "rows": rows}
    out = MODELS / "data" / f"mlgo-inline-room-{name}-{language.replace('+', 'x')}-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
