"""The link: through the clang driver, so link lines, -v output and implicit
libraries are clang's. Sources are replaced by their objects in place."""

from __future__ import annotations

from mlcc.process import run_tool


def link(clang: str, link_args, objects: list[str], quiet: bool = False) -> None:
    """Run clang's link with `objects` standing where the sources stood (`quiet`: its
    output kept, for a trial link)."""
    argv = [clang] + [objects[a] if isinstance(a, int) else a for a in link_args]
    run_tool(argv, capture_stdout=quiet, capture_stderr=quiet)
