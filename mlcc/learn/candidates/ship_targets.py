"""Ship each target's tuned default, or not: mlcc/data/targets.toml from the searches.

For every target but x86-64 with a `tune-default` result
(`models/data/default-<target>-O<level>.json`), the target's `default` and
`trials` for the level become the result's when its default is no worse than
clang's own pipeline in total on the training sample and on the validation
projects, and clang's own (no trial sets) otherwise. With the default go its
code generation variants (`codegen_variants`) that `candidates codegen-variants`
chose for that very default (`models/data/codegen-variants-<target>-O<level>.json`).
Only those lines of the target's entry are rewritten; the rest of the file,
comments included, is kept.
"""

from __future__ import annotations

import json
import re

import click

from mlcc import targets
from mlcc.learn.paths import MODELS


def ships(result: dict) -> bool:
    """The rule: no worse than clang in total, on training and on validation."""
    checked = result.get("checked", {})
    return all(checked.get(split, {}).get("total_gain_pct") is not None
               and checked[split]["total_gain_pct"] >= 0 for split in ("train", "validation"))


def _inline(table: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(table.items(), reverse=True)) + " }"


def rewrite(text: str, name: str, defaults: dict, trials: dict, variants: dict | None = None) -> str:
    """`text` with the `default`, `trials` and `codegen_variants` lines of
    `[targets.<name>]` set."""
    head, sep, rest = text.partition(f"[targets.{name}]\n")
    if not sep:
        raise click.ClickException(f"{targets.TARGETS_FILE} has no [targets.{name}]")
    body, nxt, tail = rest.partition("\n[")
    lines = [line for line in body.splitlines()
             if not re.match(r"(default|trials|codegen_variants) = ", line)]
    lines.append(f"default = {_inline(defaults)}")
    if trials:
        lines.append(f"trials = {_inline(trials)}")
    if variants:
        lines.append(f"codegen_variants = {_inline(variants)}")
    return head + sep + "\n".join(lines) + ("\n" + nxt + tail if nxt else "\n")


def chosen_variants(name: str, level: str, default: str) -> list[str]:
    """The code generation variants `candidates codegen-variants` chose for `default`."""
    path = MODELS / "data" / f"codegen-variants-{name}-O{level}.json"
    if not path.exists():
        return []
    result = json.loads(path.read_text())
    return list(result["ships"]) if result["default"] == default else []


@click.command()
@click.option("--level", type=click.Choice(["z", "s"]), default="z", show_default=True)
def main(level: str) -> None:
    """Write each searched target's default and trial sets into mlcc/data/targets.toml."""
    text = targets.TARGETS_FILE.read_text()
    for name, target in targets.table().items():
        path = MODELS / "data" / f"default-{name}-O{level}.json"
        if name == targets.HOST or not path.exists():
            continue
        result = json.loads(path.read_text())
        shipped = ships(result)
        defaults = {**target.defaults, level: result["default"] if shipped else "clang"}
        trials = {k: v for k, v in target.trials.items() if k != level}
        variants = {k: v for k, v in target.codegen_variants.items() if k != level}
        if shipped:
            trials[level] = result["trial_sets"]
            chosen = chosen_variants(name, level, result["default"])
            if chosen:
                variants[level] = chosen
        text = rewrite(text, name, defaults, trials, variants)
        click.echo(f"{name} -O{level}: {'the tuned default' if shipped else 'clang'}, "
                   f"{len(variants.get(level, []))} code generation variant(s)")
    targets.TARGETS_FILE.write_text(text)
    targets.table.cache_clear()
