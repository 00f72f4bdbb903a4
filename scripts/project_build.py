#!/usr/bin/env python3
"""Build real projects with a chosen compiler and run their own test suites.

Runs the recipes of ``mlcc/learn/evaluate/projects.py`` by hand, e.g.::

    python scripts/project_build.py zlib-cmake --cc mlcc --opt -Oz
    python scripts/project_build.py all --cc clang-19 --opt -Os --opt -Oz --json results.jsonl
    python scripts/project_build.py --list

Each build runs in a new directory under ``--workdir`` (default: a fresh
temporary directory, kept so that the built artifacts and ``build.log`` can be
inspected). Prints one line per build and, with ``--json``, appends each
result as a JSON line. Exits 1 if any build or test failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mlcc.learn.evaluate import projects

_CXX_FOR_CC = {"mlcc": "mlcc++", "clang": "clang++", "gcc": "g++", "cc": "c++"}


def default_cxx(cc: str) -> str:
    """Guess the C++ compiler that goes with a C compiler (mlcc -> mlcc++, clang-19 -> clang++-19)."""
    name = Path(cc).name
    for c_name, cxx_name in _CXX_FOR_CC.items():
        if name == c_name or name.startswith(c_name + "-"):
            return str(Path(cc).with_name(cxx_name + name[len(c_name):]))
    raise SystemExit(f"cannot guess the C++ compiler for {cc!r}: pass --cxx")


def resolve(command: str) -> str:
    """Return the absolute path of a compiler command, or exit if it is not found."""
    path = projects.find_compiler(command)
    if path is None:
        raise SystemExit(f"compiler not found on PATH: {command}")
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", metavar="RECIPE",
                        help=f"recipe names, or 'all' ({', '.join(projects.RECIPES)})")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--cc", default="mlcc", help="C compiler command (default: mlcc)")
    parser.add_argument("--cxx", help="C++ compiler command (default: derived from --cc)")
    parser.add_argument("--opt", action="append", choices=["-Os", "-Oz"],
                        help="optimization flag, may be repeated (default: -Oz)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel make jobs (default: 2)")
    parser.add_argument("--workdir", type=Path, help="parent directory for the builds")
    parser.add_argument("--mlcc-log", type=Path, help="set MLCC_LOG to this file for the builds")
    parser.add_argument("--json", type=Path, help="append each result to this file as a JSON line")
    joined = []
    for arg in argv:
        if joined and joined[-1] == "--opt":
            joined[-1] = f"--opt={arg}"
        else:
            joined.append(arg)
    return parser.parse_args(joined)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for recipe in projects.RECIPES.values():
            print(f"{recipe.name:16} {recipe.language:4} Debian source package {recipe.package}")
        return 0
    names = list(projects.RECIPES) if args.recipes == ["all"] else args.recipes
    unknown = [n for n in names if n not in projects.RECIPES]
    if not names or unknown:
        choices = " ".join(["all", *projects.RECIPES])
        raise SystemExit(f"unknown or missing recipe {unknown}; choose from: {choices}")
    cc = resolve(args.cc)
    cxx = resolve(args.cxx or default_cxx(args.cc))
    parent = args.workdir or Path(tempfile.mkdtemp(prefix="mlcc-projects-"))
    parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in names:
        for opt in args.opt or ["-Oz"]:
            workdir = Path(tempfile.mkdtemp(prefix=f"{name}{opt}-", dir=parent))
            try:
                result = projects.build_project(name, cc, cxx, opt, workdir, jobs=args.jobs,
                                                mlcc_log=args.mlcc_log)
            except projects.FetchError as exc:
                print(f"FETCH FAILED {name}: {exc}", file=sys.stderr)
                failures += 1
                continue
            status = "PASS" if result.passed else "FAIL"
            print(f"{status} {name:16} {result.compiler:12} {opt}  build {result.build_seconds}s  "
                  f"test {result.test_seconds}s  {result.artifact or result.log}", flush=True)
            if result.error:
                print(result.error, file=sys.stderr)
                failures += 1
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(result.to_dict()) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
