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

GNU ld and gold run LLVM's LTO through LLVMgold.so (clang's default linker here),
which has no option for a pass pipeline: they get the code generation knobs
alone (`-plugin-opt=`). Other linkers get the user's link unchanged; the units
still carry their pre-link decisions.

With -fmlcc-trials=K the link is made with clang's own options, the default and
the K-th trial set, and the smallest program is kept (`smallest_link`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from mlcc.args import Command

# -flto spellings clang accepts for full LTO (`auto` and `jobserver` are GCC's, taken as full)
_FULL = ("-flto", "-flto=full", "-flto=auto", "-flto=jobserver")
# the ThinLTO cache options of lld and of LLVMgold.so, as the user gives them through
# -Wl, or -Xlinker
CACHE_OPTIONS = ("--thinlto-cache-dir=", "-plugin-opt=cache-dir=", "--plugin-opt=cache-dir=")
# the flags with which clang hands an LTO link a profile (`sample-profile=`, `cs-profile-path=`)
_LINK_PROFILE_FLAGS = ("-fprofile-use", "-fprofile-instr-use", "-fprofile-sample-use")
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


def linker(cmd: Command) -> str:
    """The linker clang would use: "lld", "plugin" (GNU ld or gold, which run LLVM's LTO
    through LLVMgold.so: clang's default here) or "other", by the last -fuse-ld or
    --ld-path."""
    name = ""
    for arg in cmd.args:
        if arg.is_input:
            continue
        if arg.name.startswith("-fuse-ld="):
            name = arg.name.split("=", 1)[1] or arg.value
        elif arg.name.startswith("--ld-path"):
            name = arg.value or arg.name.partition("=")[2]
    base = os.path.basename(name)
    if base.startswith(("lld", "ld.lld")):
        return "lld"
    if base in ("", "ld", "bfd", "gold", "ld.bfd", "ld.gold"):
        return "plugin"
    return "other"


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


def _defaults(opt_level: str, settings, target: str, triple: str, cache) -> tuple[str, tuple]:
    """`model.defaults`, remembered in the decision cache by the model file's identity:
    reading them loads the model (onnxruntime), most of a small link's time."""
    from mlcc import model

    key = None
    if cache is not None:
        from mlcc.cache import make_text_key
        key = make_text_key("link defaults", model.identity_for(opt_level, settings, triple), target)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("default"), str) and isinstance(entry.get("sets"), list):
            return entry["default"], tuple(tuple(s) for s in entry["sets"])
    default, sets = model.defaults(opt_level, settings, target)
    if cache is not None:
        cache.put(key, {"default": default, "sets": [list(s) for s in sets]})
    return default, sets


def link_pipelines(opt_level: str, settings, triple: str, cache=None) -> list[str]:
    """What the link may carry for the target of `triple`, slow passes left out: the
    pipeline single-shot gives a unit of it without reading it (its model's candidate 0,
    else its default); with -fmlcc-trials=K, clang's own, that one and the K-th trial set.
    Only pipelines built on clang's own have a post-link form: [clang] otherwise, and
    for a target mlcc has nothing for."""
    from mlcc import knobs, model, passes
    from mlcc.pipeline import CLANG

    if settings.pipeline:
        chosen = [settings.pipeline]
    else:
        target = model.target_of(triple)
        if target is None or settings.model == "none":
            return [CLANG]
        default, sets = _defaults(opt_level, settings, target.name, triple, cache)
        k = settings.trials
        # the default too: the K-th set, chosen for units, need not hold it, and trials
        # must never link larger than single-shot
        chosen = [CLANG, default, *(sets[min(k, len(sets)) - 1] if sets else ())] if k > 0 else [default]
    kept = [passes.bounded(p, float("inf")) for p in chosen]
    kept = [p for p in dict.fromkeys(kept) if p == CLANG or knobs.names_clang(p)]
    return kept or [CLANG]


def link_options(pipeline_text: str, cmd: Command, lto_kind: str, tools, cache=None) -> list[str]:
    """The arguments that carry `pipeline_text` into an LTO link (none for clang's own).
    lld takes the post-link pipeline and the code generation knobs; LLVMgold.so (GNU ld,
    gold) has no option for a pass pipeline, and takes the code generation knobs alone."""
    from mlcc import knobs
    from mlcc.pipeline import CLANG

    if pipeline_text == CLANG:
        return []
    codegen = [o for o in knobs.codegen_args(pipeline_text, [t for a in cmd.args for t in a.tokens])
               if o != "-mllvm"]
    if linker(cmd) == "plugin":
        return [arg for o in codegen for arg in (_XLINKER, f"-plugin-opt={o}")]
    text = knobs.expand(pipeline_text, post_link_text(tools.opt, lto_kind, cmd.opt_level, cache))
    extra = [_XLINKER, f"--lto-newpm-passes={text}"]
    for option in codegen:
        extra += [_XLINKER, "-mllvm", _XLINKER, option]
    return extra


def link_triple(cmd: Command, clang: str, cache=None) -> str:
    """The target triple clang links for with this command's flags; remembered in the
    decision cache by clang's identity, the flags and the directory (a configuration
    file there could name a target)."""
    from mlcc.process import run_tool

    flags = [t for a in cmd.args if not a.is_input and a.name not in ("-o",) and not a.name.startswith(
        ("-Wl,", "-Xlinker", "-l", "-L", "-fuse-ld", "--ld-path")) for t in a.tokens]
    key = None
    if cache is not None:
        from mlcc.cache import make_text_key
        st = os.stat(clang)
        key = make_text_key("link triple", clang, st.st_size, st.st_mtime_ns, os.getcwd(), flags)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("triple"), str):
            return entry["triple"]
    proc = run_tool([clang, *flags, "-print-effective-triple"], capture_stdout=True, capture_stderr=True)
    triple = proc.stdout.decode(errors="replace").strip()
    if cache is not None:
        cache.put(key, {"triple": triple})
    return triple


def _linker_args(argv: list) -> list[tuple[int, int, str]]:
    """(position in `argv`, part of a -Wl, list or -1, argument) for each argument the user
    hands the linker through -Wl, or -Xlinker."""
    found = []
    for i, arg in enumerate(argv):
        if not isinstance(arg, str):  # a unit's object (mlcc/plan.py's link arguments)
            continue
        if arg.startswith("-Wl,"):
            found += [(i, j, part) for j, part in enumerate(arg[4:].split(","))]
        elif i > 0 and argv[i - 1] == _XLINKER:
            found.append((i, -1, arg))
    return found


def with_private_cache(argv: list[str], extra: list[str]) -> list[str]:
    """`argv` with each ThinLTO cache directory it names replaced by a subdirectory for
    mlcc's `extra` options (`mlcc-<digest>`): lld's cache key does not see -mllvm options."""
    sub = "mlcc-" + hashlib.sha256("\0".join(extra).encode()).hexdigest()[:16]
    out = list(argv)
    for i, j, arg in _linker_args(argv):
        if arg.startswith(CACHE_OPTIONS):
            if j < 0:
                out[i] = os.path.join(arg, sub)
            else:
                parts = out[i][4:].split(",")
                parts[j] = os.path.join(parts[j], sub)
                out[i] = "-Wl," + ",".join(parts)
    return out


def _check_no_other_plugin(argv: list) -> None:
    """Raise MlccError when the user's link loads a linker plugin of its own: loaded after
    LLVMgold.so, it would take mlcc's -plugin-opt options."""
    from mlcc.errors import MlccError

    if any(a in ("-plugin", "--plugin") or a.startswith(("-plugin=", "--plugin="))
           for _, _, a in _linker_args(argv)):
        raise MlccError("the link loads a linker plugin of its own (-plugin), which would take "
                        "mlcc's -plugin-opt options")


def _make_private_caches(argv: list) -> None:
    """Create the private ThinLTO cache directories `argv` names, or raise MlccError: where
    mlcc cannot, lld could not use the user's directory either, and its message must name
    that directory, not mlcc's."""
    from mlcc.errors import MlccError

    for _, _, arg in _linker_args(argv):
        option = next((o for o in CACHE_OPTIONS if arg.startswith(o)), None)
        if option is None or not os.path.basename(arg).startswith("mlcc-"):
            continue
        path = arg[len(option):]
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise MlccError(f"cannot use the ThinLTO cache directory {os.path.dirname(path)} "
                            f"({exc.strerror})") from None


def link_argvs(argv: list, cmd: Command, lto_kind: str, settings, tools,
               cache=None) -> list[tuple[str, list]]:
    """(pipeline, link arguments) for each link mlcc would make of the user's `argv`:
    one, or with -fmlcc-trials=K clang's own and K more (lld at -Os/-Oz only; else the
    user's link alone). A link whose options cannot be made is clang's own, with a warning."""
    from mlcc.errors import MlccError
    from mlcc.pipeline import CLANG

    linker_kind = linker(cmd)
    if linker_kind == "other" or _uses_profile(cmd):
        return [(CLANG, list(argv))]
    try:
        options = _remembered_options(cmd, lto_kind, settings, tools, cache)
        links = [(p, [*with_private_cache(list(argv), extra), *extra] if extra else list(argv))
                 for p, extra in options]
        if linker_kind == "plugin" and any(extra for _, extra in options):
            _check_no_other_plugin(argv)
        for _, args in links:
            _make_private_caches(args)
    except MlccError as exc:  # ToolFailed among them: the link goes on as clang's own
        from mlcc.notices import warn_once
        warn_once(f"{exc}; linking with clang's own link-time pipeline")
        return [(CLANG, list(argv))]
    return links


# What mlcc's link options are made of besides the command and the settings: its code
# (a checkout changes without a new version), its data and the models it ships
_ANSWER_FILES = ("lto.py", "knobs.py", "passes.py", "model.py", "targets.py", "data/targets.toml",
                 "data/clang-knobs.toml", "data/pass-space.toml", "models")


def _identity(path: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_size, st.st_mtime_ns)


def _remembered_options(cmd: Command, lto_kind: str, settings, tools, cache) -> list[tuple[str, list[str]]]:
    """(pipeline, link options) of each link, remembered in the decision cache by everything
    that makes them (the output's name aside: a build's test programs share one entry): a
    warm link reads no model, target table or knob file."""
    from mlcc.errors import MlccError

    key = None
    if cache is not None:
        from mlcc.cache import make_text_key
        here = os.path.dirname(os.path.abspath(__file__))
        models = os.path.join(here, "models")
        try:
            shipped = sorted(os.listdir(models))
        except OSError:
            shipped = []
        try:
            opt = tools.opt
        except MlccError:
            opt = ""
        files = [tools.clang, opt, *(os.path.join(here, f) for f in _ANSWER_FILES),
                 *(os.path.join(models, m) for m in shipped), settings.model]
        key = make_text_key("link options", [_identity(f) for f in files if f], os.getcwd(), lto_kind,
                            [t for a in cmd.args if not a.is_input and a.name not in ("-o", "--output") for t in a.tokens],
                            settings.pipeline, settings.trials, settings.model)
        entry = cache.get(key)
        if entry is not None and isinstance(entry.get("links"), list):
            return [(p, list(extra)) for p, extra in entry["links"]]
    chosen = link_pipelines(cmd.opt_level, settings, link_triple(cmd, tools.clang, cache), cache)
    options = [(p, link_options(p, cmd, lto_kind, tools, cache)) for p in chosen]
    if cache is not None:
        cache.put(key, {"links": [[p, extra] for p, extra in options]})
    return options


def _uses_profile(cmd: Command) -> bool:
    """Whether clang hands the LTO link a profile (`sample-profile=`, `cs-profile-path=`):
    the passes that read it are in the linker's own pipeline, not in mlcc's text of it."""
    return any(a.name.startswith(_LINK_PROFILE_FLAGS) for a in cmd.args if not a.is_input)


def smallest_link(links: list[tuple[str, list]], run_link) -> tuple[str, list]:
    """The link among `links` whose output is smallest (.text+.data+.rodata; ties: the
    earlier, clang's own first). `run_link(args)` links with `args`, raising ToolFailed;
    each trial writes to a private file (a later -o wins in clang), and the winner is
    linked again to the user's output, so that its side files (maps) are the winner's."""
    if len(links) == 1:
        return links[0]
    import shutil
    import tempfile

    from mlcc.errors import ToolFailed
    from mlcc.objective import object_size

    tmp = tempfile.mkdtemp(prefix="mlcc-link-")
    try:
        sizes = []
        for i, (pipeline_text, args) in enumerate(links):
            out = os.path.join(tmp, f"trial-{i}")
            try:
                run_link([*args, "-o", out])
                sizes.append((object_size(out), i))
            except (ToolFailed, OSError, ValueError):
                continue
        return links[min(sizes)[1]] if sizes else links[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_link(plan: LtoLink, clang_argv, settings) -> None:
    """Replace this process by clang's LTO link with mlcc's options (the smallest of the
    trial links with -fmlcc-trials); log what it carries."""
    from mlcc.cache import open_cache
    from mlcc.process import exec_tool, run_tool
    from mlcc.toolchain import for_driver

    tools = for_driver(plan.command.driver)
    links = link_argvs(list(clang_argv), plan.command, plan.kind, settings, tools,
                       open_cache(settings))
    chosen, argv = smallest_link(links, lambda args: run_tool([tools.clang, *args], capture_stdout=True,
                                                              capture_stderr=True))
    if settings.log:
        from mlcc import record
        record.append_log(settings.log, {"path": "lto-link", "lto": plan.kind, "pipeline": chosen,
                                         "driver": plan.command.driver,
                                         "trials": [p for p, _ in links] if len(links) > 1 else [],
                                         "cwd": os.getcwd(), "argv": list(clang_argv)})
    exec_tool([tools.clang, *argv])
