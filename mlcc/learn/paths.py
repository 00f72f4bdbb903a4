"""Where the learning side's files are.

Its lists of projects and workloads ship in `mlcc/learn/data/`. What it
measures, trains and writes goes to the source checkout it runs from:
`models/` (the corpus manifest, the tables in `models/data/`, the models)
and `docs/` (the reports).
"""

from __future__ import annotations

from pathlib import Path

LEARN_DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
DOCS = REPO / "docs"
