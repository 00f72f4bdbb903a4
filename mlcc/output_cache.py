"""Finished outputs by content: an unchanged unit rebuilt skips opt and code generation.

mlcc's object (or assembly) for a unit is a function of the unit's
pre-optimization bitcode, what decides its pipeline (the decision cache's key),
the code-generation and target options and the tools' binaries: the same
inputs give the same bytes, run after run (tests/test_cache.py). So the
finished bytes are kept under a key made of those, the way ccache keeps a whole
compile; the front end still runs every time (it makes the bitcode the key is
made of, and the dependency file).

An entry is a small JSON file in the decision cache (the bytes' sha256 and the
code generator's diagnostics, replayed on a hit); the bytes live beside it in
`outputs/`. Bytes that are missing or do not hash to the recorded digest are a
miss, never used. Total bytes are bounded: the least recently used go first.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path

from mlcc.cache import PRUNE_EVERY, DecisionCache, make_text_key, unlink_all, write_atomically

MAX_BYTES = 2 << 30  # 2 GiB of objects; ccache's default is 5 GB


def tool_identity(*paths: str) -> list:
    """Path, size and modification time of each tool: an upgraded LLVM is another key."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append([path, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([path, None, None])
    return out


def output_key(decision_key: str, pipeline_text: str, tools: list, assembly: bool) -> str:
    """The key of one unit's finished output; coloured diagnostics only go back to a terminal."""
    return make_text_key("output", decision_key, pipeline_text, tools, assembly, sys.stderr.isatty())


class OutputCache:
    """Objects and assembly files by content, next to the decision cache's entries."""

    def __init__(self, entries: DecisionCache, max_bytes: int = MAX_BYTES):
        self.entries = entries
        self.directory = entries.directory / "outputs"
        self.max_bytes = max_bytes

    def _path(self, digest: str) -> Path:
        return self.directory / digest[:2] / digest[2:]

    def fetch(self, key: str, dest: str) -> str | None:
        """Write the stored output to `dest` and return its diagnostics; None on a miss."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        digest, diagnostics = entry.get("output"), entry.get("diagnostics")
        if not (isinstance(digest, str) and len(digest) == 64 and isinstance(diagnostics, str)):
            return None
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            return None
        try:
            with open(dest, "wb") as f:
                f.write(data)
            os.utime(path)  # recently used: pruned last
        except OSError:
            return None
        return diagnostics

    def store(self, key: str, built: str, diagnostics: str) -> bool:
        """Keep a finished output; False when it cannot be written (never an error)."""
        try:
            data = Path(built).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if not self._path(digest).exists():
                write_atomically(self._path(digest), data)
        except OSError:
            return False
        if not self.entries.put(key, {"output": digest, "diagnostics": diagnostics}):
            return False
        if random.randrange(PRUNE_EVERY) == 0:
            self.prune()
        return True

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob("??/*") if not p.name.startswith(".tmp-")]

    def prune(self, max_bytes: int | None = None) -> int:
        """Remove the least recently used outputs beyond `max_bytes`; return how many went.
        Their entries stay and become misses."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        sized = []
        for p in self.files():
            try:
                st = p.stat()
            except OSError:
                continue
            sized.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in sized)
        doomed = []
        for _, size, p in sorted(sized, key=lambda t: t[0]):
            if total <= limit:
                break
            doomed.append(p)
            total -= size
        return unlink_all(doomed)

    def stats(self) -> dict:
        size = 0
        files = self.files()
        for p in files:
            try:
                size += p.stat().st_size
            except OSError:
                pass
        return {"outputs": len(files), "output_bytes": size, "output_limit": self.max_bytes}

    def clear(self) -> int:
        return unlink_all(self.files())


def fetch_or_build(entries: DecisionCache | None, key: str | None, path: str, build):
    """The unit's output from the cache (written to `path`), else `build()`'s, then kept.
    `build` returns (output path, diagnostics); the result is (output path, diagnostics,
    "hit", "miss" or "off")."""
    if entries is None or key is None:
        return (*build(), "off")
    outputs = OutputCache(entries)
    diagnostics = outputs.fetch(key, path)
    if diagnostics is not None:
        return path, diagnostics, "hit"
    output, diagnostics = build()
    outputs.store(key, output, diagnostics)
    return output, diagnostics, "miss"
