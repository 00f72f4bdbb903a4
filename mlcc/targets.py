"""The target a unit is compiled for, and what mlcc has for it.

clang decides the target from the unit's flags (--target, -target, -m32,
-march) and names it in its cc1 line as `-triple`; `decide.target_info` reads
it there, so mlcc decides for exactly what clang compiles for. The targets mlcc
knows are data (`data/targets.toml`): which triple architectures each covers,
how the learning side compiles for it, and per level what single-shot runs
where no model ships for the target.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mlcc.model_file import HOST_TARGET as HOST

DATA = Path(__file__).parent / "data"
TARGETS_FILE = DATA / "targets.toml"
# stands for DATA in the table's words, for files of mlcc's own (a linker script)
DATA_WORD = "{data}"


@dataclass(frozen=True)
class Target:
    """One entry of the targets table."""

    name: str
    arches: tuple[str, ...]
    flags: tuple[str, ...] = ()       # how to compile for it (the learning side, bench, tests)
    packages: tuple[str, ...] = ()    # Debian packages its headers come from
    drop: tuple[str, ...] = ()        # flag prefixes an x86-64 command loses for it
    defaults: dict[str, str] = field(default_factory=dict)  # level -> pipeline without a model
    trials: dict[str, list] = field(default_factory=dict)   # level -> trial sets of 1, 2, ... pipelines
    # level -> pipelines that differ from the default in code generation only: single-shot
    # generates code from the default's one opt run with each too, and keeps the smallest
    codegen_variants: dict[str, list] = field(default_factory=dict)
    link: tuple[str, ...] = ()        # what a program's link adds after the program
    emulator: tuple[str, ...] = ()    # the qemu-user command that runs its programs here
    stdout: str = "stdout"            # the emulator's stream its programs' standard output arrives on
    # level -> "model" (the default) or "default": whether single-shot asks the bundled
    # model, or runs `default` (its candidate 0) without reading the unit
    single_shot: dict[str, str] = field(default_factory=dict)
    # level -> other pipelines single-shot builds from the unit's bitcode beside the
    # default and its variants, keeping the smallest object (clang's own: none larger)
    also: dict[str, list] = field(default_factory=dict)

    @property
    def runs_programs(self) -> bool:
        """Whether its programs link and run on this machine (natively, or under `emulator`)."""
        return self.name == HOST or bool(self.emulator)

    def retarget(self, tokens) -> list[str]:
        """A command line written for x86-64, for this target instead: the `drop`
        flags removed, this target's `flags` added before the inputs."""
        kept = [t for t in tokens if not t.startswith(self.drop)] if self.drop else list(tokens)
        return [*self.flags, *kept]

    def default(self, opt_level: str) -> str:
        """What single-shot runs at -O`opt_level` when no model ships for this target."""
        return self.defaults.get(opt_level, "clang")

    def asks_model(self, opt_level: str) -> bool:
        """Whether single-shot at -O`opt_level` asks the bundled model (`single_shot`)."""
        return self.single_shot.get(opt_level, "model") == "model"

    def also_built(self, opt_level: str) -> tuple[str, ...]:
        """The pipelines single-shot builds beside the default at -O`opt_level` (`also`)."""
        return tuple(self.also.get(opt_level, ()))

    def variants(self, opt_level: str) -> tuple[str, ...]:
        """The default's code generation variants at -O`opt_level` (`codegen_variants`)."""
        return tuple(self.codegen_variants.get(opt_level, ()))

    def trial_sets(self, opt_level: str) -> tuple[tuple[str, ...], ...]:
        """What `-fmlcc-trials=K` builds (besides clang's) when no model ships: the K-th set."""
        return tuple(tuple(s) for s in self.trials.get(opt_level, ()))


@lru_cache(maxsize=1)
def table() -> dict[str, Target]:
    """Target name -> its entry, in the file's order."""
    with open(TARGETS_FILE, "rb") as f:
        entries = tomllib.load(f)["targets"]

    def words(e: dict, key: str) -> tuple[str, ...]:
        return tuple(w.replace(DATA_WORD, str(DATA)) for w in e.get(key, ()))

    return {name: Target(name, tuple(e["arches"]), words(e, "flags"),
                         tuple(e.get("packages", ())), tuple(e.get("drop", ())),
                         dict(e.get("default", {})), dict(e.get("trials", {})),
                         dict(e.get("codegen_variants", {})), words(e, "link"),
                         words(e, "emulator"), e.get("stdout", "stdout"),
                         dict(e.get("single_shot", {})), dict(e.get("also", {})))
            for name, e in entries.items()}


def portable(word: str) -> str:
    """A word of the table as the file writes it: mlcc's data directory as DATA_WORD,
    so that what is recorded (a campaign's summary) does not name this checkout."""
    return word.replace(str(DATA), DATA_WORD)


def arch_of(triple: str) -> str:
    """The architecture of a triple: `thumbv7m` for `thumbv7m-unknown-none-eabi`."""
    return triple.split("-", 1)[0]


def of_triple(triple: str) -> Target | None:
    """The known target covering `triple`, or None (an unknown or unsupported target)."""
    arch = arch_of(triple)
    return next((t for t in table().values() if arch in t.arches), None)


def named(name: str) -> Target:
    """The target called `name`; KeyError names the known ones."""
    try:
        return table()[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r} (known: {', '.join(table())})") from None
