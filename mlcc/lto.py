"""Link-time optimization through mlcc: `-flto` and `-flto=thin` at -Os/-Oz.

At compile time a unit takes mlcc's route as far as opt: the decision runs on
clang's pre-link pipeline (the text clang prints for the unit's flags, -flto
among them), and the optimized module becomes the object clang itself would
write for -flto: `clang -O0 -flto=KIND` from the bitcode adds the summary and
the module flags and runs no pass that changes code (driver.py, codegen.py).

At the link mlcc is the link driver. An LTO link with lld at -Os/-Oz carries
the target's default pipeline (candidate 0 of its model, or its entry in
targets.toml) to the linker: lld's post-link pipeline (`lto<O?>` or
`thinlto<O?>`) as opt's text with the default's knobs (`--lto-newpm-passes`)
and its code generation knobs (`-mllvm`). Slow passes stay out: the whole
program is larger than the bound a unit's IR outliner runs under. lld's ThinLTO
cache key leaves `-mllvm` options out, so a ThinLTO cache directory gets a
subdirectory named by mlcc's options: a cache never mixes builds.

Other linkers (GNU ld or gold with LLVMgold.so) get the user's link unchanged;
the units still carry their pre-link decisions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from mlcc.args import Command

# -flto spellings clang accepts for full LTO (`auto` and `jobserver` are GCC's, taken as full)
_FULL = ("-flto", "-flto=full", "-flto=auto", "-flto=jobserver")
# lld's option for its ThinLTO cache, as the user gives it through -Wl, or -Xlinker
CACHE_OPTION = "--thinlto-cache-dir="
# `-Xlinker` hands one argument to the linker whole: the pipeline text holds commas
# that `-Wl,` would split at
_XLINKER = "-Xlinker"


def kind(cmd: Command) -> str | None:
    """"full", "thin" or None: what the command's last -flto/-fno-lto says."""
    found = None
    for arg in cmd.args:
        if arg.is_input:
            continue
        if arg.name in _FULL:
            found = "full"
        elif arg.name == "-flto=thin":
            found = "thin"
        elif arg.name == "-fno-lto":
            found = None
    return found


def linker_is_lld(cmd: Command) -> bool:
    """True when clang would link with lld: -fuse-ld=lld (or a path to an lld) or
    --ld-path to one, the last of them deciding."""
    linker = ""
    for arg in cmd.args:
        if arg.is_input:
            continue
        if arg.name.startswith("-fuse-ld="):
            linker = arg.name.split("=", 1)[1] or arg.value
        elif arg.name.startswith("--ld-path"):
            linker = arg.value or arg.name.partition("=")[2]
    return os.path.basename(linker).startswith(("lld", "ld.lld"))


@dataclass(frozen=True)
class LtoLink:
    """An LTO link of objects alone (no source to compile): clang links, with mlcc's
    link-time options when `link_options` finds some."""

    command: Command
    kind: str


def post_link_text(opt: str, lto_kind: str, opt_level: str, cache=None) -> str:
    """lld's post-link pipeline at -O`opt_level` in opt's text (`lto<Oz>`, `thinlto<Oz>`),
    as opt prints it; remembered in the decision cache."""
    from mlcc.process import run_tool

    name = f"{'thinlto' if lto_kind == 'thin' else 'lto'}<O{opt_level}>"
    key = None
    if cache is not None:
        from mlcc.cache import make_text_key
        st = os.stat(opt)
        key = make_text_key("post-link pipeline", opt, st.st_size, st.st_mtime_ns, name)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("text"), str):
            return entry["text"]
    proc = run_tool([opt, f"-passes={name}", "-print-pipeline-passes", "-disable-output", os.devnull],
                    capture_stdout=True, capture_stderr=True)
    text = proc.stdout.decode(errors="replace").strip()
    for tail in (",BitcodeWriterPass", ",verify"):
        text = text.removesuffix(tail)
    if cache is not None:
        cache.put(key, {"text": text})
    return text


def link_pipeline(opt_level: str, settings, triple: str) -> str:
    """What the link runs for the target of `triple`: the pipeline single-shot would give a
    unit of it without features (its model's candidate 0, else its default), slow passes
    left out; clang's own pipeline for a target mlcc has nothing for."""
    from mlcc import model, passes
    from mlcc.pipeline import CLANG

    if settings.pipeline:
        chosen = settings.pipeline
    else:
        target = model.target_of(triple)
        if target is None or settings.model == "none":
            return CLANG
        chosen = model.default_pipeline(opt_level, settings, target.name)
    return passes.bounded(chosen, float("inf"))


def link_options(cmd: Command, lto_kind: str, settings, tools, cache=None) -> tuple[list[str], str]:
    """The arguments mlcc adds to an LTO link, and the pipeline they carry (clang's own:
    none added)."""
    from mlcc import knobs
    from mlcc.pipeline import CLANG

    chosen = link_pipeline(cmd.opt_level, settings, link_triple(cmd, tools.clang))
    if chosen == CLANG or not knobs.names_clang(chosen):
        # a pipeline not built on clang's own (a forced free one) has no post-link form
        return [], CLANG
    text = knobs.expand(chosen, post_link_text(tools.opt, lto_kind, cmd.opt_level, cache))
    extra = [_XLINKER, f"--lto-newpm-passes={text}"]
    for option in knobs.codegen_args(chosen, [t for a in cmd.args for t in a.tokens]):
        if option != "-mllvm":
            extra += [_XLINKER, "-mllvm", _XLINKER, option]
    return extra, chosen


def link_triple(cmd: Command, clang: str) -> str:
    """The target triple clang links for with this command's flags."""
    from mlcc.process import run_tool

    flags = [t for a in cmd.args if not a.is_input and a.name not in ("-o",) and not a.name.startswith(
        ("-Wl,", "-Xlinker", "-l", "-L", "-fuse-ld", "--ld-path")) for t in a.tokens]
    proc = run_tool([clang, *flags, "-print-effective-triple"], capture_stdout=True, capture_stderr=True)
    return proc.stdout.decode(errors="replace").strip()


def with_private_cache(argv: list[str], extra: list[str]) -> list[str]:
    """`argv` with each ThinLTO cache directory it names replaced by a subdirectory for
    mlcc's `extra` options (`mlcc-<digest>`): lld's cache key does not see -mllvm options."""
    digest = hashlib.sha256("\0".join(extra).encode()).hexdigest()[:16]
    sub = f"mlcc-{digest}"
    out: list[str] = []
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):  # a unit's object (mlcc/plan.py's link arguments)
            pass
        elif arg.startswith("-Wl,") and CACHE_OPTION in arg:
            parts = [os.path.join(p, sub) if p.startswith(CACHE_OPTION) else p for p in arg[4:].split(",")]
            arg = "-Wl," + ",".join(parts)
        elif arg.startswith(CACHE_OPTION) and i > 0 and argv[i - 1] == _XLINKER:
            arg = os.path.join(arg, sub)
        out.append(arg)
    return out


def link_argv(argv: list[str], cmd: Command, lto_kind: str, settings, tools,
              cache=None) -> tuple[list[str], str]:
    """The user's link arguments with mlcc's LTO options added (lld at -Os/-Oz; else
    unchanged), and the pipeline they carry."""
    from mlcc.pipeline import CLANG

    from mlcc.errors import MlccError

    if not linker_is_lld(cmd):
        return list(argv), CLANG
    try:
        extra, chosen = link_options(cmd, lto_kind, settings, tools, cache)
    except MlccError as exc:  # ToolFailed among them: the link goes on as clang's own
        from mlcc.notices import warn_once
        warn_once(f"{exc}; linking with clang's own link-time pipeline")
        return list(argv), CLANG
    if not extra:
        return list(argv), chosen
    return [*with_private_cache(list(argv), extra), *extra], chosen


def run_link(plan: LtoLink, clang_argv, settings) -> None:
    """Replace this process by clang's LTO link with mlcc's options; log what it carries."""
    from mlcc import decide
    from mlcc.process import exec_tool
    from mlcc.toolchain import for_driver

    tools = for_driver(plan.command.driver)
    argv, chosen = link_argv(list(clang_argv), plan.command, plan.kind, settings, tools,
                             decide.open_cache(settings))
    if settings.log:
        from mlcc import record
        record.append_log(settings.log, {"path": "lto-link", "lto": plan.kind, "pipeline": chosen,
                                         "cwd": os.getcwd(), "argv": list(clang_argv)})
    exec_tool([tools.clang, *argv])
