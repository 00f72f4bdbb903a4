"""The pass-through path: clang itself replaces mlcc, after the reason is logged.

About half of a build's commands take it (links, configure probes, -E, -M,
assembly), so it imports only what it needs: no model, cache or temporary files.
"""

from __future__ import annotations

import os

from mlcc.process import exec_tool
from mlcc.settings import Settings
from mlcc.toolchain import find


def plain_command(cmd_driver: str, clang_argv, reason: str, settings: Settings,
                  logged: dict | None = None) -> list[str]:
    """clang with the user's arguments, after logging why (with `logged` added: a tiny
    source's source and output)."""
    clang = find("clang++" if cmd_driver == "c++" else "clang")
    if settings.log:
        from mlcc import record
        record.append_log(settings.log, {"path": "clang", "reason": reason, "driver": cmd_driver,
                                         "cwd": os.getcwd(), "argv": list(clang_argv), **(logged or {})})
    return [clang, *clang_argv]


def run_plain_clang(cmd_driver: str, clang_argv, reason: str, settings: Settings,
                    logged: dict | None = None) -> None:
    """Replace this process by clang with the user's arguments (`plain_command`)."""
    exec_tool(plain_command(cmd_driver, clang_argv, reason, settings, logged))
