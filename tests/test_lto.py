"""Link-time optimization through mlcc (mlcc/lto.py): LTO objects from mlcc's pre-link
decision, and lld links that carry the target's default pipeline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import mlcc_env

FIXTURE = Path(__file__).parent / "data" / "compare" / "src"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in ("main.c", "util.c", "util.h"):
        shutil.copy(FIXTURE / name, tmp_path / name)
    return tmp_path


def run(argv, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=mlcc_env(**env), capture_output=True, text=True, timeout=300)


def summary_block(path: Path) -> str:
    """The kind of module summary an LTO object carries ("" for none)."""
    dump = subprocess.run(["llvm-bcanalyzer-19", "-dump", str(path)], capture_output=True, text=True,
                          check=True).stdout
    for block in ("FULL_LTO_GLOBALVAL_SUMMARY_BLOCK", "GLOBALVAL_SUMMARY_BLOCK"):
        if f"<{block}" in dump:
            return block
    return ""


def log_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("kind, summary", [("full", "FULL_LTO_GLOBALVAL_SUMMARY_BLOCK"),
                                           ("thin", "GLOBALVAL_SUMMARY_BLOCK")])
def test_lto_objects_are_clangs_kind_of_bitcode_with_mlccs_pipeline(work: Path, kind, summary):
    log = work / "mlcc.log"
    for compiler, env in (("clang-19", {}), ("mlcc", {"MLCC_LOG": str(log)})):
        proc = run([compiler, "-Oz", f"-flto={kind}", "-c", "util.c", "-o", f"{compiler}.o"], work, **env)
        assert proc.returncode == 0, proc.stderr
        assert summary_block(work / f"{compiler}.o") == summary
    entry, = log_entries(log)
    assert entry["path"] == "optimize" and entry["size"] is None and not entry["fallback"]
    assert entry["pipeline"].startswith("clang[")  # the model's choice, on the pre-link pipeline


@pytest.mark.parametrize("kind", ["full", "thin"])
def test_an_lld_lto_link_carries_the_default_pipeline(work: Path, kind):
    assert run(["clang-19", "-Oz", f"-flto={kind}", "-c", "main.c", "util.c"], work).returncode == 0
    log = work / "mlcc.log"
    proc = run(["mlcc", "-Oz", f"-flto={kind}", "-fuse-ld=lld", "main.o", "util.o", "-o", "prog"], work,
               MLCC_LOG=str(log), MLCC_TRACE="1")
    assert proc.returncode == 0, proc.stderr
    link = [line for line in proc.stderr.splitlines() if "--lto-newpm-passes=" in line]
    assert len(link) == 1
    # the default's code generation knobs reach lld's code generation
    assert "-Xlinker -mllvm -Xlinker -enable-machine-outliner=always" in link[0]
    assert "iroutliner" not in link[0]  # slow passes stay out of the whole program
    entry, = log_entries(log)
    assert entry["path"] == "lto-link" and entry["lto"] == kind and entry["pipeline"].startswith("clang[")
    clang = run(["clang-19", "-Oz", f"-flto={kind}", "-fuse-ld=lld", "main.o", "util.o", "-o", "cprog"], work)
    assert clang.returncode == 0
    ours = subprocess.run(["./prog", "a", "b"], cwd=work, capture_output=True)
    theirs = subprocess.run(["./cprog", "a", "b"], cwd=work, capture_output=True)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)


def test_the_post_link_text_is_llds_pipeline_for_the_kind():
    from mlcc.lto import post_link_text
    full, thin = (post_link_text("/usr/bin/opt-19", k, "z") for k in ("full", "thin"))
    assert full.startswith("cross-dso-cfi,") and "BitcodeWriterPass" not in full
    assert thin != full and not thin.endswith(",verify")


def test_a_thinlto_cache_is_kept_apart_per_mlcc_options(work: Path):
    assert run(["clang-19", "-Oz", "-flto=thin", "-c", "main.c", "util.c"], work).returncode == 0
    argv = ["-Oz", "-flto=thin", "-fuse-ld=lld", "-Wl,--thinlto-cache-dir=cache", "main.o", "util.o"]
    assert run(["clang-19", *argv, "-o", "cprog"], work).returncode == 0
    before = {p.name for p in (work / "cache").iterdir()}
    assert run(["mlcc", *argv, "-o", "prog"], work).returncode == 0
    mine = [p for p in (work / "cache").iterdir() if p.name not in before]
    assert len(mine) == 1 and mine[0].name.startswith("mlcc-") and any(mine[0].iterdir())
    # clang's own entries were neither used nor changed: the two builds never mix
    assert {p.name for p in (work / "cache").iterdir()} - {mine[0].name} == before


def test_gnu_ld_gets_the_code_generation_knobs_through_the_plugin(work: Path):
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    proc = run(["mlcc", "-Oz", "-flto", "main.o", "util.o", "-o", "prog"], work, MLCC_TRACE="1")
    assert proc.returncode == 0, proc.stderr
    link, = [line for line in proc.stderr.splitlines() if "main.o" in line]
    assert "-Xlinker -plugin-opt=-enable-machine-outliner=always" in link
    assert "--lto-newpm-passes" not in link  # LLVMgold.so takes no pass pipeline
    assert subprocess.run(["./prog"], cwd=work).returncode == 0


def test_clangs_forced_pipeline_and_other_linkers_get_clangs_own_link(work: Path):
    from mlcc.args import parse
    from mlcc.lto import linker
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    for extra in ((), ("-fuse-ld=lld",)):
        proc = run(["mlcc", "-Oz", "-flto", *extra, "main.o", "util.o", "-o", "prog"], work,
                   MLCC_TRACE="1", MLCC_PIPELINE="clang")
        assert proc.returncode == 0, proc.stderr
        assert "--lto-newpm-passes" not in proc.stderr and "-mllvm" not in proc.stderr
        assert "-plugin-opt=" not in proc.stderr
    kinds = {flags: linker(parse([*flags.split(), "-flto", "a.o"], "c")) for flags in
             ("", "-fuse-ld=bfd", "-fuse-ld=gold", "-fuse-ld=lld", "-fuse-ld=mold", "--ld-path=/opt/ld.lld")}
    assert kinds == {"": "plugin", "-fuse-ld=bfd": "plugin", "-fuse-ld=gold": "plugin", "-fuse-ld=lld": "lld",
                     "-fuse-ld=mold": "other", "--ld-path=/opt/ld.lld": "lld"}


def test_a_link_whose_options_cannot_be_made_is_clangs_with_one_warning(work: Path):
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    proc = run(["mlcc", "-Oz", "-flto", "-fuse-ld=lld", "main.o", "util.o", "-o", "prog"], work,
               MLCC_OPT="/bin/false", MLCC_CACHE=str(work / "fresh-cache"))
    assert proc.returncode == 0
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("mlcc: warning:")]
    assert len(warnings) == 1 and "clang's own link-time pipeline" in warnings[0]
    assert run(["clang-19", "-Oz", "-flto", "-fuse-ld=lld", "main.o", "util.o", "-o", "cprog"],
               work).returncode == 0
    assert (work / "prog").read_bytes() == (work / "cprog").read_bytes()


@pytest.mark.parametrize("separate", [True, False])
def test_link_trials_keep_the_smallest_link_never_larger_than_clangs(work: Path, separate):
    from mlcc.objective import object_size
    if separate:
        assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
        inputs = ["main.o", "util.o"]
    else:
        inputs = ["main.c", "util.c"]  # compiled by mlcc single-shot, then the trial links
    log = work / "mlcc.log"
    proc = run(["mlcc", "-Oz", "-flto", "-fuse-ld=lld", "-fmlcc-trials=2", "-Wl,-Map=prog.map", *inputs,
                "-o", "prog"], work, MLCC_LOG=str(log))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # the trial links' output is kept; the winner's link speaks once
    assert run(["clang-19", "-Oz", "-flto", "-fuse-ld=lld", "main.c", "util.c", "-o", "cprog"],
               work).returncode == 0
    assert object_size(work / "prog") <= object_size(work / "cprog")
    assert (work / "prog.map").read_text().count("prog") >= 1  # the winner's map, for the real output
    entry, = [e for e in log_entries(log) if e["path"] == "lto-link"]
    assert entry["trials"][0] == "clang" and len(entry["trials"]) >= 2
    assert entry["pipeline"] in entry["trials"] and entry.get("with_sources", False) is not separate
    ours = subprocess.run(["./prog", "x"], cwd=work, capture_output=True)
    theirs = subprocess.run(["./cprog", "x"], cwd=work, capture_output=True)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)


# What bad input gets (issue 27): clang's exit status and messages, at most one `mlcc:`
# warning line, and a link that either carries mlcc's options or says it does not.

CORRUPT_BITCODE = b"BC\xc0\xde\x35\x14\x00\x00\x05\x00\x00\x00\x62\x0c\x30\x24garbagegarbage"

# a function whose parameter has an attribute LLVM 19 does not know (`captures`, LLVM 21)
NEWER_IR = """target triple = "x86_64-pc-linux-gnu"
target datalayout = "{layout}"
define i32 @helper(ptr captures(none) %p) {{
  %v = load i32, ptr %p
  ret i32 %v
}}
"""


def newer_llvm_bitcode(path: Path) -> None:
    """Bitcode written by llvmlite's LLVM (newer than 19), which LLVM 19 cannot read."""
    binding = pytest.importorskip("llvmlite.binding")
    if binding.llvm_version_info[0] < 21:
        pytest.skip("llvmlite's LLVM is not newer than the `captures` attribute")
    binding.initialize_native_target()
    binding.initialize_native_asmprinter()
    layout = binding.Target.from_default_triple().create_target_machine().target_data
    path.write_bytes(binding.parse_assembly(NEWER_IR.format(layout=layout)).as_bitcode())


def same_as_clang(argv: list[str], work: Path, clang: str = "clang-19", any_order: bool = False,
                  **env) -> list[str]:
    """Run clang and mlcc with `argv`; assert the same exit status and the same stderr
    but for mlcc's warnings (at most one line), which are returned. `any_order`: the same
    lines in any order and with any module's cache file named (the linker's threads
    report each module's cache error as they finish, gold only the first). A private
    runtime directory: a warning said once per build is said here."""
    runtime = work / "runtime"
    runtime.mkdir(exist_ok=True)
    theirs = subprocess.run([clang, *argv], cwd=work, capture_output=True, text=True, timeout=300)
    ours = run(["mlcc", *argv], work, XDG_RUNTIME_DIR=str(runtime), **env)
    warnings = [line for line in ours.stderr.splitlines(keepends=True) if line.startswith("mlcc: ")]
    assert "Traceback" not in ours.stderr
    assert ours.returncode == theirs.returncode, ours.stderr
    mine = [line for line in ours.stderr.splitlines(keepends=True) if line not in warnings]
    if any_order:
        def lines(text_lines):
            return sorted(re.sub(r"llvmcache-[0-9A-F]+", "llvmcache-KEY", line) for line in text_lines)
        assert lines(mine) == lines(theirs.stderr.splitlines(keepends=True))
    else:
        assert "".join(mine) == theirs.stderr
    assert len(warnings) <= 1 and all(line.startswith("mlcc: warning: ") for line in warnings)
    return warnings


@pytest.mark.parametrize("bad", ["corrupt", "newer-llvm"])
@pytest.mark.parametrize("flags", [("-flto", "-fuse-ld=lld"), ("-flto",), ("-flto=thin", "-fuse-ld=lld"),
                                   ("-flto", "-fuse-ld=lld", "-fmlcc-trials=2")])
def test_bitcode_lld_cannot_read_among_the_inputs_gets_clangs_error(work: Path, bad, flags):
    kind = "-flto=thin" if "-flto=thin" in flags else "-flto"
    assert run(["clang-19", "-Oz", kind, "-c", "main.c", "util.c"], work).returncode == 0
    if bad == "corrupt":
        (work / "bad.o").write_bytes(CORRUPT_BITCODE)
    else:
        newer_llvm_bitcode(work / "bad.o")
    clang_flags = [f for f in flags if not f.startswith("-fmlcc")]
    for inputs in (["main.o", "util.o", "bad.o"], ["main.c", "util.o", "bad.o"]):
        argv = ["-Oz", *clang_flags, *inputs, "-o", "prog"]
        theirs = subprocess.run(["clang-19", *argv], cwd=work, capture_output=True, text=True)
        assert theirs.returncode == 1 and ("bad.o" in theirs.stderr or "LLVM gold plugin" in theirs.stderr)
        extra = [f for f in flags if f.startswith("-fmlcc")]
        ours = run(["mlcc", *argv, *extra], work)
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr)
        assert not (work / "prog").exists()


@pytest.fixture
def clang_without_plugin(tmp_path: Path) -> Path:
    """A clang-19 of its own directory, whose lib/ (where clang looks for LLVMgold.so) is empty."""
    (tmp_path / "llvm" / "bin").mkdir(parents=True)
    (tmp_path / "llvm" / "lib").mkdir()
    clang = tmp_path / "llvm" / "bin" / "clang-19"
    shutil.copy(Path(shutil.which("clang-19")).resolve(), clang)
    return clang


@pytest.mark.parametrize("plugin", ["missing", "not-a-library", "gcc-plugin"])
def test_a_missing_or_mismatched_gold_plugin_gets_clangs_error(work: Path, clang_without_plugin: Path, plugin):
    lib = clang_without_plugin.parent.parent / "lib"
    if plugin == "not-a-library":
        (lib / "LLVMgold.so").write_text("junk\n")
    elif plugin == "gcc-plugin":
        gcc_plugin = sorted(Path("/usr/lib/gcc").glob("*/*/liblto_plugin.so"))
        if not gcc_plugin:
            pytest.skip("no GCC LTO plugin")
        shutil.copy(gcc_plugin[-1], lib / "LLVMgold.so")
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    warnings = same_as_clang(["-Oz", "-flto", "main.o", "util.o", "-o", "prog"], work,
                             clang=str(clang_without_plugin), MLCC_CLANG=str(clang_without_plugin))
    assert warnings == [] and not (work / "prog").exists()


def test_a_users_own_linker_plugin_gets_clangs_link_and_a_warning(work: Path):
    gcc_plugin = sorted(Path("/usr/lib/gcc").glob("*/*/liblto_plugin.so"))
    if not gcc_plugin:
        pytest.skip("no GCC LTO plugin")
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    log = work / "mlcc.log"
    # mlcc's -plugin-opt options would go to the plugin loaded last: the user's
    warning, = same_as_clang(["-Oz", "-flto", f"-Wl,-plugin,{gcc_plugin[-1]}", "main.o", "util.o", "-o", "prog"],
                             work, MLCC_LOG=str(log))
    assert "-plugin" in warning and "clang's own link-time pipeline" in warning
    assert log_entries(log)[-1]["pipeline"] == "clang"


@pytest.mark.parametrize("option", ["-Wl,--thinlto-cache-dir=", "-Wl,-plugin-opt=cache-dir="])
def test_a_thinlto_cache_directory_that_cannot_be_used_gets_lds_own_error(work: Path, option):
    assert run(["clang-19", "-Oz", "-flto=thin", "-c", "main.c", "util.c"], work).returncode == 0
    (work / "afile").write_text("not a directory\n")  # also for root, who may write anywhere
    linker = ["-fuse-ld=lld"] if "thinlto" in option else []
    warnings = same_as_clang(["-Oz", "-flto=thin", *linker, f"{option}afile/cache", "main.o", "util.o",
                              "-o", "prog"], work, any_order=True)
    assert len(warnings) == 1 and "afile/cache" in warnings[0]
    assert "afile/cache/mlcc-" not in warnings[0]  # ld's message names the user's directory


def test_an_lto_link_with_a_profile_is_clangs_own(work: Path):
    """clang hands the linker the profile (`sample-profile=`, `cs-profile-path=`); the
    passes that read it are in lld's pipeline, not in mlcc's text of it."""
    assert run(["clang-19", "-Oz", "-flto", "-c", "main.c", "util.c"], work).returncode == 0
    (work / "s.prof").write_text("main:100:1\n 1: 100\n")
    log = work / "mlcc.log"
    argv = ["-Oz", "-flto", "-fuse-ld=lld", "-fprofile-sample-use=s.prof", "main.o", "util.o"]
    assert same_as_clang([*argv, "-o", "prog"], work, MLCC_LOG=str(log)) == []
    assert log_entries(log)[-1]["pipeline"] == "clang"
    assert run(["clang-19", *argv, "-o", "cprog"], work).returncode == 0
    assert (work / "prog").read_bytes() == (work / "cprog").read_bytes()
    # a profile lld cannot read: its own error
    same_as_clang(["-Oz", "-flto", "-fuse-ld=lld", "-fprofile-instr-use=none.profdata", "main.o", "util.o",
                   "-o", "prog2"], work)


def test_a_warm_link_reads_its_options_from_the_decision_cache(work: Path, tmp_path: Path):
    """The link's options are remembered whole: a second link (another output) loads no model,
    target table or knob file (link time, issue 27), and links the same program."""
    assert run(["clang-19", "-Oz", "-flto=thin", "-c", "main.c", "util.c"], work).returncode == 0
    cache = tmp_path / "decisions"
    # the Python entry point itself (the `mlcc` installed may be the native client)
    python_mlcc = ["-c", "import sys; del sys.argv[0]; from mlcc.cli import main_c; main_c()", "mlcc"]
    argv = [*python_mlcc, "-Oz", "-flto=thin", "-fuse-ld=lld", "main.o", "util.o"]
    cold = run([sys.executable, "-X", "importtime", *argv, "-o", "cold"], work, MLCC_CACHE=str(cache))
    warm = run([sys.executable, "-X", "importtime", *argv, "-o", "warm"], work, MLCC_CACHE=str(cache))
    assert cold.returncode == warm.returncode == 0, warm.stderr
    assert "mlcc.targets" in cold.stderr and "mlcc.knobs" in cold.stderr
    for module in ("mlcc.targets", "mlcc.knobs", "mlcc.passes", "mlcc.decide", "tomllib"):
        assert f" {module}\n" not in warm.stderr, module
    assert (work / "cold").read_bytes() == (work / "warm").read_bytes()
    # another setting, another answer: clang's own link
    forced = run(["mlcc", *argv[3:], "-o", "forced"], work, MLCC_CACHE=str(cache), MLCC_PIPELINE="clang")
    assert forced.returncode == 0
    assert run(["clang-19", *argv[3:], "-o", "clang"], work).returncode == 0
    assert (work / "forced").read_bytes() == (work / "clang").read_bytes()
