"""The decision cache: which pipeline a translation unit got, keyed by content.

Key: the unit's pre-optimization bitcode, the options that change code
generation, the model's identity and the decision settings (trials, search,
forced pipeline), and mlcc's version. An unchanged file rebuilt gets the
same pipeline without features, inference, trials or search. Entries are
written atomically (temporary file + rename), so `make -j` is safe; an entry
that does not parse or whose recorded key differs is ignored and replaced.
Size is bounded by pruning the oldest entries now and then.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

from mlcc import __version__

MAX_ENTRIES = 50_000
PRUNE_EVERY = 200  # on average, one write in this many prunes


def default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlcc" / "decisions"


def _hasher(parts):
    h = hashlib.sha256(f"mlcc {__version__}\0".encode())
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h


def make_key(bitcode: str, *parts) -> str:
    """Content address of one decision: the bitcode's bytes and what else decides it."""
    h = _hasher(parts)
    with open(bitcode, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_text_key(*parts) -> str:
    """Content address of an entry that depends on no file."""
    return _hasher(parts).hexdigest()


def open_cache(settings):
    """The decision cache the settings name, or None when turned off."""
    if settings.no_cache:
        return None
    return DecisionCache(settings.cache or None)


class DecisionCache:
    """A directory of small JSON files, two-level by key prefix."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else default_directory()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key[2:]}.json"

    def get(self, key: str) -> dict | None:
        """The stored entry, or None when absent, unreadable, corrupt or foreign."""
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        return entry

    def remove(self, key: str) -> None:
        """Drop the entry under `key`, if any (never an error)."""
        unlink_all([self._path(key)])

    def put(self, key: str, entry: dict) -> bool:
        """Store a decision; False when the directory cannot be written (never an error)."""
        data = json.dumps({**entry, "key": key, "created": round(time.time(), 3)}, sort_keys=True)
        try:
            write_atomically(self._path(key), data.encode())
        except OSError:
            return False
        if random.randrange(PRUNE_EVERY) == 0:
            self.prune()
        return True

    def entries(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob("??/*.json")]

    def prune(self, limit: int = MAX_ENTRIES) -> int:
        """Remove the oldest entries beyond `limit`; return how many went."""
        files = self.entries()
        if len(files) <= limit:
            return 0
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0
        files.sort(key=mtime)
        return unlink_all(files[:len(files) - limit])

    def stats(self) -> dict:
        files = self.entries()
        size = 0
        for p in files:
            try:
                size += p.stat().st_size
            except OSError:
                pass
        return {"directory": str(self.directory), "entries": len(files), "bytes": size,
                "limit": MAX_ENTRIES}

    def clear(self) -> int:
        return unlink_all(self.entries())


def write_atomically(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a temporary file beside it, then a rename): a
    reader in another process never sees a partial file. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        unlink_all([Path(tmp)])
        raise


def unlink_all(paths) -> int:
    """Remove files, skipping those another process removed first; return how many went."""
    removed = 0
    for p in paths:
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
    return removed
