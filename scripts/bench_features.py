#!/usr/bin/env python3
"""Benchmark mlcc.features.extract_features against `clang-19 -Oz -c`.

The extractor runs for every translation unit of a build, so it has to stay
cheap next to the compiler: the target is < 10% of `clang-19 -Oz -c` on the
same source.  Two large real files are measured:

* sqlite's amalgamation ``sqlite3.c`` (built from Debian's ``sqlite3`` source
  package with ``make sqlite3.c``, which needs ``tclsh``);
* lua 5.4's ``lvm.c`` (Debian's ``lua5.4`` source package).

Sources are fetched with ``apt-get source -d`` (deb-src must be enabled; see
scripts/setup.sh) into a cache directory (default
``~/.cache/mlcc/bench-sources``) and never into the repository.

For each file: median of N runs of ``clang-19 -Oz -c`` and of
``extract_features`` on the file's unoptimised bitcode
(``clang-19 -Oz -Xclang -disable-llvm-passes -emit-llvm -c``), wall-clock and
CPU time (the machine may be shared: CPU time is the steadier of the two).

Usage: python scripts/bench_features.py [--runs 3] [--cache DIR] [--check]
``--check`` exits 1 when a ratio is at or above the limit (10%).
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

CLANG = os.environ.get("MLCC_BENCH_CLANG", "clang-19")
LIMIT = 0.10


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: str | os.PathLike | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")


def apt_source(package: str, workdir: Path) -> Path:
    """Download a Debian source package (no unpack) and return the
    upstream ``.orig.tar.*`` tarball."""
    run(["apt-get", "source", "--download-only", package], cwd=workdir)
    origs = [p for p in glob.glob(str(workdir / "*.orig.tar.*")) if "orig-" not in Path(p).name]
    if not origs:
        raise SystemExit(f"apt-get source {package}: no .orig tarball in {workdir}")
    return Path(origs[0])


def extract(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tf:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, **kwargs)
    dirs = [p for p in dest.iterdir() if p.is_dir()]
    if len(dirs) != 1:
        raise SystemExit(f"{tarball}: expected one top-level directory, got {dirs}")
    return dirs[0]


def fetch_sqlite(cache: Path) -> Path:
    out = cache / "sqlite"
    if (out / "sqlite3.c").is_file() and (out / "sqlite3.h").is_file():
        return out / "sqlite3.c"
    if shutil.which("tclsh") is None:
        raise SystemExit("building sqlite3.c needs tclsh: apt-get install -y tcl")
    log("fetching sqlite3 (Debian source) and generating the amalgamation ...")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = extract(apt_source("sqlite3", tmp), tmp / "src")
        bld = tmp / "bld"
        bld.mkdir()
        env_cc = os.environ.get("CC", "cc")
        run([str(src / "configure"), f"CC={env_cc}", "--disable-tcl"], cwd=bld)
        run(["make", "sqlite3.c"], cwd=bld)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("sqlite3.c", "sqlite3.h"):
            shutil.copy2(bld / name, out / name)
    return out / "sqlite3.c"


def fetch_lua(cache: Path) -> Path:
    out = cache / "lua5.4"
    if (out / "src" / "lvm.c").is_file():
        return out / "src" / "lvm.c"
    log("fetching lua5.4 (Debian source) ...")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = extract(apt_source("lua5.4", tmp), tmp / "src")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(src, out)
    return out / "src" / "lvm.c"


def timed_child(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, user+sys CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run(cmd, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def timed_call(fn, *args) -> tuple[float, float, object]:
    c0 = time.process_time()
    t0 = time.perf_counter()
    res = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement (median is reported)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mlcc" / "bench-sources")
    ap.add_argument("--check", action="store_true", help="exit 1 if a ratio is >= 10%%")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    sources = [("sqlite3.c", fetch_sqlite(args.cache)), ("lua lvm.c", fetch_lua(args.cache))]

    t0 = time.perf_counter()
    from mlcc import features  # noqa: E402  (timed: the per-process import cost)
    import llvmlite.binding  # noqa: F401,E402

    import_s = time.perf_counter() - t0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, src in sources:
            cwd = src.parent
            bc = tmp / (src.stem + ".bc")
            obj = tmp / (src.stem + ".o")
            run([CLANG, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c", str(src), "-o", str(bc)], cwd=cwd)
            features.extract_features(bc)  # warm-up (page cache, lazy ctypes setup)
            # Alternate the two so that a change of machine load hits both.
            clang, ext = [], []
            for _ in range(args.runs):
                clang.append(timed_child([CLANG, "-Oz", "-c", str(src), "-o", str(obj)], cwd))
                ext.append(timed_call(features.extract_features, bc))
            vec = ext[-1][2]
            insts = int(vec[features.FEATURE_NAMES.index("TotalInsts")])
            cw = statistics.median(w for w, _ in clang)
            cc = statistics.median(c for _, c in clang)
            ew = statistics.median(w for w, _, _ in ext)
            ec = statistics.median(c for _, c, _ in ext)
            rows.append((label, insts, cw, ew, ew / cw, cc, ec, ec / cc))

    hdr = ("file", "IR insts", "clang -Oz -c", "extract", "ratio", "clang CPU", "extract CPU", "ratio CPU")
    fmt = "{:<10} {:>9} {:>13} {:>9} {:>7} {:>10} {:>12} {:>10}"
    print(f"median of {args.runs} runs each; {CLANG}; python {sys.version.split()[0]}; "
          f"llvmlite {llvmlite_version()} (LLVM {llvm_version()}); {os.cpu_count()} CPUs; "
          f"loadavg {os.getloadavg()[0]:.2f}")
    print(f"import mlcc.features + llvmlite.binding: {import_s * 1000:.0f} ms (once per process)")
    print(fmt.format(*hdr))
    bad = False
    for label, insts, cw, ew, rw, cc, ec, rc in rows:
        print(fmt.format(label, insts, f"{cw:.3f} s", f"{ew:.3f} s", f"{rw:.1%}", f"{cc:.3f} s", f"{ec:.3f} s", f"{rc:.1%}"))
        bad |= rw >= LIMIT or rc >= LIMIT
    if bad:
        print(f"ratio >= {LIMIT:.0%} on at least one file")
    return 1 if (bad and args.check) else 0


def llvmlite_version() -> str:
    import llvmlite

    return llvmlite.__version__


def llvm_version() -> str:
    import llvmlite.binding as llvm

    return ".".join(map(str, llvm.llvm_version_info))


if __name__ == "__main__":
    sys.exit(main())
