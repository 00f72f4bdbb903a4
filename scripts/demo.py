#!/usr/bin/env python3
"""Compile an example with clang-19 -Oz and with mlcc -Oz; print both sizes.

Sizes are the objective mlcc optimizes: bytes of .text/.data/.rodata in the
object file (mlcc.objective.object_size).
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from mlcc.objective import object_size

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "compare" / "src"


def main() -> int:
    sources = sys.argv[1:] or [str(EXAMPLES / "util.c"), str(EXAMPLES / "main.c")]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'file':40} {'clang -Oz':>10} {'mlcc -Oz':>10} {'change':>8}")
        total = [0, 0]
        for src in sources:
            sizes = []
            for compiler in ("clang-19", "mlcc"):
                obj = Path(tmp) / f"{compiler}.o"
                subprocess.run([compiler, "-Oz", "-c", src, "-o", str(obj)], check=True)
                sizes.append(object_size(obj))
            total = [total[0] + sizes[0], total[1] + sizes[1]]
            change = 100.0 * (sizes[1] - sizes[0]) / sizes[0] if sizes[0] else 0.0
            print(f"{Path(src).name:40} {sizes[0]:>10} {sizes[1]:>10} {change:>+7.1f}%")
        change = 100.0 * (total[1] - total[0]) / total[0] if total[0] else 0.0
        print(f"{'total':40} {total[0]:>10} {total[1]:>10} {change:>+7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
