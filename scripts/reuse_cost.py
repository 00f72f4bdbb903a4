"""What the pass plugin's hash of an optimized module costs (docs/DESIGN.md, "Builds of
the same module"): one plugin build of a unit's bitcode with the -Os default, under
callgrind, without and with MLCC_PLUGIN_OPTIMIZED, and the instructions each took.
Callgrind counts repeatably where CPU seconds on a shared machine do not.

    python scripts/reuse_cost.py UNIT.bc [--level s]

UNIT.bc: the front end's bitcode, e.g. `clang-19 -Os -Xclang -disable-llvm-passes
-emit-llvm -c lvm.c -o lvm.bc` in lua's source tree.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from mlcc import codegen, decide, model, passes, pipeline, plugin_build


def instructions(argv: list[str], env: dict) -> int:
    """Instructions callgrind counts for `argv`."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          env=env, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bitcode")
    parser.add_argument("--level", default="s", choices=("s", "z"))
    args = parser.parse_args(argv)
    clang = shutil.which("clang-19")
    plugin = plugin_build.installed(clang)
    if plugin is None:
        print("mlcc's pass plugin is not built for clang-19", file=sys.stderr)
        return 1
    level = f"-O{args.level}"
    info = decide.target_info(clang, (level,), args.bitcode, None)
    default = model.load(str(model.bundled_model_path(args.level))).candidates[0]
    pipe = pipeline.parse(passes.bounded(default, float("inf")), info.clang_pipeline)
    with tempfile.TemporaryDirectory() as tmp:
        plain = dict(os.environ, MLCC_PLUGIN_PASSES=codegen.plugin_passes(pipe.passes))
        hashed = dict(plain, MLCC_PLUGIN_OPTIMIZED=os.path.join(tmp, "report"))
        build = [clang, level, *pipe.codegen_args, "-c", f"-fpass-plugin={plugin}", args.bitcode,
                 "-o", os.path.join(tmp, "out.o")]
        counts = {name: instructions(build, env) for name, env in (("plain", plain), ("hashed", hashed))}
    extra = counts["hashed"] / counts["plain"] - 1
    print(f"{args.bitcode}: {counts['plain']:,} instructions, {counts['hashed']:,} with the hash "
          f"(+{100 * extra:.2f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
