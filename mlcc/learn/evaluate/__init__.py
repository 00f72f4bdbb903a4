"""Evaluate: mlcc against clang-19 on real projects that are not in the corpus.

projects (real projects built with their own build systems: sources, recipes,
checks) -> bench (`mlcc-tool bench`: bench_builds builds, bench_measure measures,
bench_report writes docs/BENCHMARKS.md and readme_headline the README's
headline) -> run_time (instructions the programs of those builds execute,
docs/RUN-TIME.md). Commands: `mlcc-tool bench`, `python -m mlcc.learn.evaluate`.
"""
