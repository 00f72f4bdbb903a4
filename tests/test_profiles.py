"""Profiled builds (-fprofile-instr-use, -fprofile-use) through mlcc: which units get
mlcc's pipelines and which clang's (mlcc/profile_heat.py, driver.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc import profile_heat

HOT = "unsigned hot(unsigned n) { unsigned s = 0; for (unsigned i = 0; i < n; i++) s = s * 31 + (i ^ (s >> 3)); return s; }\n"
COLD = """#include <stdio.h>
unsigned hot(unsigned);
static const char *names[] = {"zero", "one", "two", "three", "four", "five"};
int main(int argc, char **argv) {
  if (argc > 5) { for (int i = 0; i < argc; i++) printf("%s %s\\n", argv[i], names[i % 6]); return 2; }
  printf("%u\\n", hot(1000000));
  return 0;
}
"""


def test_hot_threshold_and_counts_from_the_modules_text():
    text = """!0 = !{i32 1, !"ProfileSummary", !1}
!11 = !{!"DetailedSummary", !12}
!12 = !{!13, !14, !15}
!13 = !{i32 10000, i64 900, i32 1}
!14 = !{i32 990000, i64 40, i32 3}
!15 = !{i32 999999, i64 1, i32 9}
!34 = !{!"function_entry_count", i64 12}
!42 = !{!"branch_weights", i32 39, i32 2}
"""
    assert profile_heat.hot_threshold(text) == 40
    assert profile_heat.max_count(text) == 39
    assert profile_heat.hot_threshold("no summary") is None and profile_heat.max_count("") == 0


@pytest.fixture(scope="module")
def profiled(tmp_path_factory) -> Path:
    """hot.c (a loop run a million times) and cold.c (run once), with the front-end
    profile of that run."""
    work = tmp_path_factory.mktemp("profiled")
    (work / "hot.c").write_text(HOT)
    (work / "cold.c").write_text(COLD)
    subprocess.run(["clang-19", "-Os", "-fprofile-instr-generate", "hot.c", "cold.c", "-o", "inst"],
                   cwd=work, check=True)
    subprocess.run(["./inst"], cwd=work, check=True, capture_output=True,
                   env={"LLVM_PROFILE_FILE": str(work / "p.profraw")})
    subprocess.run(["llvm-profdata-19", "merge", "-o", "p.profdata", "p.profraw"], cwd=work, check=True)
    return work


def _compile(work: Path, name: str, *flags) -> dict:
    log = work / f"{name}.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(["mlcc", "-Os", *flags, "-c", f"{name}.c", "-o", f"{name}.o"], cwd=work,
                          env=mlcc_env(MLCC_LOG=str(log)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in log.read_text().splitlines()][-1]


def test_a_hot_unit_gets_clangs_pipeline_and_a_cold_one_mlccs_or_clangs_smaller(profiled: Path):
    hot = _compile(profiled, "hot", "-fprofile-instr-use=p.profdata")
    assert hot["pipeline"] == "clang"
    cold = _compile(profiled, "cold", "-fprofile-instr-use=p.profdata")
    assert "best of 2 trials" in cold["decision"]  # never larger than clang's under the profile
    clang = subprocess.run(["clang-19", "-Os", "-fprofile-instr-use=p.profdata", "-c", "cold.c", "-o", "c.o"],
                           cwd=profiled, check=True)
    from mlcc.objective import object_size
    assert clang.returncode == 0 and cold["size"] <= object_size(profiled / "c.o")


def test_without_a_profile_the_same_unit_is_not_held_to_clangs(profiled: Path):
    entry = _compile(profiled, "hot")
    assert not entry["decision"].startswith("clang-default")  # decided as for any unit


@pytest.fixture(scope="module")
def other_profile(tmp_path_factory) -> Path:
    """The profile of another program, whose functions share names with hot.c's and
    cold.c's (`main`) or not (`hot`), and a file that is no profile at all."""
    work = tmp_path_factory.mktemp("other")
    (work / "other.c").write_text("int main(int argc, char **argv) { return argc > 3; }\n")
    subprocess.run(["clang-19", "-Os", "-fprofile-instr-generate", "other.c", "-o", "inst"], cwd=work, check=True)
    subprocess.run(["./inst"], cwd=work, check=True, env={"LLVM_PROFILE_FILE": str(work / "o.profraw")})
    subprocess.run(["llvm-profdata-19", "merge", "-o", "other.profdata", "o.profraw"], cwd=work, check=True)
    (work / "corrupt.profdata").write_bytes(bytes(range(256)) * 2)
    return work


# (profile flag, the sources and mode): another program's profile warns (out of date,
# no data), a corrupt or missing one is an error; with -flto the unit is LTO bitcode
@pytest.mark.parametrize("profile", ["-fprofile-instr-use={other}/other.profdata",
                                     "-fprofile-use={other}/other.profdata",
                                     "-fprofile-instr-use={other}/corrupt.profdata",
                                     "-fprofile-instr-use={other}/missing.profdata",
                                     "-fprofile-sample-use={other}/corrupt.profdata",
                                     "-fprofile-sample-use={other}/other.profdata"])
@pytest.mark.parametrize("shape", [("-c", "cold.c", "-o", "out.o"), ("-flto", "-c", "cold.c", "-o", "out.o"),
                                   ("hot.c", "cold.c", "-o", "out"),
                                   ("-flto", "-fuse-ld=lld", "hot.c", "cold.c", "-o", "out")])
def test_a_profile_of_another_program_or_none_gets_clangs_diagnostics(profiled: Path, other_profile: Path,
                                                                      profile, shape):
    argv = ["-Os", profile.format(other=other_profile), *shape]
    outputs = {}
    for compiler in ("clang-19", "mlcc"):
        (profiled / shape[-1]).unlink(missing_ok=True)
        proc = subprocess.run([compiler, *argv], cwd=profiled, env=mlcc_env(), capture_output=True, text=True)
        outputs[compiler] = (proc.returncode, proc.stderr, (profiled / shape[-1]).exists())
    assert "Traceback" not in outputs["mlcc"][1]
    assert outputs["mlcc"] == outputs["clang-19"]
