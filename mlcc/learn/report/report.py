"""The model report: how the bundled model does on projects it never saw.

Reads the model file (its metadata names its candidates and margin), the
measurement table and the features table; writes `docs/MODEL-REPORT.md` and
PNG plots under `docs/img/`. Every number in the report is computed here,
from the committed data, so `make report` reproduces it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import click
import numpy as np

from mlcc import model_file
from mlcc.learn.corpus.layout import Layout
from mlcc.learn.corpus.manifest import MANIFEST_FILE
from mlcc.learn.search import search
from mlcc.learn.train import train
from mlcc.settings import DEFAULT_TRIALS

DOCS = search.MODELS.parent / "docs"
LEVEL = search.OPT_LEVEL
SUFFIX = "" if LEVEL == "z" else f"-O{LEVEL}"  # the -Oz report keeps its old names
REPORT = DOCS / f"MODEL-REPORT{SUFFIX}.md"
IMG = DOCS / "img"
UNSHIPPED = search.MODELS / "unshipped"  # measured models not (yet) bundled


def _repo_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(search.MODELS.parent))
    except ValueError:
        return str(path)


def _pct(x: float) -> str:
    return f"{x:.2f}%"


def _plots(valid: train.Dataset, chosen: np.ndarray, fixed: int) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    rows = np.arange(len(chosen))
    model_gain = 100.0 * (1 - valid.R[rows, chosen])
    oracle_gain = 100.0 * (1 - valid.R.min(axis=1))
    fixed_gain = 100.0 * (1 - valid.R[:, fixed])
    names = []

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(min(-5, model_gain.min(), fixed_gain.min()), max(15, oracle_gain.max()), 40)
    ax.hist([oracle_gain, model_gain, fixed_gain], bins=bins,
            label=["oracle of candidates", "model (single shot)", "best fixed pipeline"])
    ax.set_xlabel(f"per-file size reduction vs clang -O{LEVEL} (%)")
    ax.set_ylabel("validation files")
    ax.legend()
    ax.set_title("Per-file gains on validation projects")
    fig.tight_layout()
    fig.savefig(IMG / f"model{SUFFIX}-per-file-gains.png", dpi=110)
    plt.close(fig)
    names.append(f"model{SUFFIX}-per-file-gains.png")

    by_project: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(valid.units):
        by_project[u["project"]].append(i)
    projects = sorted(by_project)
    def total_gain(idx, col):
        idx = np.array(idx)
        sizes = valid.R[idx, col[idx]] * valid.clang[idx]
        return 100.0 * (1 - sizes.sum() / valid.clang[idx].sum())
    oracle_col = valid.R.argmin(axis=1)
    fixed_col = np.full(len(chosen), fixed)
    fig, ax = plt.subplots(figsize=(max(6, len(projects) * 0.9), 4))
    x = np.arange(len(projects))
    for k, (label, col) in enumerate((("oracle", oracle_col), ("model", chosen), ("best fixed", fixed_col))):
        ax.bar(x + (k - 1) * 0.27, [total_gain(by_project[p], col) for p in projects], 0.27, label=label)
    ax.set_xticks(x, projects, rotation=30, ha="right")
    ax.set_ylabel(f"total size reduction vs clang -O{LEVEL} (%)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.legend()
    ax.set_title("Per-project gains (validation)")
    fig.tight_layout()
    fig.savefig(IMG / f"model{SUFFIX}-per-project-gains.png", dpi=110)
    plt.close(fig)
    names.append(f"model{SUFFIX}-per-project-gains.png")
    return names


def project_rows(valid: train.Dataset, chosen: np.ndarray, fixed: int) -> list[str]:
    """Per validation project: its share of the total bytes and the three totals."""
    clang_all = valid.clang.sum()
    rows = []
    for project in sorted(set(valid.groups), key=lambda p: -valid.clang[valid.groups == p].sum()):
        idx = np.flatnonzero(valid.groups == project)
        clang = valid.clang[idx].sum()

        def gain(cols) -> str:
            return _pct(100.0 * (1 - (valid.R[idx, cols] * valid.clang[idx]).sum() / clang))
        rows.append(f"| {project} | {len(idx)} | {int(clang):,} ({100.0 * clang / clang_all:.0f}%) | "
                    f"{gain(chosen[idx])} | {gain(np.full(len(idx), fixed))} | "
                    f"{gain(valid.R[idx].argmin(axis=1))} |")
    return ["| project | files | bytes with clang (share) | model | best fixed | oracle |",
            "| --- | --- | --- | --- | --- | --- |", *rows]


def trial_gain(data: train.Dataset, pred: np.ndarray, k: int) -> dict:
    """Total and geomean reduction of `-fmlcc-trials=k` (clang's pipeline + the top k others)."""
    clang = data.candidates.index(search.CLANG_PIPELINE)
    order = np.array([[i for i in row if i != clang] for row in np.argsort(pred, axis=1, kind="stable")])
    picks = np.concatenate([np.full((len(pred), 1), clang, dtype=int), order[:, :k]], axis=1)
    sizes = np.take_along_axis(data.R, picks, axis=1).min(axis=1) * data.clang
    return {"total": 100.0 * (1 - sizes.sum() / data.clang.sum()),
            "geomean": 100.0 * (1 - float(np.exp(np.mean(np.log(sizes / data.clang))))),
            "larger": int((sizes > data.clang * (1 + 1e-12)).sum())}


def set_gain(data: train.Dataset, cols: tuple[int, ...]) -> float:
    """Total reduction when each unit keeps the smallest of clang's pipeline and `cols`."""
    return 100.0 * (1 - train.set_sizes(data, cols).sum() / data.clang.sum())


def fixed_set_out_of_fold(data: train.Dataset, k: int) -> float:
    """Total reduction of the best fixed set of `k` on `data`, each fold's units scored with
    the set chosen on the other folds (as the model's out-of-fold trials are)."""
    sizes = np.zeros(len(data.units))
    for fit_rows, held_out in train.fold_splits(data):
        chosen = train.best_fixed_set(data.subset(np.isin(np.arange(len(data.units)), fit_rows)), k)
        sizes[held_out] = train.set_sizes(data, chosen)[held_out]
    return 100.0 * (1 - sizes.sum() / data.clang.sum())


def search_results(path: Path, digest: str, command: str) -> tuple[dict | None, str]:
    """A `budget` results file, if there is one, and which model guided its searches."""
    if not path.exists():
        return None, ""
    data = json.loads(path.read_text())
    guide = data.get("model")
    return data, (f"Guided by this model (sha256:{guide})." if guide == digest else
                  f"**Guided by an earlier model** ({'sha256:' + guide if guide else 'not recorded'}); "
                  f"`{command}` measures it again with this one.")


def budget_section(digest: str) -> list[str]:
    """`-fmlcc-search=N` against a long search, from `python -m mlcc.learn.search budget`."""
    from mlcc.learn.search import budget

    data, guided = search_results(budget.RESULTS, digest, "make budget")
    if data is None:
        return []
    gains = data["total_gain_pct"]
    longest = max(gains, key=int)
    return [
        "## Search budget (`-fmlcc-search=N`)",
        "",
        f"{data['units']} validation units of 8 to 40 KB of bitcode from {len(data['projects'])} "
        f"projects ({', '.join(data['projects'])}), {data['clang_bytes']:,} bytes with clang's "
        f"pipeline; one search of {data['long_budget']} evaluations each, as the driver runs it "
        "(`python -m mlcc.learn.search budget`, results in `models/data/`). The first evaluations are "
        "clang's pipeline and the model's candidates in its order, then local edits of the best "
        "pipelines so far. A search ends early when the edits run out of new pipelines "
        f"({sum(len(r['sizes']) < data['long_budget'] for r in data['rows'])} of these did). "
        + guided,
        "",
        "| N | total reduction | share of the longest search's |",
        "| --- | --- | --- |",
        *[f"| {n} | {_pct(g)} | {100.0 * g / gains[longest]:.0f}% |" if gains[longest] > 0
          else f"| {n} | {_pct(g)} | — |" for n, g in gains.items()],
        "",
    ]


def every_unit_section(digest: str) -> list[str]:
    """Trials and a short search built on every validation unit (`budget --all`)."""
    from mlcc.learn.search import budget

    data, guided = search_results(budget.RESULTS_ALL, digest, "python -m mlcc.learn.search budget --all")
    if data is None:
        return []
    gains = data["total_gain_pct"]
    # clang's pipeline and the candidates, as most units start (fewer where slow passes are
    # left out and two candidates become the same pipeline)
    counts = Counter(r["starts"] for r in data["rows"] if "starts" in r)
    starts = counts.most_common(1)[0][0] if counts else None

    def what(n: int) -> str:
        if starts and n <= starts:
            return f"clang's and the model's top {n - 1} (trials before the trial sets)" if n > 1 else "clang"
        return f"`-fmlcc-search={n}`"

    rows = [r for r in data["rows"] if r["clang"]]
    k4, longest = 5, max(map(int, gains))  # clang's pipeline and the top 4; the whole search

    def saved(some: list[dict], n: int) -> int:
        """Bytes the best of the first `n` evaluations saves on `some` units."""
        return sum(r["clang"] - min(x for x in r["sizes"][:n] if x is not None) for r in some)

    clang_bytes, data_bytes = data["clang_bytes"], data.get("clang_data_bytes", 0)
    code_bytes = clang_bytes - data_bytes
    by_project = []
    for project in data["projects"]:
        mine = [r for r in rows if r["project"] == project]
        clang = sum(r["clang"] for r in mine)
        by_project.append(
            f"| {project} | {len(mine)} | {clang:,} ({100.0 * clang / clang_bytes:.0f}%) | "
            f"{100.0 * sum(r.get('clang_data') or 0 for r in mine) / clang:.0f}% | "
            f"{_pct(100.0 * saved(mine, k4) / clang)} | {_pct(100.0 * saved(mine, longest) / clang)} |")
    code_only = (f"Counted against the bytes that are not initialized data, K = 4 saves "
                 f"{_pct(100.0 * saved(rows, k4) / code_bytes)} and N = {longest} "
                 f"{_pct(100.0 * saved(rows, longest) / code_bytes)}." if data_bytes and code_bytes else "")
    return [
        "## Trials and search, built on every validation unit",
        "",
        f"{data['units']} validation units from {len(data['projects'])} projects, "
        f"{clang_bytes:,} bytes with clang's pipeline, {100.0 * data_bytes / clang_bytes:.0f}% of them initialized "
        "data (`.data`, `.rodata`, code generation's constant pools included); one search of "
        f"{data['long_budget']} evaluations on each, as the driver runs it (`python -m mlcc.learn.search budget "
        "--all`). Its first evaluations are clang's pipeline and the model's candidates in rank order, so "
        "the best of the first K + 1 is what `-fmlcc-trials=K` kept before the model carried its trial sets "
        "(above, *Trials*). " + guided,
        "",
        "| evaluations | what the driver runs | total reduction |",
        "| --- | --- | --- |",
        *[f"| {n} | {what(int(n))} | {_pct(g)} |" for n, g in gains.items()],
        "",
        *([code_only, ""] if code_only else []),
        f"By project (data: the share of clang's bytes that is initialized data; K = 4 and N = {longest}):",
        "",
        f"| project | files | bytes with clang (share) | data | trials K = 4 | search N = {longest} |",
        "| --- | --- | --- | --- | --- | --- |",
        *by_project,
        "",
    ]


def os_section(runtime) -> list[str]:
    """The -Os model's headline, from its own metadata (its report: MODEL-REPORT-Os.md)."""
    path = runtime.bundled_model_path("s")
    shipped = path.exists()
    if not shipped:
        path = UNSHIPPED / path.name
    if not path.exists():
        return ["No -Os model: at -Os mlcc runs clang's own `default<Os>` pipeline, so its -Os "
                "output equals clang -Os (0.00%)."]
    m = runtime.load(str(path))
    valid = model_file.get(m.metadata(), "validation", {})
    model, fixed = valid.get("model", {}), valid.get("best_single_fixed", {})
    where = (f"`{path.name}`" if shipped else
             f"Not shipped: at -Os mlcc runs clang's own `default<Os>` pipeline (equal to clang -Os) "
             f"unless asked for `models/unshipped/{path.name}` with `MLCC_MODEL`. That model")
    return [f"{where} (sha256:{m.digest}, {len(m.candidates)} candidates), against clang -Os on "
            f"the same validation projects, as scored when it was trained: single-shot "
            f"{_pct(model.get('total_gain_pct', 0.0))} in total ({model.get('larger_units', 0)} "
            "files larger), best fixed pipeline "
            f"{_pct(fixed.get('total_gain_pct', 0.0))}, oracle of its candidates "
            f"{_pct(model.get('oracle_total_gain_pct', 0.0))}. Everything else: "
            "[MODEL-REPORT-Os.md](MODEL-REPORT-Os.md)."]


def default_k(trials: dict, min_gain_pts: float = 0.1) -> int:
    """The last K before the first trial that gains less than `min_gain_pts` on training."""
    previous = 0.0
    for k, t in trials.items():
        if t["train"]["total"] - previous < min_gain_pts:
            return k - 1
        previous = t["train"]["total"]
    return max(trials)


def candidate_section(cand_meta: dict, candidates: list[str], usage) -> list[str]:
    """The selection curve: in-sample, and held out by project when it was computed."""
    walked = cand_meta.get("sample") == "walk"
    held_out = cand_meta.get("held_out_gain_pct") or []
    lines = [
        "## Candidate set (selection curve on "
        + ("walked" if walked else "explored") + " training units)",
        "",
        (f"Chosen on {cand_meta['selection_units']} small training units (3 to 40 KB of bitcode) "
         f"from {cand_meta.get('selection_projects')} projects, walked by local edits from the "
         "same start pipelines (`python -m mlcc.learn.search walk`; the steps of `make model` / "
         "`make model-Os` say how many, and which winners were cross-checked on every unit). "
         + ("Only pipelines that wrap this level's own `default<O?>` were eligible. "
            if cand_meta.get("wrapped_only") else "") if walked else "")
        + f"Oracle of every pipeline measured on those units: {cand_meta['oracle_all_pct']}%; "
        f"best single pipeline there: {cand_meta['best_single']['gain_pct']}%.",
    ]
    if held_out:
        lines += ["", "*held out*: each project's units scored with a set chosen on the other "
                  "projects' units (leave one project out), the evidence for K: the smallest K "
                  "(at least 8) after which four more pipelines add less than 0.2 points there."]
    lines += ["", "| K | oracle gain | held out | added pipeline | chosen on validation |",
              "| --- | --- | --- | --- | --- |"]
    for row in cand_meta["curve"][:max(len(candidates), 12)]:
        k = row["k"]
        used = int(usage[candidates.index(row["pipeline"])]) if row["pipeline"] in candidates else "-"
        other = _pct(held_out[k - 1]) if k <= len(held_out) else "-"
        lines.append(f"| {k} | {row['gain_pct']:.2f}% | {other} | `{row['pipeline']}` | {used} |")
    tuned = cand_meta.get("tuned_default")
    if tuned in candidates:
        lines.append(f"| + | - | - | `{tuned}` (the default tuned on the labeled training units, "
                     f"`tune_default`) | {int(usage[candidates.index(tuned)])} |")
    return lines


@click.command()
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=train.MODEL_FILE)
def main(model_path: Path) -> None:
    """Write docs/MODEL-REPORT.md from the model, the measurements and the features."""
    from mlcc import model as runtime

    m = runtime.load(str(model_path))
    meta = m.metadata()
    candidates = list(m.candidates)
    manifest = json.loads(MANIFEST_FILE.read_text())
    data = train.build_dataset(manifest["units"], candidates, search.Store(),
                               search.corpus_bitcode(Layout.from_environment()))
    valid = data.subset([u["split"] == "validation" for u in data.units])
    trainset = data.subset([u["split"] == "train" for u in data.units])
    pred = m.predict_many(valid.X)
    chosen = train.choose(pred, m.margin)
    fixed = train.default_candidate(trainset)  # train.py's rule, free pipelines included
    model_score = train.score(valid, chosen)
    fixed_score = train.score(valid, np.full(len(chosen), fixed))
    oracle = model_score["oracle_total_gain_pct"]
    fraction = 100.0 * model_score["total_gain_pct"] / oracle if oracle > 0 else 0.0
    rows = np.arange(len(chosen))
    ratios = valid.R[rows, chosen]
    larger = ratios[ratios > 1 + 1e-12]
    # Trials as the driver does them: clang's pipeline, then the top K other candidates;
    # on validation with the model, and on training with out-of-fold predictions (what
    # the default K is chosen from).
    oof, _ = train.cross_validate(trainset, model_file.text(meta, "family", "extra-trees"))
    trials = {k: {"valid": trial_gain(valid, pred, k), "train": trial_gain(trainset, oof, k),
                  "fixed": set_gain(valid, train.best_fixed_set(trainset, k)),
                  "fixed_train": fixed_set_out_of_fold(trainset, k)}
              for k in range(1, len(candidates))}
    cand_meta = json.loads(search.CANDIDATES.read_text())
    images = _plots(valid, chosen, fixed) if len(valid.units) else []
    store = search.Store()
    usage = np.bincount(chosen, minlength=len(candidates))

    trained_on = model_file.get(meta, "training_data", {}).get("train_units")
    lines = [
        f"# Code-size model report (-O{LEVEL})",
        "",
        f"Generated by `make report` (`{'' if LEVEL == 'z' else 'MLCC_LEARN_LEVEL=' + LEVEL + ' '}python -m mlcc.learn.report model`) from the committed",
        "data in `models/data/` and the model `" + _repo_path(model_path) + "`.",
        "Objective: bytes of `.text`, `.data`, `.rodata` (with subsections) of each object,",
        "after `opt` and code generation through clang with the unit's own flags.",
        "Every figure below is on **validation projects**, never seen by the search,",
        "the candidate selection or the training.",
        "",
        "## Data",
        "",
        f"- model: `{model_path.name}` sha256:{m.digest}, family `{model_file.text(meta, 'family')}`,",
        f"  LLVM {model_file.text(meta, 'llvm_major')}, feature schema v{model_file.text(meta, 'feature_schema_version')}"
        f" ({model_file.text(meta, 'feature_schema_hash')}), margin {m.margin}",
        f"- training: {len(trainset.units)} labeled units from {len(set(trainset.groups))} projects"
        + (f" in the table now (the model was trained on {trained_on}; the trials' training "
           "columns below use the table's)" if trained_on not in (None, len(trainset.units)) else "")
        + "; "
        f"validation: {len(valid.units)} units from {len(set(valid.groups))} projects "
        f"({', '.join(sorted(set(valid.groups)))})",
        f"- measurements in the table: {len(store.sizes)} (unit, pipeline) pairs",
        f"- candidates: K = {len(candidates)} (`clang` is clang's own -O{LEVEL} pipeline exactly as clang runs it, "
        f"`clang[knob,...]` that pipeline with the knobs of `mlcc/data/clang-knobs.toml`; candidate 0, "
        f"`{candidates[0]}`, is the model's default), chosen from "
        f"{cand_meta['pipelines_considered']} pipelines on {cand_meta['selection_units']} "
        f"{'walked' if cand_meta.get('sample') == 'walk' else 'explored'} training units",
        "",
        f"## Single-shot results on validation projects (against clang -O{LEVEL})",
        "",
        "| | total reduction | geomean reduction | files larger than clang |",
        "| --- | --- | --- | --- |",
        f"| mlcc model (one opt + one codegen per file) | {_pct(model_score['total_gain_pct'])} | "
        f"{_pct(model_score['geomean_gain_pct'])} | {model_score['larger_units']} |",
        f"| best single fixed pipeline (best mean gain over the training projects) | {_pct(fixed_score['total_gain_pct'])} | "
        f"{_pct(fixed_score['geomean_gain_pct'])} | {fixed_score['larger_units']} |",
        f"| oracle of the {len(candidates)} candidates (best per file) | {_pct(oracle)} | "
        f"{_pct(100.0 * (1 - float(np.exp(np.mean(np.log(valid.R.min(axis=1)))))))} | 0 |",
        "",
        f"- the model reaches **{fraction:.0f}%** of the candidate set's oracle;",
        f"- it beats the best fixed pipeline by **{model_score['total_gain_pct'] - fixed_score['total_gain_pct']:+.2f}"
        " points** in total;",
        f"- files made larger: {len(larger)} of {len(ratios)}"
        + (f", by {100 * (np.median(larger) - 1):.2f}% (median) and {100 * (larger.max() - 1):.2f}% (worst)"
           if len(larger) else "") + ".",
        "",
        "By project (a project's share of the total weighs its gain in the total):",
        "",
        *project_rows(valid, chosen, fixed),
        "",
        "## Trials (`-fmlcc-trials=K`: clang's pipeline plus K candidates, smallest kept)",
        "",
        "Computed from the same measurements: a trial is the same opt + code generation.",
        "The driver builds the *best fixed K* set when the model carries one (`mlcc.trial_sets`"
        + (f", this model does: K = 1 to {len(m.trial_sets)}" if m.trial_sets else ", this model does not")
        + "), else the model's top K.",
        "*training* uses out-of-fold predictions (5 folds grouped by project; projects sharing a unit are one group), so the",
        f"default K of a bare `-fmlcc-trials` ({DEFAULT_TRIALS}, `mlcc/settings.py`) is chosen",
        "without the validation projects: the last K whose trial still gains 0.1 points or",
        f"more there is K = {default_k(trials)} for this model"
        + ("." if default_k(trials) == DEFAULT_TRIALS else
           f" ({DEFAULT_TRIALS} for the first model, with 8 candidates; the default was set "
           "then and not moved: every trial is one more opt and code generation per file)."),
        "",
        "| K | builds per file | model's top K, validation: total | geomean | files larger | training: total "
        "| gained by this trial | best fixed K: validation | training |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {k} | {k + 1} | {_pct(t['valid']['total'])} | {_pct(t['valid']['geomean'])} | "
          f"{t['valid']['larger']} | {_pct(t['train']['total'])} | "
          f"{t['train']['total'] - (trials[k - 1]['train']['total'] if k > 1 else 0.0):+.2f} pts | "
          f"{_pct(t['fixed'])} | {_pct(t['fixed_train'])} |"
          for k, t in trials.items()],
        "",
        "*best fixed K*: no model; every file tries clang's pipeline and the same K candidates, the K whose "
        "best has the best mean project gain on the training projects (`train.best_fixed_set`); on training, "
        "out of fold like the model's column: each fold scored with the set chosen on the other folds.",
        "",
        *budget_section(m.digest),
        *every_unit_section(m.digest),
        *candidate_section(cand_meta, candidates, usage),
    ]
    if LEVEL == "z":
        lines += ["", "## -Os", "", *os_section(runtime)]
    lines += ["", "## Plots", ""] + [f"![{n}](img/{n})" for n in images] + [""]
    REPORT.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {REPORT}")
    click.echo(f"validation: model {model_score['total_gain_pct']:.2f}% total "
               f"({model_score['geomean_gain_pct']:.2f}% geomean), fixed {fixed_score['total_gain_pct']:.2f}%, "
               f"oracle {oracle:.2f}%, larger {len(larger)}/{len(ratios)}")
