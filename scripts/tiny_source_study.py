"""How well a source's size says that its unit is small, before the front end runs.

The small-unit rule (`small-unit`, 8,192 bytes of pre-optimization bitcode) sends a unit to
clang whole; the tiny-source rule (`tiny-source`, mlcc/plan.py) applies it without running
the front end first, from the bytes of code in the source (preprocessor lines not counted).
This study fetches the Debian sources of training projects of the corpus, finds each
training unit's source (models/corpus-manifest.json records its path and its bitcode's
bytes) and counts, per threshold: the units a rule would send to clang whole, and those
among them that are not small units (mlcc would have optimized them).

    python scripts/tiny_source_study.py [--workdir DIR] [PACKAGE ...]

writes models/data/tiny-source-Oz.json (docs/DESIGN.md, "Small units").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlcc.learn.evaluate import projects as pj  # noqa: E402
from mlcc.learn.paths import MODELS  # noqa: E402
from mlcc.plan import code_bytes  # noqa: E402
from mlcc.settings import Settings  # noqa: E402

PACKAGES = ("nettle", "m4", "libtommath", "diffutils", "libzip", "grep", "sed", "c-ares",
            "libidn2", "gzip", "xz-utils")
THRESHOLDS = (250, 500, 1000, 1500, 2000, 3000)
LARGE = 1 << 20  # code bytes counted up to this


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=PACKAGES)
    parser.add_argument("--workdir", type=Path, default=None)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="mlcc-tiny-"))
    manifest = json.loads((MODELS / "corpus-manifest.json").read_text())
    small_unit = Settings().small_unit
    rows = []
    for package in options.packages:
        project = next(p["name"] for p in manifest["projects"] if p["package"] == package)
        tree = workdir / project
        if not tree.is_dir():
            pj.extract_source(pj.fetch_source(package), tree)
        for unit in manifest["units"]:
            path = tree / unit["source"]
            if unit["project"] == project and unit["split"] == "train" and path.is_file():
                rows.append({"project": project, "source": unit["source"], "code_bytes": code_bytes(str(path), LARGE),
                             "file_bytes": os.path.getsize(path), "bitcode_bytes": unit["bitcode_bytes"]})
    result = {"packages": list(options.packages), "units": len(rows),
              "small_units": sum(r["bitcode_bytes"] < small_unit for r in rows), "thresholds": {}}
    print(f"{len(rows)} training units with their sources, {result['small_units']} of them small units")
    print(f"{'code bytes under':>16} {'to clang whole':>15} {'not small units':>16}")
    for threshold in THRESHOLDS:
        tiny = [r for r in rows if r["code_bytes"] < threshold]
        wrong = sorted((r for r in tiny if r["bitcode_bytes"] >= small_unit), key=lambda r: -r["bitcode_bytes"])
        result["thresholds"][str(threshold)] = {"tiny": len(tiny), "not_small": len(wrong),
                                                "not_small_units": [f"{r['project']}/{r['source']}" for r in wrong]}
        print(f"{threshold:16} {len(tiny):15} {len(wrong):16}")
    out = MODELS / "data" / "tiny-source-Oz.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
