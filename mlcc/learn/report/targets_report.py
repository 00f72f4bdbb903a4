"""The targets report: what each target's own search found, in docs/TARGETS.md.

Reads the results `candidates tune-default` wrote per target
(`models/data/default-<target>-O<level>.json`, x86-64's `default-O<level>.json`)
and writes the table between the markers of docs/TARGETS.md: per target, the
tuned default, the trial sets and x86-64's default (what the target got
before) on the training sample and on the validation projects (total-bytes
gain, geometric mean of per-project gains, files larger than clang's), the
room (each training unit's best of every measured pipeline), and what the
driver ships (mlcc/data/targets.toml). Below it, single-shot and trials beside
the room on the validation projects: the driver's own 20-evaluation search per
file (`search budget --all --long 20` with MLCC_LEARN_TARGET,
`models/data/search-budget-all-<target>-O<level>.json`), against which issue 25
measures a target whose room is below 5 %. A second table, between its own
markers, shows each target's trained models (`train model`,
`models/data/model-<target>-O<level>.json`) against the target's default, and
whether the model ships.
"""

from __future__ import annotations

import json
import math

import click

from mlcc import knobs, targets
from mlcc.learn.paths import DOCS, MODELS
from mlcc.learn.search import budget, search

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


def budget_file(target: str, level: str):
    return MODELS / "data" / f"search-budget-all-{target}-O{level}.json"


def size_summary(rows: list[dict], pick) -> dict:
    """Total gain, geometric mean of per-project gains and files larger than clang's when
    each unit's size is `pick(row)` (its `sizes` in evaluation order, clang's first)."""
    projects: dict[str, list[int]] = {}
    larger = 0
    for r in rows:
        size = pick(r)
        totals = projects.setdefault(r["project"], [0, 0])
        totals[0] += r["clang"]
        totals[1] += size
        larger += size > r["clang"]
    clang, mine = sum(c for c, _ in projects.values()), sum(m for _, m in projects.values())
    geomean = math.exp(sum(math.log(m / c) for c, m in projects.values()) / len(projects))
    return {"total": 100.0 * (1 - mine / clang), "geomean": 100.0 * (1 - geomean), "larger": larger,
            "units": len(rows)}


def _shipped_variant_names(target: str, level: str) -> tuple[dict, list[str]] | None:
    """The validation units of the code generation sweep of the shipped default and the
    sweep's names of the shipped variants; None when the sweep lacks either."""
    shipped = list(targets.named(target).variants(level))
    path = MODELS / "data" / f"codegen-variants-{target}-O{level}.json"
    sweep = MODELS / "data" / f"codegen-sweep-{target}-O{level}-validation.json"
    if not path.exists() or not sweep.exists():
        return None
    chosen = json.loads(path.read_text())
    units = json.loads(sweep.read_text())["by_default"].get(targets.named(target).default(level), {}).get("units", {})
    names = [] if not shipped else next((r["variants"] for r in chosen["rows"] if r["pipelines"] == shipped), None)
    return None if names is None or not units else (units, names)


def variant_savings(target: str, level: str) -> dict[str, int]:
    """Bytes each validation unit saves when its single-shot also builds the target's
    shipped code generation variants, from the code generation sweep of the validation
    units (`models/data/codegen-variants-<target>-O<level>.json` names which sets they
    are); {} when the target ships none."""
    found = _shipped_variant_names(target, level)
    if not targets.named(target).variants(level) or found is None:
        return {}
    units, names = found
    out = {}
    for unit, r in units.items():
        base = r["sizes"].get("baseline")
        if base:
            out[unit] = base - min(r["sizes"][n] for n in ["baseline", *names] if r["sizes"].get(n))
    return out


def shipped_builds(target: str, level: str) -> dict[str, dict]:
    """Per validation unit, what the shipped configuration builds, measured apart from a
    search: the default's size and the smallest of it and its variants (the code
    generation sweep of the shipped default), and the size of each pipeline of the
    largest trial set (the target's measurement table, where `tune-default` measured
    them on every validation unit). Units lacking any of these are left out."""
    found = _shipped_variant_names(target, level)
    if found is None:
        return {}
    units, names = found
    sets = targets.named(target).trial_sets(level)
    largest = list(sets[-1]) if sets else []
    store = search.Store(MODELS / "data" / f"measurements-{target}-O{level}.jsonl.gz").by_unit()
    out = {}
    for unit, r in units.items():
        sizes, measured = r["sizes"], store.get(unit, {})
        if not sizes.get("baseline") or not all(measured.get(p) for p in largest):
            continue
        out[unit] = {"default": sizes["baseline"],
                     "single": min(sizes[n] for n in ["baseline", *names] if sizes.get(n)),
                     "trials": [measured[p] for p in largest]}
    return out


def room_rows(level: str) -> list[str]:
    """Single-shot and trials against the room: each validation unit's best of the
    driver's 20-evaluation search (clang's pipeline, the default and the largest trial
    set's pipelines first, then local edits); the issue's bar where the room is below
    5 %: single-shot 80 % of it, trials 90 %. Where the search started from a default
    the target no longer ships, single-shot and trials are the shipped configuration's
    own builds (`shipped_builds`) and the room is the smallest of the search's best and
    those builds: at least the room the search found."""
    lines = ["| target | units | clang's bytes that are initialized data | room: search of 20, total | geomean | "
             "default alone: total | geomean | files larger | share of the room | "
             "single-shot (the default, its code generation variants, and clang's pipeline where it builds that too): total | geomean | files larger | "
             "share of the room | trials K=4: total | share of the room | bar met (80 % / 90 %) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | --- |"]
    for name in targets.table():
        path, result = budget_file(name, level), result_file(name, level)
        if name == targets.HOST or not path.exists() or not result.exists():
            continue
        searched = json.loads(path.read_text())
        rows_ = [r for r in searched["rows"] if r["clang"] and len(r["sizes"]) > 1 and r["sizes"][1]]
        if not rows_:
            continue
        target = targets.named(name)
        # single-shot also builds clang's own pipeline beside the default (`also`)
        with_clang = "clang" in target.also_built(level)
        clang_or_not = (lambda r: r["clang"]) if with_clang else (lambda r: math.inf)
        sets = target.trial_sets(level)
        largest = len(sets[-1]) if sets else 0
        stale = searched.get("model") != budget.model_digest(name, level)
        built = shipped_builds(name, level) if stale else {}
        if built:
            rows_ = [dict(r, shipped=built[r["unit"]]) for r in rows_ if r["unit"] in built]

            def default_size(r: dict) -> float:
                return r["shipped"]["default"]

            def single_shot(r: dict) -> float:
                return min(r["shipped"]["single"], clang_or_not(r))

            def trial_size(r: dict) -> float:  # clang's pipeline, the largest set and single-shot's builds
                return min(r["clang"], *r["shipped"]["trials"], single_shot(r))

            def room_size(r: dict) -> float:
                return min(min(s for s in r["sizes"] if s), trial_size(r))
            note = " (searched from an earlier default; room also counts what it builds now)"
        else:
            saved = variant_savings(name, level)

            def default_size(r: dict) -> float:
                return r["sizes"][1]  # the default, evaluated second

            def single_shot(r: dict) -> float:
                return min(r["sizes"][1] - saved.get(r["unit"], 0), clang_or_not(r))

            def room_size(r: dict) -> float:
                return min(s for s in r["sizes"] if s)
            # trials as the driver builds them: clang's pipeline and the largest trial set
            # (the search's first evaluations, `starts`), and single-shot's builds
            trial_size = None
            if largest and all(r.get("starts", 0) == 2 + largest for r in rows_):
                def trial_size(r: dict) -> float:
                    return min(min(x for x in r["sizes"][:2 + largest] if x), single_shot(r))
            note = " (searched from a default it no longer ships)" if stale else ""
        data = 100.0 * sum(r.get("clang_data") or 0 for r in rows_) / sum(r["clang"] for r in rows_)
        room = size_summary(rows_, room_size)
        single = size_summary(rows_, default_size)
        varied = size_summary(rows_, single_shot)
        trials = (size_summary(rows_, trial_size)["total"] if trial_size else
                  json.loads(result.read_text())["checked"]["validation"]["trials"]["total_gain_pct"])
        share = (lambda x: f"{100 * x / room['total']:.0f} %") if room["total"] > 0 else (lambda x: "-")
        met = (f"{'yes' if varied['total'] >= 0.8 * room['total'] else 'no'} / "
               f"{'yes' if trials >= 0.9 * room['total'] else 'no'}")
        lines.append(f"| {name}{note} | {room['units']} | {data:.0f} % | {room['total']:+.2f} % | {room['geomean']:+.2f} % | "
                     f"{single['total']:+.2f} % | {single['geomean']:+.2f} % | {single['larger']} | "
                     f"{share(single['total'])} | {varied['total']:+.2f} % | {varied['geomean']:+.2f} % | "
                     f"{varied['larger']} | {share(varied['total'])} | {trials:+.2f} % | {share(trials)} | {met} |")
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
    body = ["", f"At -O{level}. Positive: smaller than clang-19's own pipeline.", "",
            *rows(level), "", "The tuned defaults, against x86-64's:", "", *defaults(level), ""]
    room = room_rows(level)
    if len(room) > 2:
        body += ["Against the room on the validation projects: each unit's best of the driver's own "
                 "20-evaluation search (`-fmlcc-search=20`: clang's pipeline, the default and the largest "
                 "trial set's pipelines first, then local edits of the best, the target's knobs included). "
                 "Trials K=4 are from the table above (its validation units).", "", *room, ""]
    text = _between(text, BEGIN, END, body)
    text = _between(text, MODELS_BEGIN, MODELS_END,
                    ["", f"At -O{level}, gains against clang-19's own pipeline (positive: smaller); "
                         "files larger than clang's.", "", *model_rows(level), ""])
    REPORT.write_text(text)
    click.echo(f"wrote {REPORT}")
