"""The README's headline figures, written from the benchmark's results.

`mlcc-tool bench` summarizes its builds into sections (one per level and mode);
this turns the single-shot and trials sections into a short table and one plot
between two markers in README.md, so that the figures a user reads first are
the benchmark's own, never typed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

BEGIN = "<!-- headline: written by `mlcc-tool bench` from its results; rerun it, do not edit -->"
END = "<!-- end of headline -->"
SHOWN_MODES = ("single", "trials")


def geomean_gain(rows: list[dict], key: str = "artifact") -> float | None:
    """The geometric mean of per-project gains, as a percentage: one data-heavy project
    cannot decide it as it can the total."""
    ratios = [r[f"{key}_mlcc"] / r[f"{key}_clang"] for r in rows if r.get(f"{key}_clang")]
    if not ratios or any(x <= 0 for x in ratios):
        return None
    return 100.0 * (1.0 - math.exp(sum(math.log(x) for x in ratios) / len(ratios)))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} %"


def render(sections: list[dict], mode_titles: dict[str, str], invocation: dict,
           plot: str | None, repeats: int = 1) -> list[str]:
    """The lines between the markers: a row per level and mode, the plot, where they came from
    (`repeats`: how many builds of each configuration its times are the median of)."""
    shown = [s for s in sections if s["mode"] in SHOWN_MODES and s["total"].get("projects")]
    if not shown:
        return ["No benchmark results yet: `make bench` writes them here."]
    lines = ["| build | linked size vs clang-19, total | geometric mean per project | "
             "object files larger than clang's | build CPU vs clang, total (per project) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for s in shown:
        total = s["total"]
        rows = [r for r in s["rows"].values() if r.get("ok")]
        lines.append(f"| `{s['level']}`, {mode_titles[s['mode']]} | {_pct(total['artifact_gain'])} | "
                     f"{_pct(geomean_gain(rows))} | {total['files_larger']} of {total['files']} | "
                     f"{total['cpu_ratio']:.2f}×"
                     + (f" ({total['cpu_ratio_geomean']:.2f}×)" if total.get("cpu_ratio_geomean") else "")
                     + " |")
    projects = max(s["total"]["projects"] for s in shown)
    lines += ["", f"Positive: mlcc's output is smaller. {projects} real projects that are not in "
              "the model's training data, each built with its own build system by clang-19 and by "
              f"mlcc at the same level (`{invocation.get('command') or 'mlcc-tool bench'}`, "
              f"{invocation.get('date', '?')}, git {invocation.get('git', '?')}); sizes are "
              "`.text`+`.data`+`.rodata` of the programs and libraries they link"
              + (f"; build CPU is the median of {repeats} builds of each, and *per project* the "
                 "geometric mean of the projects' ratios" if repeats > 1 else
                 "; *per project* is the geometric mean of the projects' CPU ratios")
              + ". Every table: "
              "[docs/BENCHMARKS.md](docs/BENCHMARKS.md)."]
    if plot:
        lines += ["", f"![Linked size gain per project]({plot})"]
    return lines


def update(readme: Path, lines: list[str]) -> bool:
    """Replace what stands between the markers in `readme`; False (nothing written)
    when the file or its markers are missing."""
    try:
        text = readme.read_text()
    except OSError:
        return False
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    new = text[:start] + BEGIN + "\n" + "\n".join(lines) + "\n" + text[end:]
    if new != text:
        readme.write_text(new)
    return True
