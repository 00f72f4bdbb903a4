"""How much of each unit's object under clang's pipeline is initialized data.

Data (`.data`, `.rodata`, not the constant pools code generation fills for its
instructions) is what no pass pipeline here shrinks: half of the validation
projects' bytes are data (docs/MODEL.md, "What the targets are up against").
This measures it for every unit of the manifest that has bitcode on this
machine, so training can weigh a unit by the bytes a pipeline can change
(`train.BY_CODE_BYTES`). Resumable; results in `models/data/clang-data-O?.json`.

    python -m mlcc.learn.search data-share [--jobs 2] [--engine ray]
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace

import click
from rich.console import Console

from mlcc.learn.search import search
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.engine import Engine, engine_option
from mlcc.learn.measure import Unit, generate, optimize, prepare
from mlcc.objective import data_size

RESULTS = search.DATA / f"clang-data-{search.TAG}.json"


def load() -> dict[str, list[int]]:
    """unit id -> [bytes under clang's pipeline, of which initialized data]."""
    return json.loads(RESULTS.read_text())["units"] if RESULTS.exists() else {}


def measure_unit(unit: Unit, files: dict[str, str]) -> tuple[str, list[int] | None]:
    """Worker: clang's object for one unit, its bytes and its data bytes (None: failed);
    its bitcode where the engine put it (`files`)."""
    unit = replace(unit, bitcode=files[unit.bitcode])
    with tempfile.TemporaryDirectory(prefix="mlcc-data-") as tmp:
        prep = prepare(unit, tmp)
        optimized, obj = os.path.join(tmp, "clang.bc"), os.path.join(tmp, "clang.o")
        size = generate(prep, optimized, (), obj) if optimize(prep, search.CLANG_PIPELINE, optimized) else None
        return unit.id, None if size is None else [size, data_size(obj, constant_pools=False)]


@click.command()
@click.option("--jobs", default=1, show_default=True)
@engine_option
def main(jobs: int, backend: str) -> None:
    """The share of initialized data in clang's objects (resumable)."""
    console = Console(stderr=True)
    done = load()
    layout = Layout.from_environment()
    todo = [(search.unit_dir(layout, u["project"]), u["id"])
            for u in search.load_manifest()["units"] if u["id"] not in done]
    todo = [Unit.load(directory, unit_id) for directory, unit_id in todo
            if (directory / f"{unit_id}.bc").exists()]
    console.print(f"{len(done)} units measured before, {len(todo)} to measure")

    def save() -> None:
        RESULTS.write_text(json.dumps({"opt_level": search.OPT_LEVEL, "units": dict(sorted(done.items()))},
                                      indent=0) + "\n")

    results = Engine(backend, jobs).map(measure_unit, todo, title="data share",
                                        inputs=lambda unit: [unit.bitcode])
    for n, (unit_id, sizes) in enumerate(results, 1):
        if sizes is not None:
            done[unit_id] = sizes
        if n % 200 == 0:
            save()
    save()
    total = sum(s[0] for s in done.values())
    data = sum(s[1] for s in done.values())
    console.print(f"{len(done)} units, {total:,} bytes with clang's pipeline, "
                  f"{100.0 * data / max(total, 1):.1f}% initialized data; written to {RESULTS}")
