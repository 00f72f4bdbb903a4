"""Shared by the tests that run mlcc as a user would."""

from __future__ import annotations

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="mlcc-test-cache-")


def mlcc_env(**extra) -> dict:
    """The environment without the caller's MLCC_* settings, with a private decision cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
    env["MLCC_CACHE"] = _CACHE
    env.update(extra)
    return env
