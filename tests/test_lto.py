"""Link-time optimization through mlcc (mlcc/lto.py): LTO objects from mlcc's pre-link
decision, and lld links that carry the target's default pipeline."""

from __future__ import annotations

import json
import shutil
import subprocess
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
