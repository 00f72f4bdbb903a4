"""Where the corpus lives: the directories under the data root.

The root is `$MLCC_DATA`, else `~/.cache/mlcc`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlcc.learn.corpus.projects import Project


@dataclass(frozen=True)
class Layout:
    """The directories under the data root."""

    root: Path

    @classmethod
    def from_environment(cls) -> "Layout":
        return cls(Path(os.environ.get("MLCC_DATA") or Path.home() / ".cache" / "mlcc"))

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def corpus(self, project: Project) -> Path:
        return self.root / "corpus" / project.name

    def units(self, project_name: str, level: str = "z", target: str = "x86_64") -> Path:
        """A project's units at -O`level` for `target`: the collected ones (-Oz, x86-64),
        or those derive.py made from them."""
        name = "corpus" if target == "x86_64" else f"corpus-{target}"
        return self.root / (name if level == "z" else f"{name}-O{level}") / project_name

    def workdir(self, project: Project) -> Path:
        return self.root / "build" / project.name

    def marker(self, project: Project) -> Path:
        return self.corpus(project) / ".done"

    def log(self, project: Project) -> Path:
        return self.logs / f"{project.name}.log"
