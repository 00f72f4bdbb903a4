#!/usr/bin/env python3
"""What the measurement engine (mlcc/learn/engine.py) costs per measurement.

The same step runs into a fresh table in a temporary directory, never the
committed one: by default a small search (`search.run_jobs`: clang's pipeline,
`default<Oz>` and the first shared random pipelines on the first walked units of
the local corpus); with --label N, a labeling step: clang's pipeline and the
chosen candidates (models/data/candidates-O?.json) on the units `search label
--split train --limit N` measures, those over --max-bytes of bitcode left out (a
few huge units would make the run's tail one worker's). It runs with:

* `pool`: the fork pool every step had before the engine (`multiprocessing.Pool`,
  `imap_unordered`, SIGINT ignored in the workers), as the baseline;
* `local`: the engine's local backend;
* `ray`: the engine's Ray backend on a Ray started here with --jobs CPUs (its start
  is timed apart: a cluster is started once for many steps).

Each backend runs --repeat times (a fresh table each time, the backends taking
turns so that other jobs' load falls on each alike); the median wall time
gives measurements per second, and per second per worker. The sizes of every run
must agree. The machine may be shared with other jobs: say so beside the figures.

Usage: python scripts/bench_engine.py [--units 12] [--random 2] [--jobs 2] [--repeat 3]
       python scripts/bench_engine.py --label 250 [--max-bytes 65536] [--jobs 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine
from mlcc.learn.search import search


def _pool_task(job: search.Job) -> list[dict]:
    return search._measure_unit(job, {job.unit.bitcode: job.unit.bitcode})


def pool_search(jobs: list[search.Job], store: search.Store, workers: int) -> None:
    """The steps' fork pool before the engine."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=signal.signal,
                  initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
        for rows in pool.imap_unordered(_pool_task, jobs):
            store.append(rows)


def search_jobs(layout: Layout, units: int, n_random: int) -> list[search.Job]:
    """The small search: clang's pipeline, `default<Oz>` and `n_random` shared random
    pipelines on the first `units` walked units."""
    pipelines = [search.CLANG_PIPELINE, search.OPT_DEFAULT, *search.shared_random_pipelines(n_random)]
    walked = search.walk_sample(search.load_manifest(), 120)
    return [job for job in (search.corpus_job(u, layout, pipelines, {}) for u in walked) if job][:units]


def label_jobs(layout: Layout, limit: int, max_bytes: int) -> list[search.Job]:
    """The labeling step of `search label --split train --limit LIMIT` on a fresh table,
    without the units over `max_bytes` of bitcode."""
    candidates = json.loads(search.CANDIDATES.read_text())["pipelines"]
    pipelines = [search.CLANG_PIPELINE, *(p for p in candidates if p != search.CLANG_PIPELINE)]
    units = [u for u in search.label_sample(search.units_of(search.load_manifest(), "train"), limit)
             if u["bitcode_bytes"] <= max_bytes]
    bitcode_of = search.corpus_bitcode(layout)
    with tempfile.TemporaryDirectory() as tmp:  # features of units not in it are added: a copy
        table = Path(tmp) / search.FEATURES_TABLE.name
        shutil.copyfile(search.FEATURES_TABLE, table)
        counts = search.slow_pass_sizes([u for u in units if bitcode_of(u).exists()], bitcode_of, table)
    jobs = (search.corpus_job(u, layout, search.bounded_pipelines(pipelines, counts.get(u["id"])), {})
            for u in units)
    return [job for job in jobs if job]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=12)
    parser.add_argument("--random", type=int, default=2, help="Shared random pipelines.")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--label", type=int, default=0,
                        help="A labeling step on the units of `search label --limit LABEL` instead.")
    parser.add_argument("--max-bytes", type=int, default=65536,
                        help="With --label: leave out units with more bitcode.")
    parser.add_argument("--backends", default="pool,local,ray")
    args = parser.parse_args()

    layout = Layout.from_environment()
    if args.label:
        jobs = label_jobs(layout, args.label, args.max_bytes)
    else:
        jobs = search_jobs(layout, args.units, args.random)
    count = sum(len(job.pipelines) for job in jobs)
    print(f"{'labeling' if args.label else 'search'}: {len(jobs)} units, {count} measurements, "
          f"{args.jobs} workers, {args.repeat} runs each; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    backends = args.backends.split(",")
    if "ray" in backends:
        import ray

        start = time.perf_counter()
        ray.init(address="local", num_cpus=args.jobs, include_dashboard=False)
        print(f"ray: started in {time.perf_counter() - start:.1f} s", flush=True)
    tables: dict[str, list] = {}
    times: dict[str, list[float]] = {backend: [] for backend in backends}
    for run in range(args.repeat):  # the backends in turn, so that the machine's load falls on each
        for backend in backends:
            with tempfile.TemporaryDirectory() as tmp:
                store = search.Store(Path(tmp) / "m.jsonl.gz")
                start = time.perf_counter()
                if backend == "pool":
                    pool_search(jobs, store, args.jobs)
                else:
                    search.run_jobs(jobs, store, Engine(backend, args.jobs), f"{backend} {run + 1}")
                times[backend].append(time.perf_counter() - start)
                tables.setdefault(backend, []).append(dict(search.Store(store.path).sizes))
            print(f"{backend} run {run + 1}: {times[backend][-1]:.1f} s; load average "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for backend in backends:
        median = statistics.median(times[backend])
        print(f"{backend}: {' '.join(f'{t:.1f}' for t in times[backend])} s, median {median:.1f} s: "
              f"{count / median:.2f} measurements/s, {count / median / args.jobs:.2f} per worker")
    first = next(iter(tables.values()))[0]
    assert all(t == first for runs in tables.values() for t in runs), "the sizes differ"
    print("every run measured the same sizes")


if __name__ == "__main__":
    main()
