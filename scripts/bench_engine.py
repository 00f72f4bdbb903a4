#!/usr/bin/env python3
"""What the measurement engine (mlcc/learn/engine.py) costs per measurement.

The same small search (`search.run_jobs`: clang's pipeline, `default<Oz>` and the
first shared random pipelines on the first walked units of the local corpus) runs
into a fresh table in a temporary directory, never the committed one, with:

* `pool`: the fork pool every step had before the engine (`multiprocessing.Pool`,
  `imap_unordered`, SIGINT ignored in the workers), as the baseline;
* `local`: the engine's local backend;
* `ray`: the engine's Ray backend on a Ray started here with --jobs CPUs (its start
  is timed apart: a cluster is started once for many steps).

Each backend runs --repeat times (a fresh table each time); the median wall time
gives measurements per second, and per second per worker. The sizes of every run
must agree. The machine may be shared with other jobs: say so beside the figures.

Usage: python scripts/bench_engine.py [--units 12] [--random 2] [--jobs 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=12)
    parser.add_argument("--random", type=int, default=2, help="Shared random pipelines.")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="pool,local,ray")
    args = parser.parse_args()

    layout = Layout.from_environment()
    pipelines = [search.CLANG_PIPELINE, search.OPT_DEFAULT, *search.shared_random_pipelines(args.random)]
    units = search.walk_sample(search.load_manifest(), 120)
    jobs = [job for job in (search.corpus_job(u, layout, pipelines, {}) for u in units) if job]
    jobs = jobs[:args.units]
    count = len(jobs) * len(pipelines)
    print(f"{len(jobs)} units x {len(pipelines)} pipelines = {count} measurements, "
          f"{args.jobs} workers, {args.repeat} runs each")
    tables = {}
    for backend in args.backends.split(","):
        if backend == "ray":
            import ray

            start = time.perf_counter()
            ray.init(address="local", num_cpus=args.jobs, include_dashboard=False)
            print(f"ray: started in {time.perf_counter() - start:.1f} s")
        times = []
        for run in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                store = search.Store(Path(tmp) / "m.jsonl.gz")
                start = time.perf_counter()
                if backend == "pool":
                    pool_search(jobs, store, args.jobs)
                else:
                    search.run_jobs(jobs, store, Engine(backend, args.jobs), f"{backend} {run + 1}")
                times.append(time.perf_counter() - start)
                tables.setdefault(backend, []).append(dict(search.Store(store.path).sizes))
        median = statistics.median(times)
        print(f"{backend}: {' '.join(f'{t:.1f}' for t in times)} s, median {median:.1f} s: "
              f"{count / median:.2f} measurements/s, {count / median / args.jobs:.2f} per worker")
    first = next(iter(tables.values()))[0]
    assert all(t == first for runs in tables.values() for t in runs), "the sizes differ"
    print("every run measured the same sizes")


if __name__ == "__main__":
    main()
