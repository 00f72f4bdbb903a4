"""The corpus's projects: the list in `mlcc/learn/data/corpus-projects.toml`, checked.

Each entry is a Debian source package, its build system and its split
(training or validation); every project is built at one level, -Oz.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mlcc.errors import MlccError
from mlcc.learn.paths import LEARN_DATA

PROJECTS_FILE = LEARN_DATA / "corpus-projects.toml"

OPT_LEVEL = "-Oz"
SPLITS = ("train", "validation")
BUILD_SYSTEMS = ("autotools", "cmake", "make")


class CorpusError(MlccError):
    """The corpus could not be collected or indexed; the message says what to fix."""


@dataclass(frozen=True)
class Project:
    """One entry of the project list."""

    name: str
    package: str
    build: str
    split: str
    args: tuple[str, ...] = ()
    make_args: tuple[str, ...] = ()
    subdir: str = ""
    deps: tuple[str, ...] = ()


def load_projects(path: Path = PROJECTS_FILE) -> list[Project]:
    """Read and check the project list, in build order."""
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CorpusError(f"cannot read the project list {path}: {exc}") from None
    known = {"name", "package", "build", "split", "args", "make_args", "subdir", "deps"}
    projects: list[Project] = []
    for number, entry in enumerate(table.get("project", []), 1):
        where = f"{path}, project #{number} ({entry.get('package', '?')})"
        unknown = set(entry) - known
        if unknown or "package" not in entry:
            raise CorpusError(f"{where}: needs 'package'; unknown keys {sorted(unknown)}")
        if entry.get("build") not in BUILD_SYSTEMS:
            raise CorpusError(f"{where}: 'build' must be one of {', '.join(BUILD_SYSTEMS)}")
        if entry.get("split") not in SPLITS:
            raise CorpusError(f"{where}: 'split' must be one of {', '.join(SPLITS)}")
        projects.append(Project(
            name=entry.get("name", entry["package"]), package=entry["package"],
            build=entry["build"], split=entry["split"], args=tuple(entry.get("args", ())),
            make_args=tuple(entry.get("make_args", ())), subdir=entry.get("subdir", ""),
            deps=tuple(entry.get("deps", ()))))
    names = Counter(p.name for p in projects)
    if duplicates := [n for n, c in names.items() if c > 1]:
        raise CorpusError(f"{path}: projects listed twice: {', '.join(duplicates)}")
    return projects


def select(projects: list[Project], only: tuple[str, ...]) -> list[Project]:
    """The projects named in `only` (all when empty); unknown names are an error."""
    if not only:
        return projects
    by_name = {p.name: p for p in projects}
    if unknown := [n for n in only if n not in by_name]:
        raise CorpusError(f"not in {PROJECTS_FILE.name}: {', '.join(unknown)}")
    return [by_name[n] for n in only]
