"""Decide what to do with a parsed command: mlcc's own pipeline, or plain clang.

`make_plan` returns either `PlainClang(reason)` — run clang with the original
arguments, and say why — or `OptimizePlan`, which lists for every source the
front-end and code-generation arguments, where its object goes, and how the
final link is made. "Just run clang" is a first-class answer, never an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlcc import lto
from mlcc.args import OPTIMIZABLE_LANGUAGES, Arg, Command, Mode, extension, scan

# Optimization levels where mlcc runs its own pipeline (clang's otherwise).
OPTIMIZED_LEVELS = ("s", "z")

# Keeps the -Os/-Oz function attributes (minsize, optsize) in the bitcode while
# running no LLVM pass: the pass pipeline is mlcc's to choose.
FRONTEND_NO_PASSES = ("-Xclang", "-disable-llvm-passes")

# Warnings about flags the split steps do not use (a -D at code generation, a
# -I at the link) would never appear in clang's one-step compile.
QUIET_UNUSED = "-Wno-unused-command-line-argument"
# Code generation gets the user's flags again; what clang says about flags (an unknown
# warning option, an unsupported GCC optimization flag, one flag overriding another)
# the front end has already said once, as clang's one compile does.
CODEGEN_QUIET = (QUIET_UNUSED, "-Wno-unknown-warning-option", "-Wno-ignored-optimization-argument",
                 "-Wno-overriding-option")

# Flags that write or read side files, add instrumentation passes, or change
# the LLVM pipeline in ways mlcc's split does not reproduce: plain clang.
PLAIN_CLANG_FLAGS = (
    ("-fno-lto", None), ("-emit-llvm", "-emit-llvm"),
    ("-save-temps", "-save-temps"), ("--coverage", "--coverage"),
    ("-fprofile-", "profile flags"), ("-fno-profile-", None), ("-fcs-profile", "profile flags"),
    ("-fcoverage-", "coverage flags"), ("-ftest-coverage", "coverage flags"),
    ("-gsplit-dwarf", "-gsplit-dwarf"), ("-fsanitize=", "-fsanitize"),
    ("-fsanitize-coverage", "-fsanitize-coverage"), ("-fpass-plugin", "-fpass-plugin"),
    ("-Xclang", "-Xclang"), ("-mllvm", "-mllvm"), ("-R", "remark flags"),
    ("-fsave-optimization-record", "-fsave-optimization-record"),
    ("-foptimization-record", "-foptimization-record-file"),
    ("-fembed-bitcode", "-fembed-bitcode"), ("-fthinlto", "-fthinlto-index"),
    ("-fmemory-profile", "-fmemory-profile"), ("-fxray", "-fxray"),
    ("-ftime-report", "-ftime-report"), ("-ftime-trace", "-ftime-trace"),
    ("-finstrument-functions", "-finstrument-functions"), ("-pg", "-pg"),
    ("-fno-inline", "-fno-inline"), ("-finline-", "inlining flags"),
    ("-funroll-loops", "loop-unrolling flags"), ("-fno-unroll-loops", "loop-unrolling flags"),
    ("-fvectorize", "vectorizer flags"), ("-fno-vectorize", "vectorizer flags"),
    ("-fslp-vectorize", "vectorizer flags"), ("-fno-slp-vectorize", "vectorizer flags"),
    ("-fmerge-functions", "-fmerge-functions"), ("-fopenmp", "-fopenmp"),
    ("-fpseudo-probe-for-profiling", "profile flags"), ("-fauto-profile", "profile flags"),
    ("-fsplit-lto-unit", "-fsplit-lto-unit"), ("-fwhole-program-vtables", "-fwhole-program-vtables"),
    ("-fvirtual-function-elimination", "-fvirtual-function-elimination"),
    ("-fstack-usage", "-fstack-usage"), ("-MJ", "-MJ"), ("-serialize-diagnostics", "--serialize-diagnostics"),
    ("--serialize-diagnostics", "--serialize-diagnostics"), ("-fmodules", "-fmodules"),
    ("-fcxx-modules", "-fmodules"), ("-fdebug-pass", "-fdebug-pass"),
    ("-fexperimental-", "experimental flags"), ("-fcuda", "CUDA"), ("-fopenacc", "-fopenacc"),
    ("-fglobal-isel", None), ("-fzero-call-used-regs", None), ("-ffat-lto", "-ffat-lto-objects"),
    ("-fintegrated-objemitter", None), ("-fdriver-only", "-fdriver-only"),
    ("-ccc-", "-ccc- flags"), ("--cuda", "CUDA"), ("-fno-integrated-cc1", None),
    # a machine-read format: the front end and code generation would each print one document
    ("-fdiagnostics-format", "-fdiagnostics-format"),
    # the command line recorded in the object would be the split front end's
    ("-frecord-command-line", "-frecord-command-line"), ("-grecord-command-line", "-grecord-command-line"),
    ("-fproc-stat-report", "-fproc-stat-report"),
    # a configuration file can hold any flag, -S or -flto among them, that mlcc would not see
    ("--config", "--config"),
    ("-mcpu=help", "-mcpu=help"), ("-mtune=help", "-mtune=help"),
    ("-emit-interface-stubs", "-emit-interface-stubs"),
)

NO_SOURCE = "no source to compile"

# Profile-use flags take mlcc's route (a profiled build at -Os/-Oz); every other profile
# flag (instrumenting builds among them) goes to plain clang. A profile that clang's front
# end reads (-fprofile-instr-generate's) is in the bitcode as branch weights; one that a
# pass reads (-fprofile-generate's, sample profiles) makes the unit clang's own pipeline
# (driver.py: `pipeline.reads_profile`).
PROFILE_USE_FLAGS = ("-fprofile-use", "-fprofile-instr-use", "-fprofile-sample-use",
                     "-fsample-profile-use-profi", "-fprofile-sample-accurate", "-fno-profile-sample-accurate")

# Response files are expanded for the split steps' command lines; past this many bytes
# those could exceed the kernel's limit on arguments (ARG_MAX, environment included),
# while clang reads the files itself.
EXPANDED_LIMIT = 512 * 1024

# Flags that only the preprocessor or the dependency scanner reads: dropped
# from the code-generation step, which starts from bitcode.
PREPROCESSOR_FLAGS = frozenset({
    "-D", "-U", "-I", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
    "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-iframework",
    "-iframeworkwithsysroot", "-isystem-after", "-cxx-isystem", "-iwithsysroot",
    "-ivfsoverlay", "-include-pch", "-Wp,", "-Xpreprocessor", "-nostdinc",
    "-nostdinc++", "-nostdlibinc", "-nobuiltininc", "-MD", "-MMD", "-MF", "-MT",
    "-MQ", "-MP", "-MG", "-MV", "-undef", "--include", "--include-directory",
    "--define-macro", "--undefine-macro", "--imacros", "--include-prefix",
    "--include-with-prefix", "--include-with-prefix-before",
    "--include-with-prefix-after", "--include-directory-after", "-C", "-CC", "-P",
    "-trigraphs", "-H",
})

# Flags consumed only by the link: kept out of the per-source front end so it
# does not warn about them (clang's one-step compile gives them to the linker).
LINK_ONLY_FLAGS = frozenset({
    "-l", "-L", "-Wl,", "-Xlinker", "-shared", "-static", "-static-pie", "-pie",
    "-no-pie", "-rdynamic", "-nostdlib", "-nostdlib++", "-nostartfiles",
    "-nodefaultlibs", "-T", "-Ttext", "-Tdata", "-Tbss", "-u", "-e", "-z", "-rpath",
    "-s", "-static-libgcc", "-shared-libgcc", "-static-libstdc++", "--for-linker",
    "--force-link", "--library-directory", "--ld-path", "-r", "-Xoffload-linker",
    "--emit-static-lib", "-nolibc",
})
LINK_ONLY_PREFIXES = ("-fuse-ld=", "-rtlib=", "--rtlib", "-unwindlib=", "--unwindlib",
                      "--ld-path=", "-Wl,", "-l", "-L")

# Flags that say what to produce; the split steps say it themselves.
MODE_FLAGS = frozenset({"-c", "-S", "-o", "--output", "-x", "--language"})


@dataclass(frozen=True)
class PlainClang:
    """Run clang with the user's arguments; `reason` says why (logged)."""

    reason: str


@dataclass(frozen=True)
class UnitPlan:
    """One source's trip through front end, model, opt and code generation."""

    source: str
    language: str
    frontend_args: tuple[str, ...]   # clang arguments before "-o BITCODE SOURCE"
    codegen_args: tuple[str, ...]    # clang arguments before "-o OUT BITCODE"
    output: str | None               # final file for -c/-S ("-" = stdout); None: linked
    emit_assembly: bool
    whole_args: tuple[str, ...] = ()  # clang arguments before "-o OUT SOURCE": clang alone
                                      # (none for a unit that is bitcode only)
    lto: str | None = None           # "full"/"thin": the object is LTO bitcode (mlcc/lto.py)
    profiled: bool = False           # built with a profile (-fprofile-*use*)


@dataclass(frozen=True)
class OptimizePlan:
    """mlcc's own pipeline for each source, then (maybe) a link through clang."""

    command: Command
    units: tuple[UnitPlan, ...]
    link_args: tuple[str | int, ...] | None  # ints stand for the units' objects
    lto: str | None = None                   # "full"/"thin": the link is an LTO link


def _plain_clang_reason(cmd: Command) -> str | None:
    """Why this command must go to plain clang, or None when mlcc can take it."""
    if cmd.mode in (Mode.QUERY, Mode.DRY_RUN, Mode.PREPROCESS, Mode.SYNTAX_ONLY):
        return cmd.mode.value
    if cmd.opt_level not in OPTIMIZED_LEVELS:
        return f"-O{cmd.opt_level}"
    if cmd.unsupported:
        return cmd.unsupported[0]
    if cmd.verbose:
        return "-v"
    if lto.kind(cmd) and cmd.mode is Mode.ASSEMBLY:
        return "-flto with -S"
    if cmd.response_files and sum(len(t) + 1 for a in cmd.args for t in a.tokens) > EXPANDED_LIMIT:
        return "response files too long to expand"
    for arg in cmd.args:
        if arg.is_input:
            continue
        if arg.name == "--":
            return "--"
        if arg.name.startswith(PROFILE_USE_FLAGS):
            continue
        for prefix, reason in PLAIN_CLANG_FLAGS:
            if arg.name.startswith(prefix) and reason:
                return reason
    sources = cmd.sources
    if not sources:
        return NO_SOURCE
    for arg in cmd.inputs:
        if arg.language in (None, "none") and not os.path.exists(arg.value):
            return "linker input not found"  # clang says so before it compiles anything
    for src in sources:
        if src.language not in OPTIMIZABLE_LANGUAGES:
            return f"{src.language} input"
        if src.value == "-":
            return "standard input"
        if not os.path.isfile(src.value):
            return "input not found"
    if cmd.mode in (Mode.OBJECT, Mode.ASSEMBLY) and len(sources) > 1 and cmd.output:
        return "-o with several sources"
    if cmd.mode in (Mode.OBJECT, Mode.ASSEMBLY) and len(cmd.inputs) != len(sources):
        return "linker input in a compile-only command"
    if cmd.output and cmd.output != "-":
        directory = os.path.dirname(cmd.output) or "."
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            return "output directory missing or not writable"
        if os.path.isdir(cmd.output):
            return "output is a directory"
    return None


def _is_link_only(arg: Arg) -> bool:
    return arg.name in LINK_ONLY_FLAGS or arg.name.startswith(LINK_ONLY_PREFIXES)


def default_output(source: str, mode: Mode) -> str:
    """clang's output name without -o: the source's stem (llvm::sys::path::stem, which
    also cuts at a leading dot: `.hidden` -> `.o`) in the current directory."""
    name = os.path.basename(source)
    stem = name[:len(name) - len(extension(name))]
    return stem + (".s" if mode is Mode.ASSEMBLY else ".o")


def _replace_extension(path: str, ext: str) -> str:
    """llvm::sys::path::replace_extension: swap the part after the file name's last dot."""
    head, name = os.path.split(path)
    name = name[:len(name) - len(extension(name))] + ext
    return os.path.join(head, name) if head else name


def dependency_args(cmd: Command, source: str) -> tuple[str, ...]:
    """-MF/-MQ that make the split front end write clang's own dependency file."""
    if not cmd.deps.write_deps:
        return ()
    extra: list[str] = []
    if cmd.deps.dep_file is None:
        base = cmd.output if cmd.output else os.path.basename(source)
        extra += ["-MF", _replace_extension(base, ".d")]
    if not cmd.deps.targets:
        target = cmd.output if cmd.output else _replace_extension(os.path.basename(source), ".o")
        extra += ["-MQ", target]
    return tuple(extra)


def _tokens(args) -> list[str]:
    return [tok for a in args for tok in a.tokens]


def make_plan(cmd: Command) -> PlainClang | OptimizePlan | lto.LtoLink:
    """The plan for one command line."""
    reason = _plain_clang_reason(cmd)
    lto_kind = lto.kind(cmd)
    if reason == NO_SOURCE and cmd.mode is Mode.LINK and lto_kind:
        return lto.LtoLink(cmd, lto_kind)
    if reason:
        return PlainClang(reason)
    linking = cmd.mode is Mode.LINK
    flags = [a for a in cmd.args if not a.is_input and a.name not in MODE_FLAGS]
    frontend_flags = [a for a in flags if not (linking and _is_link_only(a))]
    codegen_flags = [a for a in frontend_flags if a.name not in PREPROCESSOR_FLAGS]
    forced = {}
    current = None
    for a in cmd.args:
        if a.name in ("-x", "--language"):
            current = a.value if a.value != "none" else None
        elif a.is_input:
            forced[id(a)] = current
    units = []
    for src in cmd.sources:
        lang_flag = ("-x", forced[id(src)]) if forced[id(src)] else ()
        if linking:
            output = None
        elif cmd.output:
            output = cmd.output
        else:
            output = default_output(src.value, cmd.mode)
        compile_flags = tuple(_tokens(frontend_flags)) + dependency_args(cmd, src.value)
        units.append(UnitPlan(
            source=src.value,
            language=src.language or "c",
            frontend_args=compile_flags + FRONTEND_NO_PASSES + ("-emit-llvm", "-c") + lang_flag,
            codegen_args=tuple(_tokens(codegen_flags)) + CODEGEN_QUIET,
            whole_args=compile_flags + ("-S" if cmd.mode is Mode.ASSEMBLY else "-c",) + lang_flag,
            output=output,
            emit_assembly=cmd.mode is Mode.ASSEMBLY,
            lto=lto_kind,
            profiled=any(a.name.startswith(PROFILE_USE_FLAGS) and "sample-accurate" not in a.name
                         for a in flags),
        ))
    link_args = None
    if linking:
        link: list[str | int] = []
        unit_index = 0
        for a in cmd.args:
            if a.name in ("-x", "--language") or a.name in PREPROCESSOR_FLAGS:
                continue
            if a.is_input and a.language not in (None, "none"):
                link.append(unit_index)
                unit_index += 1
            else:
                link.extend(a.tokens)
        link.append(QUIET_UNUSED)
        link_args = tuple(link)
    return OptimizePlan(command=cmd, units=tuple(units), link_args=link_args, lto=lto_kind)


# A source with fewer bytes of code than `tiny_source` (lines that are not preprocessor
# directives, so that a configure probe's #defines do not count) is taken to be a small
# unit without running the front end to find out: clang compiles it alone, as the small-
# unit rule would, in one process instead of two. The code of the project's own headers
# it includes counts too (found as the preprocessor finds them: beside the including
# file for "x.h", then -iquote, -I and -include's; system headers are not read): a
# header-only library's implementation file, `#define LIB_IMPLEMENTATION` and one
# `#include "lib.h"`, is all code. On 1,445 training units whose sources were at hand,
# 255 have under 1,000 bytes of code of their own and 6 of those are not small units
# (tables and code from included files; docs/DESIGN.md).
TINY_SOURCE_READ = 256 * 1024  # a longer file is not read: it is not tiny


def tiny_sources(plan: OptimizePlan, settings) -> bool:
    """True when every unit of `plan` is a tiny source and the settings let a tiny source
    go to clang whole: single-shot or trials, the small-unit rule on, nothing searched,
    collected or forced. Trials would build a configure probe four times over to keep
    clang's object or one a few bytes smaller (docs/DESIGN.md, "Why trials stay over 2.5×")."""
    if (not settings.tiny_source or not settings.small_unit or settings.search
            or settings.pipeline or settings.collect):
        return False
    return all(code_bytes(u.source, settings.tiny_source, u.frontend_args) < settings.tiny_source
               for u in plan.units)


def code_bytes(path: str, limit: int, args=()) -> int:
    """Bytes of code in `path` and the project headers it includes (`args` are the
    compile's flags: -iquote, -I, -include), counted up to `limit`: lines outside
    preprocessor directives, without the whitespace at their ends. `limit` for a file
    that cannot be read or is longer than TINY_SOURCE_READ."""
    paths = None  # (-iquote dirs, -I dirs, -include files), scanned once a file is read whole
    pending = [path]
    seen: set[str] = set()
    count = 0
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        lines = _read_lines(current)
        if lines is None:
            return limit
        directive = False
        headers = []
        for line in lines:
            text = line.strip()
            if directive or text.startswith(b"#"):
                directive = text.endswith(b"\\")
                header = _include_of(text)
                if header is not None:
                    headers.append(header)
                continue
            count += len(text)
            if count >= limit:
                return limit
        # looked for only once the file is read whole under the limit: most sources are
        # not tiny, and they cost no flag scan and no file system lookups
        found = [(h, os.path.dirname(current) or ".") for h in headers]
        if paths is None:
            paths = _include_paths(args)
            # -include FILE is read as `#include "FILE"` from the working directory
            found += [((True, name), ".") for name in paths[2]]
        pending.extend(f for f in (_find_header(h, here, *paths[:2]) for h, here in found) if f is not None)
    return count


def _read_lines(path: str) -> list[bytes] | None:
    try:
        if os.path.getsize(path) > TINY_SOURCE_READ:
            return None
        with open(path, "rb") as f:
            return f.read().split(b"\n")
    except OSError:
        return None


def _include_of(directive: bytes) -> tuple[bool, str] | None:
    """(quoted, name) of an `#include "name"` or `#include <name>` line, else None."""
    rest = directive[1:].lstrip()
    if not rest.startswith(b"include"):
        return None
    rest = rest[len(b"include"):].lstrip()
    if rest[:1] == b'"' and b'"' in rest[1:]:
        return True, os.fsdecode(rest[1:rest.index(b'"', 1)])
    if rest[:1] == b"<" and b">" in rest:
        return False, os.fsdecode(rest[1:rest.index(b">")])
    return None


def _find_header(header: tuple[bool, str], here: str, quote, angled) -> str | None:
    """Where the preprocessor finds a project header: "x.h" in `here` (the including
    file's directory), then in -iquote directories; both forms in -I directories. None
    for anything else (system headers are not counted)."""
    quoted, name = header
    dirs = [here, *quote, *angled] if quoted else list(angled)
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _include_paths(tokens) -> tuple[list[str], list[str], list[str]]:
    """The -iquote and -I directories and the -include files among a compile's flags,
    as `args.scan` reads them."""
    found: dict[str, list[str]] = {"-iquote": [], "-I": [], "-include": []}
    for a in scan(list(tokens), "c")[0]:
        if a.name in found and a.value and a.value != "-":  # -I- splits nothing here
            found[a.name].append(a.value)
    return found["-iquote"], found["-I"], found["-include"]
