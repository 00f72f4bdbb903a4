"""Does the linkonce_odr inlining rule pay once linked? (issue 28, idea 3)

`inline_hint_rule.py` scores the rule per object and estimates the link by counting
each COMDAT section once per project. This builds a real C++ project twice with its
own build system, with clang++-19 -Oz and with clang++-19 -Oz plus the rule (each
compile first runs the front end alone to find the unit's `linkonce_odr` functions
with one call site and at most 60 instructions, then compiles with
`-mllvm -forceattrs-csv-path=` naming them `alwaysinline`), and compares the linked
artifacts and the objects with mlcc's objective (`objective.object_size`).

    python scripts/linkonce_rule_link.py --project muparser --src DIR --workdir DIR [--mlcc]

With `--mlcc` the two builds are mlcc++'s: x86-64's -Oz default forced, and the same
with the `inline-linkonce` knob (the rule as mlcc's plugin pass runs it).

`--src` is an unpacked source tree of the project (the bench's, e.g.
/work/bench-work-s42b/muparser/clang-Oz/src); writes
models/data/linkonce-rule-link-<project>.json. As a compiler, the script is run by
the build as `linkonce_rule_link.py cc ARGS...`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLANGXX = "clang++-19"


def compile_with_rule(argv: list[str]) -> int:
    """Act as the compiler: clang++ with the rule added to a `-c` of one source."""
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    if "-c" not in argv or "-o" not in argv:
        return subprocess.call([CLANGXX, *argv])
    from inline_hint_room import function_facts
    from inline_hint_rule import RULES

    rule = RULES["linkonce-one-call-small"]
    out = argv.index("-o")
    with tempfile.TemporaryDirectory(prefix="linkonce-") as tmp:
        # the front end alone, without the output and the dependency-file flags
        # (-MF, -MT and -MQ take the next argument)
        cleaned, skip = [], False
        for a in [*argv[:out], *argv[out + 2:]]:
            if skip:
                skip = False
                continue
            if a in ("-MF", "-MT", "-MQ"):
                skip = True
                continue
            if a in ("-MD", "-MMD"):
                continue
            cleaned.append(a)
        front = [*cleaned, "-emit-llvm", "-Xclang", "-disable-llvm-passes", "-o", os.path.join(tmp, "u.bc")]
        if subprocess.call([CLANGXX, *front], stderr=subprocess.DEVNULL) != 0:
            return subprocess.call([CLANGXX, *argv])
        names = [n for n, f in function_facts(os.path.join(tmp, "u.bc")).items()
                 if rule(f) and not f["decided"]]
        if not names:
            return subprocess.call([CLANGXX, *argv])
        csv = os.path.join(tmp, "hints.csv")
        Path(csv).write_text("".join(f"{n},alwaysinline\n" for n in names))
        return subprocess.call([CLANGXX, *argv, "-mllvm", f"-forceattrs-csv-path={csv}"])


def build(src: Path, tree: Path, cxx: str) -> None:
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(src, tree / "src", symlinks=True)
    build_dir = tree / "build"
    subprocess.run(["cmake", "-S", str(tree / "src"), "-B", str(build_dir), "-G", "Unix Makefiles",
                    "-DCMAKE_BUILD_TYPE=", "-DCMAKE_C_FLAGS=-Oz", "-DCMAKE_CXX_FLAGS=-Oz",
                    "-DENABLE_OPENMP=OFF", "-DENABLE_SAMPLES=ON", f"-DCMAKE_CXX_COMPILER={cxx}",
                    "-DCMAKE_C_COMPILER=clang-19"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir), "-j2"], check=True, capture_output=True)


def sizes(tree: Path) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from mlcc.objective import object_size

    objects = {str(p.relative_to(tree)): object_size(p) for p in sorted(tree.glob("build/**/*.o"))}
    linked = {str(p.relative_to(tree)): object_size(p) for p in sorted(tree.glob("build/*"))
              if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"
              and p.suffix != ".o"}
    return {"objects": objects, "linked": linked}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "cc":
        return compile_with_rule(sys.argv[2:])
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", default="muparser")
    parser.add_argument("--src", required=True, type=Path)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--mlcc", action="store_true",
                        help="compare mlcc++'s x86-64 -Oz default with and without the "
                             "inline-linkonce knob (mlcc's plugin pass) instead")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.mlcc:
        sys.path.insert(0, str(HERE.parent))
        from mlcc import targets
        default = targets.named("x86_64").default("z")
        with_knob = default[:-1] + ",inline-linkonce]"
        compilers = []
        for name, pipe in (("clang", default), ("rule", with_knob)):
            wrapper = args.workdir / f"{name}-cxx"
            wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('mlcc++')} '-fmlcc-pipeline={pipe}' \"$@\"\n")
            wrapper.chmod(0o755)
            compilers.append((name, str(wrapper)))
        result = {"project": args.project, "rule": "inline-linkonce", "baseline": default,
                  "with": with_knob}
    else:
        wrapper = args.workdir / "rule-cxx"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} cc \"$@\"\n")
        wrapper.chmod(0o755)
        compilers = [("clang", shutil.which(CLANGXX)), ("rule", str(wrapper))]
        result = {"project": args.project, "rule": "linkonce-one-call-small"}
    for name, cxx in compilers:
        build(args.src, args.workdir / name, cxx)
        result[name] = sizes(args.workdir / name)
    for kind in ("objects", "linked"):
        a, b = result["clang"][kind], result["rule"][kind]
        common = sorted(set(a) & set(b))
        ca, cb = sum(a[f] for f in common), sum(b[f] for f in common)
        result[f"{kind}_gain_pct"] = round(100 * (1 - cb / ca), 3) if ca else None
        print(f"{kind}: {len(common)} files, clang {ca}, with the rule {cb}, gain {result[f'{kind}_gain_pct']} %")
        for f in common:
            print(f"  {f}: {a[f]} -> {b[f]}")
    out = HERE.parent / "models" / "data" / f"linkonce-rule-link-{'mlcc-' if args.mlcc else ''}{args.project}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
