"""Write mlcc/data/clang-separate-flags.txt: every clang-19 driver flag that takes
its value(s) as the next argument(s), with how many, as clang-19 itself reports it.

clang lists its driver flags (`--autocomplete=-`); for each one that does not end
in `=`, `clang-19 -### -c x.c FLAG` with nothing after the flag makes clang say
"argument to 'FLAG' is missing (expected N value(s))" when the flag takes N
separate arguments. Run it again for a new clang: `python scripts/clang_separate_flags.py`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "mlcc" / "data" / "clang-separate-flags.txt"
MISSING = re.compile(r"argument to '(?P<flag>[^']+)' is missing \(expected (?P<n>\d+) values?\)")


def driver_flags(clang: str) -> list[str]:
    listing = subprocess.run([clang, "--autocomplete=-"], capture_output=True, text=True, check=True).stdout
    names = {line.split("\t", 1)[0] for line in listing.splitlines() if line.startswith("-")}
    return sorted(n for n in names if not n.endswith("="))


def arity(clang: str, source: str, flag: str) -> int:
    """How many separate arguments `flag` takes (0: none, or it is not a driver flag)."""
    done = subprocess.run([clang, "-###", "-c", source, flag], capture_output=True, text=True)
    match = MISSING.search(done.stderr)
    return int(match["n"]) if match and match["flag"] == flag else 0


def main(clang: str = "clang-19") -> None:
    version = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    with tempfile.TemporaryDirectory() as tmp:
        source = str(Path(tmp) / "x.c")
        Path(source).write_text("int x;\n")
        flags = driver_flags(clang)
        with ThreadPoolExecutor(max_workers=4) as pool:
            counts = list(pool.map(lambda f: arity(clang, source, f), flags))
    rows = [f"{flag} {n}" for flag, n in zip(flags, counts) if n]
    OUT.write_text(f"# Driver flags of {version} that take separate arguments, and how many.\n"
                   f"# Made by scripts/clang_separate_flags.py from {len(flags)} flags; read by mlcc/args.py.\n"
                   + "\n".join(rows) + "\n")
    print(f"{len(rows)} of {len(flags)} flags take separate arguments -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:])
