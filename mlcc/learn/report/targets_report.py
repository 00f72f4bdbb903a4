"""The targets report: what each target's own search found, in docs/TARGETS.md.

Reads the results `candidates tune-default` wrote per target
(`models/data/default-<target>-O<level>.json`, x86-64's `default-O<level>.json`)
and writes the table between the markers of docs/TARGETS.md: per target, the
tuned default, the trial sets and x86-64's default (what the target got
before) on the training sample and on the validation projects (total-bytes
gain, geometric mean of per-project gains, files larger than clang's), the
room (each training unit's best of every measured pipeline), and what the
driver ships (mlcc/data/targets.toml). A second table, between its own markers,
shows each target's trained models (`train model`, `models/data/model-<target>-O<level>.json`)
against the target's default, and whether the model ships.
"""

from __future__ import annotations

import json

import click

from mlcc import knobs, targets
from mlcc.learn.paths import DOCS, MODELS

REPORT = DOCS / "TARGETS.md"
BEGIN = "<!-- targets table: written by `python -m mlcc.learn.report targets`; rerun it, do not edit -->"
END = "<!-- end of targets table -->"
MODELS_BEGIN = "<!-- target models table: written by `python -m mlcc.learn.report targets`; rerun it, do not edit -->"
MODELS_END = "<!-- end of target models table -->"


def result_file(target: str, level: str):
    tag = f"O{level}" if target == targets.HOST else f"{target}-O{level}"
    return MODELS / "data" / f"default-{tag}.json"


def _pct(row: dict | None, key: str = "total_gain_pct") -> str:
    return "-" if not row or row.get(key) is None else f"{row[key]:+.2f} %"


def _larger(row: dict | None) -> str:
    return "-" if not row else f"{row['larger_files']} of {row['units']}"


def rows(level: str) -> list[str]:
    """The table's lines for -O`level`."""
    lines = ["| target | sample | tuned default: total | geomean | files larger | trials K=4: total | "
             "geomean | files larger | x86-64's default: total | files larger | room (train oracle) | ships |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, target in targets.table().items():
        path = result_file(name, level)
        if name == targets.HOST or not path.exists():
            continue
        result = json.loads(path.read_text())
        checked = result.get("checked", {})
        ships = "tuned default" if target.default(level) == result["default"] else "clang's pipeline"
        for split in ("train", "validation"):
            row = checked.get(split)
            if row is None:
                continue
            sample = f"{split}: {row['units']} units, {row['projects']} projects"
            trials, host = row.get("trials"), row.get("host_default")
            lines.append(f"| {name} | {sample} | {_pct(row)} | {_pct(row, 'geomean_gain_pct')} | {_larger(row)} | "
                         f"{_pct(trials)} | {_pct(trials, 'geomean_gain_pct')} | {_larger(trials)} | "
                         f"{_pct(host)} | {_larger(host)} | "
                         f"{_pct(row.get('oracle')) if split == 'train' else ''} | "
                         f"{ships if split == 'train' else ''} |")
    return lines


def defaults(level: str) -> list[str]:
    """Each target's tuned default, as knobs added to and removed from x86-64's."""
    host = json.loads(result_file(targets.HOST, level).read_text())["default"] \
        if result_file(targets.HOST, level).exists() else "clang"
    base = set(knobs.knobs_of(host))
    lines = []
    for name in targets.table():
        path = result_file(name, level)
        if name == targets.HOST or not path.exists():
            continue
        mine = set(knobs.knobs_of(json.loads(path.read_text())["default"]))
        added, removed = sorted(mine - base), sorted(base - mine)
        lines.append(f"- **{name}**: x86-64's default {'+ ' + ', '.join(added) if added else ''}"
                     f"{' − ' + ', '.join(removed) if removed else ''}".rstrip())
    return lines


def _scored(row: dict) -> str:
    return (f"{row['total_gain_pct']:+.2f} % | {row['project_geomean_gain_pct']:+.2f} % | "
            f"{row['larger_units']} of {row['units']}")


def model_rows(level: str) -> list[str]:
    """The target models table's lines for -O`level`: per target and seed, the model and
    the target's default on validation, and out of fold on the training projects."""
    lines = ["| target | seed | family, margin | validation: model total | project geomean | files larger | "
             "default total | project geomean | files larger | candidates' oracle total | train CV: model total | "
             "project geomean | default total | project geomean | ships |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name in targets.table():
        path = MODELS / "data" / f"model-{name}-O{level}.json"
        if name == targets.HOST or not path.exists():
            continue
        result = json.loads(path.read_text())
        for i, run in enumerate(result["seeds"]):
            cv = run["train_cv"]
            ships = ("model" if result["ships_model"] else "default alone") if i == 0 else ""
            lines.append(f"| {name} | {run['seed']} | {run['family']}, {run['margin']} | "
                         f"{_scored(run['validation']['model'])} | {_scored(run['validation']['default'])} | "
                         f"{run['validation']['model']['oracle_total_gain_pct']:+.2f} % | "
                         f"{cv['model']['total_gain_pct']:+.2f} % | {cv['model']['project_geomean_gain_pct']:+.2f} % | "
                         f"{cv['default']['total_gain_pct']:+.2f} % | {cv['default']['project_geomean_gain_pct']:+.2f} % | "
                         f"{ships} |")
    return lines


def _between(text: str, begin: str, end: str, body: list[str]) -> str:
    if begin not in text or end not in text:
        raise click.ClickException(f"{REPORT} lacks the markers {begin!r} and {end!r}")
    head, rest = text.split(begin, 1)
    return head + "\n".join([begin, *body, end]) + rest.split(end, 1)[1]


@click.command()
@click.option("--level", type=click.Choice(["z", "s"]), default="z", show_default=True)
def main(level: str) -> None:
    """Write the targets table into docs/TARGETS.md."""
    text = REPORT.read_text()
    text = _between(text, BEGIN, END, ["", f"At -O{level}. Positive: smaller than clang-19's own pipeline.", "",
                                       *rows(level), "", "The tuned defaults, against x86-64's:", "",
                                       *defaults(level), ""])
    text = _between(text, MODELS_BEGIN, MODELS_END,
                    ["", f"At -O{level}, gains against clang-19's own pipeline (positive: smaller); "
                         "files larger than clang's.", "", *model_rows(level), ""])
    REPORT.write_text(text)
    click.echo(f"wrote {REPORT}")
