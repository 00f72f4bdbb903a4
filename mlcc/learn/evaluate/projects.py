"""Build real open-source projects with their own build systems and run their test suites.

Sources are the upstream release tarballs (``*.orig.tar.*``) of Debian source
packages, fetched with ``apt-get source --download-only`` into a cache outside
the repository (``$MLCC_TEST_CACHE``, default ``~/.cache/mlcc/test-sources``)
and extracted afresh for every build.

Each recipe takes a C compiler command, a C++ compiler command and an
optimization flag (``-Os`` or ``-Oz``), builds the project in a work directory
and runs the project's own tests. :func:`build_project` returns a
:class:`BuildResult` that can be stored as JSON.

Used by ``mlcc-tool bench`` (the builds only), by ``tests/test_projects.py``
(with ``mlcc``/``mlcc++``) and by ``scripts/project_build.py`` (any compiler,
e.g. ``clang-19`` for comparison).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from mlcc.learn.corpus.sources import source_versions
from mlcc.learn.paths import LEARN_DATA
from mlcc.record import file_digest

LUA_CHECK_SCRIPT = LEARN_DATA / "lua_check.lua"

LOG_TAIL_LINES = 80
COMMAND_TIMEOUT_SECONDS = 1800

_INHERITED_BUILD_VARIABLES = (
    "CC", "CXX", "CPP", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LIBS",
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "CMAKE_GENERATOR",
    "CMAKE_BUILD_TYPE", "CMAKE_BUILD_PARALLEL_LEVEL", "CTEST_PARALLEL_LEVEL",
)


class FetchError(RuntimeError):
    """The sources of a project could not be downloaded or verified."""


class CommandError(RuntimeError):
    """A build or test command failed; the message ends with the tail of the build log."""


def cache_dir() -> Path:
    """Return the download cache directory, creating it if needed."""
    default = Path.home() / ".cache" / "mlcc" / "test-sources"
    path = Path(os.environ.get("MLCC_TEST_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_compiler(command: str) -> str | None:
    """Return the absolute path of a compiler command, or None.

    The scripts installed beside the running Python come first, then PATH: a
    bare ``mlcc`` is then this environment's mlcc, not a wrapper such as a
    pyenv shim (which costs an extra process per compile).
    """
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return shutil.which(command, path=search)


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file (empty if it does not exist)."""
    if not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------- sources


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (so parallel test workers fetch once)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dsc_sha256(dsc: Path) -> dict[str, str]:
    """Map file name to SHA-256 from the ``Checksums-Sha256`` field of a ``.dsc`` file."""
    sums: dict[str, str] = {}
    in_field = False
    for line in dsc.read_text(errors="replace").splitlines():
        if line.startswith("Checksums-Sha256:"):
            in_field = True
        elif in_field and line.startswith(" "):
            digest, _size, name = line.split()
            sums[name] = digest
        else:
            in_field = False
    return sums


def _cached_orig_tarball(cache: Path, package: str) -> Path | None:
    """Return the cached upstream tarball of ``package`` whose checksum matches its ``.dsc``."""
    dscs = sorted(cache.glob(f"{package}_*.dsc"), key=lambda p: p.stat().st_mtime, reverse=True)
    for dsc in dscs:
        for name, digest in _dsc_sha256(dsc).items():
            orig = cache / name
            if ".orig.tar." in name and orig.is_file() and file_digest(str(orig)) == digest:
                return orig
    return None


def fetch_source(package: str) -> Path:
    """Return the upstream ``*.orig.tar.*`` of a Debian source package, downloading it if needed.

    Raises :class:`FetchError` with apt's output when the download fails
    (no network, or no ``deb-src`` entries in the apt sources).
    """
    cache = cache_dir()
    with _locked(cache / f".{package}.lock"):
        orig = _cached_orig_tarball(cache, package)
        if orig is not None:
            return orig
        if shutil.which("apt-get") is None:
            raise FetchError(f"cannot fetch {package}: apt-get is not available on this machine")
        # The newest revision first; a mirror may list a security update it does not serve,
        # so then each version apt knows of (`make corpus` does the same).
        for target in [package, *(f"{package}={v}" for v in source_versions(package))]:
            command = ["apt-get", "source", "--download-only", target]
            try:
                proc = subprocess.run(command, cwd=cache, capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL, timeout=600)
            except subprocess.TimeoutExpired:
                raise FetchError(f"`{' '.join(command)}` (in {cache}) did not finish in 600 s "
                                 "(is the Debian mirror reachable?)") from None
            output = (proc.stdout + proc.stderr).strip()
            orig = _cached_orig_tarball(cache, package)
            if proc.returncode == 0 and orig is not None:
                break
        if proc.returncode != 0 or orig is None:
            hint = ""
            if "deb-src" in output:
                hint = ("\nhint: enable source packages (scripts/setup.sh does this: "
                        "'Types: deb deb-src' in /etc/apt/sources.list.d/debian.sources, "
                        "then apt-get update)")
            elif "Failed to fetch" in output or "Temporary failure" in output:
                hint = "\nhint: the Debian mirror is unreachable (network down?)"
            raise FetchError(
                f"could not download the sources of {package!r} into {cache}: "
                f"`{' '.join(command)}` exited {proc.returncode}\n{output[-4000:]}{hint}"
            )
        return orig


def extract_source(tarball: Path, dest: Path) -> Path:
    """Extract a release tarball so that its single top-level directory becomes ``dest``."""
    staging = dest.with_name(dest.name + ".extract")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="data")
    entries = list(staging.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    if dest.exists():
        shutil.rmtree(dest)
    top.rename(dest)
    if staging.exists():
        shutil.rmtree(staging)
    return dest


# --------------------------------------------------------------------------- running commands


def run_logged(args: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str],
               timeout: float = COMMAND_TIMEOUT_SECONDS) -> None:
    """Run a command with its output appended to ``log``; raise :class:`CommandError` on failure."""
    rendered = " ".join(_shell_quote(a) for a in args)
    with open(log, "a") as handle:
        handle.write(f"\n$ cd {cwd} && {rendered}\n")
        handle.flush()
        try:
            proc = subprocess.Popen(list(args), cwd=cwd, env=dict(env), stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            handle.write(f"cannot run {args[0]}: {exc}\n")
            returncode: int | None = 127
        else:
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                returncode = None
    if returncode != 0:
        status = f"timed out after {timeout:.0f} s" if returncode is None else f"exited {returncode}"
        raise CommandError(
            f"`{rendered}` (in {cwd}) {status}\n"
            f"--- last {LOG_TAIL_LINES} lines of {log} ---\n{log_tail(log)}"
        )


def _shell_quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


# --------------------------------------------------------------------------- recipes


@dataclasses.dataclass
class Build:
    """Everything a recipe needs: directories, compilers, flags and a logged ``run``."""

    workdir: Path
    cc: str
    cxx: str
    opt: str
    jobs: int
    log: Path
    env: dict[str, str]

    @property
    def src(self) -> Path:
        """The extracted upstream source tree."""
        return self.workdir / "src"

    @property
    def builddir(self) -> Path:
        """The out-of-tree build directory (used by CMake recipes)."""
        return self.workdir / "build"

    def run(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        """Run a command (in the source tree by default), logging its output."""
        run_logged(args, cwd=cwd or self.src, log=self.log, env={**self.env, **(env or {})})

    def make(self, *args: str, cwd: Path | None = None) -> None:
        """Run ``make -jN`` with extra arguments."""
        self.run("make", f"-j{self.jobs}", *args, cwd=cwd)

    def cmake_build(self, *options: str) -> None:
        """Configure with CMake (no build type; the optimization flag in CMAKE_<LANG>_FLAGS) and build."""
        self.run(
            "cmake", "-S", str(self.src), "-B", str(self.builddir), "-G", "Unix Makefiles",
            "-DCMAKE_BUILD_TYPE=", f"-DCMAKE_C_FLAGS={self.opt}", f"-DCMAKE_CXX_FLAGS={self.opt}",
            "-DCMAKE_VERBOSE_MAKEFILE=ON", *options,
        )
        self.run("cmake", "--build", str(self.builddir), f"-j{self.jobs}")

    def ctest(self) -> None:
        """Run the CMake project's test suite."""
        self.run("ctest", "--output-on-failure", f"-j{self.jobs}", cwd=self.builddir)

    def ctest_serial(self) -> None:
        """Run the CMake project's test suite one test at a time, for suites whose tests share files."""
        self.run("ctest", "--output-on-failure", "-j1", cwd=self.builddir)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build and test one project.

    ``artifact`` is a glob, relative to the work directory, for the main built
    binary or library (the first match that is not a symlink is recorded).
    """

    name: str
    package: str
    language: str
    build: Callable[[Build], None]
    test: Callable[[Build], None]
    artifact: str


def _zlib_configure_build(b: Build) -> None:
    """zlib: ``./configure`` with CFLAGS set to the optimization flag, then ``make``."""
    b.run("./configure", env={"CFLAGS": b.opt})
    b.make()


def _zlib_configure_test(b: Build) -> None:
    """zlib: ``make test`` runs example and minigzip, static and shared."""
    b.run("make", "test")


def _zlib_cmake_build(b: Build) -> None:
    """zlib: CMake build.

    Debian's repack drops win32/, but CMakeLists.txt lists win32/zlib1.rc (a
    Windows resource that Linux builds ignore), so an empty one stands in.
    """
    placeholder = b.src / "win32" / "zlib1.rc"
    placeholder.parent.mkdir(exist_ok=True)
    placeholder.touch()
    b.cmake_build()


def _bzip2_make_args(b: Build) -> list[str]:
    """bzip2: its Makefile's CFLAGS with -O2 replaced by the optimization flag."""
    return [f"CC={b.cc}", f"CFLAGS=-Wall -Winline {b.opt} -g -D_FILE_OFFSET_BITS=64"]


def _bzip2_build(b: Build) -> None:
    """bzip2: ``make all`` (libbz2.a, bzip2, bzip2recover)."""
    b.make("all", *_bzip2_make_args(b))


def _bzip2_test(b: Build) -> None:
    """bzip2: ``make test`` compresses and decompresses its sample files and compares them."""
    b.run("make", "test", *_bzip2_make_args(b))


def _lua_build(b: Build) -> None:
    """Lua: ``make linux`` (no readline) with its CFLAGS, -O2 replaced by the optimization flag,
    which its link gets too."""
    b.make("linux", f"CC={b.cc} -std=gnu99",
           f"CFLAGS={b.opt} -Wall -Wextra -DLUA_COMPAT_5_3 $(SYSCFLAGS) $(MYCFLAGS)",
           # its link line has no CFLAGS: the flags reach the link too (-flto needs them
           # there), and llvm-ar indexes an archive of LLVM bitcode, which GNU ar cannot
           f"MYLDFLAGS={b.opt}", "AR=llvm-ar-19 rcu", "RANLIB=llvm-ranlib-19")


def _lua_test(b: Build) -> None:
    """Lua: ``lua -v`` (its ``make test``), then ``mlcc/learn/data/lua_check.lua``."""
    lua = str(b.src / "src" / "lua")
    b.run(lua, "-v")
    b.run(lua, str(LUA_CHECK_SCRIPT), cwd=b.workdir)


def _cjson_build(b: Build) -> None:
    """cJSON: CMake build with its unit tests and cJSON_Utils (and their tests)."""
    b.cmake_build("-DENABLE_CJSON_TEST=ON", "-DENABLE_CJSON_UTILS=ON")


def _libyaml_build(b: Build) -> None:
    """libyaml: ``./bootstrap`` (autoreconf) when needed, ``./configure`` with CFLAGS, ``make``."""
    if not (b.src / "configure").exists():
        b.run("./bootstrap")
    b.run("./configure", env={"CFLAGS": b.opt})
    b.make("V=1")


def _libyaml_test(b: Build) -> None:
    """libyaml: ``make check``."""
    b.make("V=1", "check")


def _tinyxml2_build(b: Build) -> None:
    """tinyxml2: CMake build of the shared library and xmltest."""
    b.cmake_build("-Dtinyxml2_BUILD_TESTING=ON", "-DBUILD_SHARED_LIBS=ON")


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("zlib-configure", "zlib", "c", _zlib_configure_build, _zlib_configure_test,
               artifact="src/libz.so.*.*"),
        # zlib's example and example64 both write foo.gz in the build directory: run them in turn.
        Recipe("zlib-cmake", "zlib", "c", _zlib_cmake_build, Build.ctest_serial,
               artifact="build/libz.so.*.*"),
        Recipe("bzip2", "bzip2", "c", _bzip2_build, _bzip2_test, artifact="src/bzip2"),
        Recipe("lua", "lua5.4", "c", _lua_build, _lua_test, artifact="src/src/lua"),
        Recipe("cjson", "cjson", "c", _cjson_build, Build.ctest,
               artifact="build/libcjson.so.*.*"),
        Recipe("libyaml", "libyaml", "c", _libyaml_build, _libyaml_test,
               artifact="src/src/.libs/libyaml-*.so.*.*"),
        Recipe("tinyxml2", "tinyxml2", "c++", _tinyxml2_build, Build.ctest,
               artifact="build/libtinyxml2.so.*.*"),
    ]
}


# --------------------------------------------------------------------------- checks


_COMMAND_PREFIX_ENDS = ("&&", ";", "compile:", "--mode=compile")
_OPT_FLAG = re.compile(r"-O(?:[0-3sz]|fast|g)?$")


def compile_lines(log_text: str, compilers: Sequence[str]) -> list[list[str]]:
    """Return the logged commands (as tokens, from the compiler on) that compile with one of ``compilers``.

    A compile command starts a line, or follows ``cd DIR &&`` (CMake) or
    ``libtool: compile:`` / ``libtool --mode=compile`` (libtool), and has ``-c``.
    """
    names = {os.path.basename(c.split()[0]) for c in compilers}
    lines = []
    for line in log_text.splitlines():
        tokens = line.split()
        for i, token in enumerate(tokens):
            if (os.path.basename(token) in names and "=" not in token and "-c" in tokens[i + 1:]
                    and (i == 0 or tokens[i - 1] in _COMMAND_PREFIX_ENDS)):
                lines.append(tokens[i:])
                break
    return lines


def check_opt_flag(log: Path, compilers: Sequence[str], opt: str) -> int:
    """Check that every logged compile line ends up at ``opt`` (clang: last -O wins).

    Returns the number of compile lines; raises :class:`CommandError` if
    there are none or if one of them uses another optimization level.
    """
    lines = compile_lines(log.read_text(errors="replace"), compilers)
    if not lines:
        raise CommandError(f"no compile command with {', '.join(compilers)} found in {log}\n"
                           f"--- last {LOG_TAIL_LINES} lines ---\n{log_tail(log)}")
    for tokens in lines:
        levels = [t for t in tokens if _OPT_FLAG.match(t)]
        if not levels or levels[-1] != opt:
            raise CommandError(f"compile line does not use {opt}: {' '.join(tokens)}")
    return len(lines)


def mlcc_log_paths(log: Path) -> Counter[str]:
    """Count the translation units in an ``MLCC_LOG`` file by their ``"path"`` value."""
    paths: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            paths["<not json>"] += 1
            continue
        paths[str(record.get("path")) if isinstance(record, dict) else "<not an object>"] += 1
    return paths


# --------------------------------------------------------------------------- driver


@dataclasses.dataclass
class BuildResult:
    """The JSON-able outcome of one recipe run."""

    project: str
    compiler: str
    opt: str
    build_seconds: float | None
    build_cpu_seconds: float | None
    test_seconds: float | None
    passed: bool
    artifact: str | None
    workdir: str
    log: str
    compile_lines: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def build_env(cc: str, cxx: str, mlcc_log: Path | None = None) -> dict[str, str]:
    """Return the environment for builds: the caller's, minus build variables, plus CC/CXX."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_BUILD_VARIABLES}
    env.update(CC=cc, CXX=cxx, LC_ALL="C")
    if mlcc_log is not None:
        env["MLCC_LOG"] = str(mlcc_log)
    return env


def _children_cpu_seconds() -> float:
    """User plus system CPU time of all finished child processes (less noisy than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _find_artifact(workdir: Path, pattern: str) -> Path | None:
    matches = sorted(p for p in workdir.glob(pattern) if p.is_file() and not p.is_symlink())
    return matches[0] if matches else None


TOOLCHAIN_FILE = Path(__file__).resolve().parents[2] / "data" / "mlcc-toolchain.cmake"


def lto_settings(kind: str, level: str, mlcc: bool) -> tuple[list[str], dict[str, str]]:
    """What an LTO build of a project adds: the flags beside the level on compile and
    link lines, and the environment (LDFLAGS; LLVM 19's llvm-ar for archives of LTO
    objects, which configure and Makefiles read from AR and CMake from mlcc's toolchain
    file: CMake finds clang-19's llvm-ar by its name, not mlcc's)."""
    flags = [f"-flto={kind}", "-fuse-ld=lld", "-Wno-unused-command-line-argument"]
    # lld, unlike GNU ld, refuses a version script naming a symbol the link does not
    # define (zlib's names gz_intmax): for clang and mlcc alike
    env = {"LDFLAGS": " ".join([level, *flags, "-Wl,--undefined-version"]),
           "AR": "llvm-ar-19", "RANLIB": "llvm-ranlib-19"}
    if mlcc:
        env["CMAKE_TOOLCHAIN_FILE"] = str(TOOLCHAIN_FILE)
    return flags, env


def build_project(name: str, cc: str, cxx: str, opt: str, workdir: Path, *, jobs: int = 2,
                  mlcc_log: Path | None = None, flags=(), extra_env=None) -> BuildResult:
    """Fetch, extract, build and test one recipe in ``workdir`` (created, or cleared of a previous build),
    with ``flags`` beside the level ``opt`` and ``extra_env`` in the build's environment.

    Download problems raise :class:`FetchError`; build and test failures are
    reported in the returned :class:`BuildResult` (``passed`` False, ``error``
    holding the failing command and the tail of the build log).
    """
    recipe = RECIPES[name]
    tarball = fetch_source(recipe.package)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "build.log"
    log.unlink(missing_ok=True)
    shutil.rmtree(workdir / "build", ignore_errors=True)
    extract_source(tarball, workdir / "src")
    b = Build(workdir=workdir, cc=cc, cxx=cxx, opt=" ".join([opt, *flags]), jobs=jobs, log=log,
              env={**build_env(cc, cxx, mlcc_log), **(extra_env or {})})
    result = BuildResult(
        project=name, compiler=os.path.basename((cxx if recipe.language == "c++" else cc).split()[0]),
        opt=opt, build_seconds=None, build_cpu_seconds=None, test_seconds=None, passed=False,
        artifact=None, workdir=str(workdir), log=str(log),
    )
    try:
        start, start_cpu = time.monotonic(), _children_cpu_seconds()
        recipe.build(b)
        result.build_seconds = round(time.monotonic() - start, 2)
        result.build_cpu_seconds = round(_children_cpu_seconds() - start_cpu, 2)
        result.compile_lines = check_opt_flag(log, [cc, cxx], opt)
        artifact = _find_artifact(workdir, recipe.artifact)
        if artifact is None:
            raise CommandError(f"build finished but no file matches {recipe.artifact} in {workdir}")
        result.artifact = str(artifact)
        start = time.monotonic()
        recipe.test(b)
        result.test_seconds = round(time.monotonic() - start, 2)
        result.compile_lines = check_opt_flag(log, [cc, cxx], opt)
        result.passed = True
    except CommandError as exc:
        result.error = f"{name} ({result.compiler} {opt}) failed: {exc}"
    return result
