"""Parse a clang command line once into an immutable description.

One table-driven scanner (in the manner of scan-build-py's compilation.py and
ccache's option table) turns argv into `Command`: the mode, the inputs with
their language, the output, the dependency-file options, the optimization
level, and the original arguments. Nothing here runs a tool or decides what
to do with the command; that is `plan.py`'s job.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass


class Mode(enum.Enum):
    """What clang would do last with the inputs (its "final phase")."""

    QUERY = "query"              # --version, -dumpmachine, -print-*, a lone -v
    DRY_RUN = "dry-run"          # -###
    PREPROCESS = "preprocess"    # -E, -M, -MM
    SYNTAX_ONLY = "syntax-only"  # -fsyntax-only and other front-end-only actions
    ASSEMBLY = "assembly"        # -S
    OBJECT = "object"            # -c
    LINK = "link"                # no mode flag


# Flags whose value is the next argument (Separate in clang's Options.td),
# with how many arguments follow. Flags also listed in JOINED_OR_SEPARATE take
# one argument here and may instead carry their value glued on (`-oX`). Every
# other driver flag of clang 19 that takes separate arguments comes from
# data/clang-separate-flags.txt (what clang-19 itself reports; `_clang_separate`).
_KNOWN_SEPARATE: dict[str, int] = {
    "-o": 1, "-x": 1, "-I": 1, "-D": 1, "-U": 1, "-L": 1, "-l": 1, "-F": 1,
    "-MF": 1, "-MT": 1, "-MQ": 1, "-MJ": 1, "-A": 1, "-B": 1, "-G": 1,
    "-include": 1, "-imacros": 1, "-isystem": 1, "-iquote": 1, "-idirafter": 1,
    "-iprefix": 1, "-iwithprefix": 1, "-iwithprefixbefore": 1, "-isysroot": 1,
    "-iframework": 1, "-iframeworkwithsysroot": 1, "-imultilib": 1,
    "-isystem-after": 1, "-ivfsoverlay": 1, "-cxx-isystem": 1, "-iwithsysroot": 1,
    "-include-pch": 1, "-T": 1, "-Ttext": 1, "-Tdata": 1, "-Tbss": 1,
    "-u": 1, "-e": 1, "-z": 1, "-rpath": 1, "-target": 1, "-arch": 1,
    "-Xclang": 1, "-Xlinker": 1, "-Xassembler": 1, "-Xpreprocessor": 1,
    "-Xanalyzer": 1, "-Xopenmp-target": 1, "-Xcuda-fatbinary": 1,
    "-Xcuda-ptxas": 1, "-Xoffload-linker": 1, "-Xarch_host": 1,
    "-Xarch_device": 1, "-mllvm": 1, "-aux-triple": 1, "-resource-dir": 1,
    "-serialize-diagnostics": 1, "-dependency-file": 1, "-dependency-dot": 1,
    "-working-directory": 1, "-undefined": 1, "-install_name": 1,
    "-framework": 1, "-weak_framework": 1, "-exported_symbols_list": 1,
    "-filelist": 1, "-bundle_loader": 1, "-current_version": 1,
    "-compatibility_version": 1, "-dylib_file": 1, "-init": 1,
    "-allowable_client": 1, "-client_name": 1, "-seg1addr": 1,
    "-sectcreate": 3, "-sectalign": 3, "-segaddr": 2, "-segprot": 3,
    "-Xflang": 1, "-ccc-install-dir": 1, "-ccc-gcc-name": 1,
    "--sysroot": 1, "--target": 1, "--config": 1, "--param": 1,
    "--output": 1, "--language": 1, "--include": 1, "--include-directory": 1,
    "--define-macro": 1, "--undefine-macro": 1, "--library-directory": 1,
    "--prefix": 1, "--for-linker": 1, "--force-link": 1, "--imacros": 1,
    "--include-prefix": 1, "--include-with-prefix": 1,
    "--include-with-prefix-before": 1, "--include-with-prefix-after": 1,
    "--include-directory-after": 1, "--assert": 1,
    "--analyzer-output": 1, "--gcc-toolchain": 1, "--rtlib": 1, "--stdlib": 1,
    "--serialize-diagnostics": 1, "--mhwdiv": 1, "--ld-path": 1,
    "-dumpdir": 1, "-mthread-model": 1, "-stdlib++-isystem": 1, "-vfsoverlay": 1,
    "-meabi": 1, "-mmlir": 1, "-gen-cdb-fragment-path": 1, "-module-dependency-dir": 1,
    "-fmodules-user-build-path": 1, "-dsym-dir": 1, "-b": 1,
}


def _clang_separate() -> dict[str, int]:
    """clang 19's driver flags with separate arguments, as listed by
    scripts/clang_separate_flags.py: `-ftrapv-handler NAME` must not take mlcc's
    own next argument as its value."""
    path = os.path.join(os.path.dirname(__file__), "data", "clang-separate-flags.txt")
    with open(path, encoding="utf-8") as f:
        rows = (line.split() for line in f if line.strip() and not line.startswith("#"))
        return {flag: int(count) for flag, count in rows}


SEPARATE: dict[str, int] = {**_clang_separate(), **_KNOWN_SEPARATE}

# Flags that also accept their value glued on (`-DX`, `-MFfile`, `-xc`),
# longest first so that `-MF` wins over `-M...` and `-isystem` over `-i...`.
JOINED_OR_SEPARATE: tuple[str, ...] = tuple(sorted((
    "-o", "-x", "-I", "-D", "-U", "-L", "-l", "-F", "-MF", "-MT", "-MQ", "-MJ",
    "-A", "-B", "-G", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
    "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-iframework",
    "-iframeworkwithsysroot", "-imultilib", "-ivfsoverlay", "-cxx-isystem",
    "-iwithsysroot", "-T", "-Ttext", "-Tdata", "-Tbss",
), key=len, reverse=True))

# Zero-argument flags that a JOINED_OR_SEPARATE prefix would otherwise swallow.
EXACT_FLAGS: frozenset[str] = frozenset({
    "-M", "-MM", "-MD", "-MMD", "-MP", "-MG", "-MV", "-undef", "-index-header-map",
})

SOURCE_LANGUAGES = {
    ".c": "c", ".i": "cpp-output", ".cc": "c++", ".cp": "c++", ".cxx": "c++",
    ".cpp": "c++", ".CPP": "c++", ".c++": "c++", ".C": "c++", ".ii": "c++-cpp-output",
    ".m": "objective-c", ".mm": "objective-c++", ".M": "objective-c++",
    ".mi": "objective-c-cpp-output", ".mii": "objective-c++-cpp-output",
    ".s": "assembler", ".S": "assembler-with-cpp", ".sx": "assembler-with-cpp",
    ".ll": "ir", ".bc": "ir", ".h": "c-header", ".hh": "c++-header",
    ".hpp": "c++-header", ".hxx": "c++-header", ".H": "c++-header",
    ".cu": "cuda", ".hip": "hip", ".cl": "cl", ".cppm": "c++-module",
    ".ixx": "c++-module", ".f": "fortran", ".f90": "fortran", ".F90": "fortran",
}

# Languages whose translation units mlcc compiles through its own pipeline.
OPTIMIZABLE_LANGUAGES = frozenset({"c", "c++", "cpp-output", "c++-cpp-output",
                                   "c-cpp-output"})

# clang's long spellings of short flags (Options.td aliases): read as the short flag, handed
# to clang as spelled. `--output` and `--language` take values and are read as themselves.
ALIASES = {
    "--compile": "-c", "--assemble": "-S", "--preprocess": "-E", "--dependencies": "-M",
    "--user-dependencies": "-MM", "--write-dependencies": "-MD",
    "--write-user-dependencies": "-MMD", "--verbose": "-v", "--print-missing-file-dependencies": "-MG",
    "--trigraphs": "-trigraphs", "--no-standard-includes": "-nostdinc",
    "--no-line-commands": "-P", "--comments": "-C", "--comments-in-macros": "-CC",
    "--trace-includes": "-H",
}

QUERY_PREFIXES = ("-print-", "--print-", "--help", "--version", "-help", "--autocomplete")
QUERY_FLAGS = frozenset({"-V", "-qversion", "-version", "--target-help", "-dumpversion",
                         "-dumpmachine", "-dumpspecs", "-dumpfullversion"})

# Languages clang++ gives to suffixes that clang reads as C.
_CXX_MODE_LANGUAGES = {"c": "c++", "cpp-output": "c++-cpp-output", "c-header": "c++-header"}
_OBJC_LANGUAGES = {"c": "objective-c", "c++": "objective-c++"}


@dataclass(frozen=True)
class Arg:
    """One option or input as it appeared: its canonical name, value(s) and raw tokens."""

    name: str                    # "-o", "-Wl,", "-O", "<input>", "-c", ...
    values: tuple[str, ...]      # ("out.o",) for -o; () for plain flags
    tokens: tuple[str, ...]      # exactly what was on the command line
    language: str | None = None  # for inputs: the language clang will use

    @property
    def is_input(self) -> bool:
        return self.name == "<input>"

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


@dataclass(frozen=True)
class DependencyOptions:
    """The -M family as given; `plan` turns it into concrete front-end flags."""

    write_deps: bool = False       # -MD or -MMD: dependency file beside the compile
    system_headers: bool = True    # False for -MMD / -MM
    dep_file: str | None = None    # -MF
    targets: tuple[Arg, ...] = ()  # -MT/-MQ in order


@dataclass(frozen=True)
class Command:
    """An immutable description of one clang command line."""

    driver: str                        # "c" (mlcc) or "c++" (mlcc++)
    argv: tuple[str, ...]              # the user's arguments, as given (no argv[0])
    args: tuple[Arg, ...]              # after response-file expansion, in order
    mode: Mode
    output: str | None
    opt_level: str                     # "0" "1" "2" "3" "s" "z" "g" "fast"
    deps: DependencyOptions
    verbose: bool
    unsupported: tuple[str, ...] = ()  # reasons the scanner could not fully understand
    response_files: bool = False

    @property
    def inputs(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if a.is_input)

    @property
    def sources(self) -> tuple[Arg, ...]:
        """Inputs that clang would compile (not objects, archives or libraries)."""
        return tuple(a for a in self.inputs if a.language not in (None, "none"))

    def has(self, *names: str) -> bool:
        return any(a.name in names for a in self.args)

    def flags_starting(self, prefix: str) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if not a.is_input and a.name.startswith(prefix))


def split_gnu(text: str) -> list[str]:
    """Tokenize a response file as clang does (llvm::cl::TokenizeGNUCommandLine).

    Whitespace separates; quotes group; a backslash makes the next character
    literal everywhere, also inside quotes.
    """
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    quote = None
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i + 1])
            in_token = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "'\"":
            quote = ch
            in_token = True
        elif ch.isspace():
            if in_token:
                tokens.append("".join(current))
                current, in_token = [], False
        else:
            current.append(ch)
            in_token = True
        i += 1
    if in_token:
        tokens.append("".join(current))
    return tokens


def expand_response_files(args, _depth=0) -> list[str]:
    """Expand `@file` arguments (GNU quoting, nested); a missing file stays literal."""
    out: list[str] = []
    for arg in args:
        if arg.startswith("@") and len(arg) > 1 and _depth < 20:
            try:
                with open(arg[1:], encoding="utf-8", errors="surrogateescape") as f:
                    text = f.read()
            except OSError:
                out.append(arg)
                continue
            out.extend(expand_response_files(split_gnu(text), _depth + 1))
        else:
            out.append(arg)
    return out


def extension(path: str) -> str:
    """llvm::sys::path::extension: from the file name's last dot, a leading one too
    (`..c` is C to clang; os.path.splitext skips leading dots)."""
    name = os.path.basename(path)
    dot = name.rfind(".")
    return "" if dot < 0 or name in (".", "..") else name[dot:]


def language_of(path: str, forced: str | None, driver: str) -> str | None:
    """The language clang gives an input: `-x` if set, else its suffix; None for linker inputs."""
    if forced and forced != "none":
        return forced
    lang = "c" if path == "-" else SOURCE_LANGUAGES.get(extension(path))
    if driver == "c++":
        return _CXX_MODE_LANGUAGES.get(lang, lang)  # clang++ compiles .c files as C++
    return lang


def _split_joined(token: str):
    """(name, value) for a JOINED_OR_SEPARATE flag with its value glued on, else None."""
    for prefix in JOINED_OR_SEPARATE:
        if token.startswith(prefix) and len(token) > len(prefix):
            return prefix, token[len(prefix):]
    return None


def scan(tokens: list[str], driver: str) -> tuple[list[Arg], list[str]]:
    """Split expanded tokens into Args; also return reasons the scan is unsure."""
    args: list[Arg] = []
    unsure: list[str] = []
    forced_language: str | None = None
    i = 0
    only_inputs = False
    while i < len(tokens):
        tok = tokens[i]
        if only_inputs or tok == "-" or not tok.startswith("-"):
            args.append(Arg("<input>", (tok,), (tok,), language_of(tok, forced_language, driver)))
            i += 1
            continue
        if tok == "--":
            args.append(Arg("--", (), (tok,)))
            only_inputs = True
            i += 1
            continue
        if "=" in tok and tok.split("=", 1)[0] in SEPARATE and tok.startswith("--"):
            name, value = tok.split("=", 1)
            args.append(Arg(name, (value,), (tok,)))
            if name == "--language":
                forced_language = value if value != "none" else None
            i += 1
            continue
        if tok in ALIASES:
            arg = Arg(ALIASES[tok], (), (tok,))
            i += 1
        elif tok in SEPARATE or tok.startswith("-Xarch_"):
            count = SEPARATE.get(tok, 1)
            values = tuple(tokens[i + 1:i + 1 + count])
            if len(values) < count:
                unsure.append(f"{tok} without its argument")
            arg = Arg(tok, values, tuple(tokens[i:i + 1 + count]))
            i += 1 + count
        elif tok in EXACT_FLAGS:
            arg = Arg(tok, (), (tok,))
            i += 1
        elif (joined := _split_joined(tok)) is not None:
            arg = Arg(joined[0], (joined[1],), (tok,))
            i += 1
        else:
            name, value = _name_of(tok)
            arg = Arg(name, (value,) if value is not None else (), (tok,))
            i += 1
        if arg.name in ("-x", "--language"):
            forced_language = arg.value if arg.value != "none" else None
        if arg.name == "-Wp," and arg.value.startswith(("-MD,", "-MMD,")) and arg.value.count(",") > 1:
            unsure.append("-Wp, with more than a dependency file")  # -Wp,-MD,x.d,-MT,y
        args.append(arg)
    if any(a.name in ("-ObjC", "-ObjC++") for a in args):
        args = [Arg(a.name, a.values, a.tokens, _OBJC_LANGUAGES.get(a.language, a.language))
                if a.is_input else a for a in args]
    return args, unsure


def _name_of(tok: str) -> tuple[str, str | None]:
    """Canonical name of a flag without a table entry: `-Wl,a,b` -> ("-Wl,", "a,b")."""
    for prefix in ("-Wl,", "-Wa,", "-Wp,"):
        if tok.startswith(prefix):
            return prefix, tok[len(prefix):]
    if tok.startswith("-O") and (tok[2:] in ("", "s", "z", "g", "fast") or tok[2:].isdigit()):
        return "-O", tok[2:]
    return tok, None


def _opt_level(args: list[Arg]) -> str:
    level = "0"
    for a in args:
        if a.name == "-O":
            v = a.value
            level = {"": "1", "4": "3"}.get(v, v)
    return level


def _mode(args: list[Arg]) -> Mode:
    names = {a.name for a in args}
    inputs = [a for a in args if a.is_input]
    if "-###" in names:
        return Mode.DRY_RUN
    if any(n.startswith(QUERY_PREFIXES) or n in QUERY_FLAGS for n in names):
        return Mode.QUERY
    if not inputs and "-v" in names:
        return Mode.QUERY
    if names & {"-E", "-M", "-MM"}:
        return Mode.PREPROCESS
    if names & {"-fsyntax-only", "--analyze", "-emit-ast", "--precompile",
                "-module-file-info", "-verify-pch", "-rewrite-objc", "-rewrite-legacy-objc"}:
        return Mode.SYNTAX_ONLY
    if "-S" in names:
        return Mode.ASSEMBLY
    if "-c" in names:
        return Mode.OBJECT
    return Mode.LINK


def _deps(args: list[Arg]) -> DependencyOptions:
    names = {a.name for a in args}
    write = bool(names & {"-MD", "-MMD"})
    dep_file = None
    for a in args:
        if a.name == "-MF":
            dep_file = a.value
        elif a.name == "-Wp," and a.value.startswith(("-MD,", "-MMD,")):
            # clang's driver rewrites -Wp,-MD,FILE into -MD -MF FILE
            write = True
            dep_file = a.value.split(",", 1)[1]
            if a.value.startswith("-MMD,"):
                names = names | {"-MMD"}
    return DependencyOptions(
        write_deps=write,
        system_headers="-MMD" not in names and "-MM" not in names,
        dep_file=dep_file,
        targets=tuple(a for a in args if a.name in ("-MT", "-MQ")),
    )


def parse(argv, driver: str = "c") -> Command:
    """Describe a clang command line (without argv[0]) as a `Command`."""
    argv = tuple(argv)
    tokens = expand_response_files(argv)
    args, unsure = scan(tokens, driver)
    output = None
    for a in args:
        if a.name in ("-o", "--output") and a.values:
            output = a.value
    return Command(
        driver=driver,
        argv=argv,
        args=tuple(args),
        mode=_mode(args),
        output=output,
        opt_level=_opt_level(args),
        deps=_deps(args),
        verbose=any(a.name == "-v" for a in args),
        unsupported=tuple(unsure),
        response_files=tuple(tokens) != argv,
    )
