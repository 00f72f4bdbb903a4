"""Differential testing with Csmith (`python -m mlcc.learn.check difftest`): a CI-sized campaign
that must find no miscompile, and the pieces it is made of.

The campaign builds Csmith seeds 1..30 with clang-19 -O0 and with mlcc: the
model's choice at -Oz and -Os, -fmlcc-trials=4 at -Oz, and the candidate
pipelines forced at -Oz (all of them while there are few; with a larger
candidate set each program gets a slice that rotates with the seed, so the
test stays within a few minutes on two cores while every candidate is still
built for at least two programs). Csmith is required:
`scripts/setup.sh` installs it.

For each other target whose programs run here (mlcc/data/targets.toml's
`emulator`: aarch64 under qemu-aarch64, thumbv7m bare metal under qemu-arm,
riscv32 bare metal under qemu-riscv32), a few seeds are built for the target,
reference included, and run under qemu.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import time

import pytest

from mlcc import targets
from mlcc.errors import ToolchainMissing
from mlcc.learn.check import difftest
from mlcc.learn.check.difftest import Config, configs_for_program
from mlcc.pipeline import CLANG

SEEDS = range(1, 31)
MIN_COMPARED = 20
FORCED_BUDGET = 2      # forced candidates per program when there are more than this
CROSS_SEEDS = range(1, 5)
CROSS_TARGETS = ("aarch64", "thumbv7m", "riscv32")
ELF_MACHINE = {"aarch64": 183, "thumbv7m": 40, "riscv32": 243}   # EM_AARCH64, EM_ARM, EM_RISCV


def _csmith_or_fail() -> None:
    try:
        difftest.find_csmith()
    except ToolchainMissing as exc:
        pytest.fail(f"{exc} -- the differential tests need Csmith", pytrace=False)


def ci_configurations() -> list[Config]:
    return difftest.configurations("zs", trials_levels="z", forced_levels="z")


@pytest.fixture(scope="module")
def ci_campaign(tmp_path_factory):
    """The CI-sized campaign, run once for the module; returns (summary, out dir)."""
    _csmith_or_fail()
    configs = ci_configurations()
    forced = sum(1 for c in configs if c.pipeline)
    # the slices of consecutive seeds tile the candidates: each one is built for at
    # least two programs, so one skipped program cannot leave a candidate untested
    budget = max(FORCED_BUDGET, math.ceil(2 * forced / len(SEEDS)))
    out = tmp_path_factory.mktemp("difftest")
    summary = difftest.campaign(SEEDS, configs, out, jobs=2,
                                forced_per_program=0 if forced <= budget else budget)
    return summary, out


def test_csmith_programs_match_clang_O0(ci_campaign):
    summary, out = ci_campaign
    details = "\n".join(f"seed {m['seed']} {m['config']} ({m['kind']}): {m['dir']}"
                        for m in summary["mismatches"])
    assert summary["mismatches"] == [], f"mlcc builds differ from clang -O0:\n{details}"
    assert summary["programs"] == len(SEEDS)
    assert summary["compared"] >= MIN_COMPARED, f"only {summary['compared']} compared: {summary['skipped']}"
    per_program = len(configs_for_program(1, ci_configurations(), summary["forced_per_program"]))
    assert summary["runs_compared"] == summary["compared"] * per_program
    assert not list(out.glob("mismatch-*"))


def test_every_forced_candidate_was_built(ci_campaign):
    summary, _ = ci_campaign
    forced = {c.name for c in ci_configurations() if c.pipeline}
    built = {name for r in summary["results"].values() if r["status"] == "compared"
             for name in r["configs"]}
    assert forced <= built


def test_campaign_resumes_from_its_summary(ci_campaign):
    summary, out = ci_campaign
    start = time.monotonic()
    again = difftest.campaign(SEEDS, ci_configurations(), out, jobs=2,
                              forced_per_program=summary["forced_per_program"])
    assert time.monotonic() - start < 10
    assert again["results"] == summary["results"]
    assert json.loads((out / difftest.SUMMARY).read_text())["programs"] == len(SEEDS)


@pytest.mark.parametrize("target", CROSS_TARGETS)
def test_csmith_programs_match_clang_O0_on_another_target(tmp_path, target):
    """A few programs built for `target` by clang -O0 and by mlcc -Oz (the target's
    default pipeline), run under qemu: the reference printed Csmith's checksum, and
    mlcc's build printed the same."""
    _csmith_or_fail()
    configs = difftest.configurations("z", trials_levels="", forced_levels="", trials=0, target=target)
    summary = difftest.campaign(CROSS_SEEDS, configs, tmp_path, jobs=2, target=target)
    assert summary["mismatches"] == [], [m["dir"] for m in summary["mismatches"]]
    assert (summary["target"], summary["programs"]) == (target, len(CROSS_SEEDS))
    assert summary["emulator"] == list(targets.named(target).emulator)
    compared = [r for r in summary["results"].values() if r["status"] == "compared"]
    assert len(compared) >= len(CROSS_SEEDS) - 1, summary["skipped"]
    assert all(r["expected"].startswith("checksum = ") for r in compared)
    assert summary["runs_compared"] == len(compared)
    # the target's default (or one of its code generation variants, or a pipeline it
    # builds beside them, such as clang's own) decided, not x86-64's model; each as it
    # runs on the program (without the IR outliner where a function is over its bound)
    from mlcc import passes
    entry = targets.named(target)
    chosen = set(summary["model_choices"]["Oz-model"])
    shipped = {entry.default("z"), *entry.variants("z"), *entry.also_built("z")}
    assert chosen and chosen <= shipped | {passes.bounded(p, float("inf")) for p in shipped}
    assert difftest.summary_file(tmp_path, target).name == f"summary-{target}.json"


def test_csmith_programs_built_with_lto_match_clang_O0(tmp_path):
    """A few programs compiled with -flto and -flto=thin and linked by lld through mlcc
    (pre-link decision, link-time options, link trials) print the reference's checksum."""
    _csmith_or_fail()
    configs = difftest.configurations("z", trials_levels="z", forced_levels="", trials=2,
                                      lto=("full", "thin"))
    assert [c.name for c in configs] == ["Oz-model", "Oz-trials2", "Oz-lto-full", "Oz-lto-full-trials2",
                                         "Oz-lto-thin", "Oz-lto-thin-trials2"]
    summary = difftest.campaign(range(1, 4), configs, tmp_path, jobs=2)
    assert summary["mismatches"] == [], [m["dir"] for m in summary["mismatches"]]
    assert summary["runs_compared"] >= 2 * len(configs)


@pytest.mark.parametrize("target", CROSS_TARGETS)
def test_a_program_for_another_target_runs_under_qemu(tmp_path, target):
    """The target's flags and link make an executable for it (its ELF machine), and
    run_binary runs it under the target's emulator: output, exit status, a crash."""
    from mlcc.toolchain import find

    entry = targets.named(target)
    for body, status in [('printf("checksum = 2A\\n"); return 0;', "exit 0"), ("return 3;", "exit 3"),
                         ("*(volatile int *)0 = 1; return 0;", "signal 11")]:
        src = tmp_path / "p.c"
        src.write_text(f"#include <stdio.h>\nint main(void) {{ {body} }}\n")
        exe = tmp_path / "p"
        subprocess.run([find("clang"), "-O0", *entry.flags, str(src), *entry.link, "-o", str(exe)], check=True)
        assert int.from_bytes(exe.read_bytes()[18:20], "little") == ELF_MACHINE[target]
        run = difftest.run_binary(str(exe), 10, entry.emulator, entry.stdout)
        assert run.status == status
        assert (run.text == "checksum = 2A\n") == (status == "exit 0")


def test_a_target_without_an_emulator_is_refused(tmp_path, monkeypatch):
    table = dict(targets.table())
    table["riscv32"] = dataclasses.replace(table["riscv32"], link=(), emulator=())
    monkeypatch.setattr(targets, "table", lambda: table)
    with pytest.raises(ToolchainMissing, match="riscv32 has no `emulator`"):
        difftest.campaign(CROSS_SEEDS, [Config("Oz-model", "z", ())], tmp_path,
                          target="riscv32")


# ----------------------------------------------------------------------------- the pieces


FORCED = [Config(f"Oz-pipeline{i:02d}", "z", (f"-fmlcc-pipeline=p{i}",), f"p{i}") for i in range(5)]
PLAIN = [Config("Oz-model", "z", ()), Config("Os-model", "s", ())]


@pytest.mark.parametrize("seed, budget, expected", [
    (1, 0, ["p0", "p1", "p2", "p3", "p4"]),   # 0: every candidate
    (1, 5, ["p0", "p1", "p2", "p3", "p4"]),
    (1, 2, ["p2", "p3"]),
    (2, 2, ["p4", "p0"]),
    (3, 2, ["p1", "p2"]),
    (4, 1, ["p4"]),
])
def test_forced_slice_rotates_with_the_seed(seed, budget, expected):
    chosen = configs_for_program(seed, PLAIN + FORCED, budget)
    assert chosen[:2] == PLAIN
    assert sorted(c.pipeline for c in chosen[2:]) == sorted(expected)


def test_configuration_names_and_flags():
    configs = difftest.configurations("zs", trials_levels="z", forced_levels="z")
    names = [c.name for c in configs]
    assert names[:3] == ["Oz-model", "Os-model", "Oz-trials4"]
    assert configs[2].argv == ("-Oz", "-fmlcc-trials=4")
    forced = [c for c in configs if c.pipeline]
    assert forced and all(c.argv == ("-Oz", f"-fmlcc-pipeline={c.pipeline}") for c in forced)
    assert [c.pipeline for c in forced] == difftest.candidate_pipelines("z")[0]


def test_candidates_fall_back_to_the_table_then_clang(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCC_MODEL", str(tmp_path / "absent.onnx"))
    monkeypatch.setattr(difftest, "MODELS", tmp_path)
    assert difftest.candidate_pipelines("z")[0] == [CLANG]
    assert difftest.candidate_pipelines("s")[0] == [CLANG]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "candidates-Oz.json").write_text(
        json.dumps({"pipelines": [CLANG, "function(instcombine)"]}))
    assert difftest.candidate_pipelines("z")[0] == [CLANG, "function(instcombine)"]
    assert difftest.candidate_pipelines("s")[0] == [CLANG, "function(instcombine)"]


def test_environment_drops_mlcc_settings(monkeypatch):
    monkeypatch.setenv("MLCC_PIPELINE", "default<O3>")
    monkeypatch.setenv("MLCC_DISABLE", "1")
    monkeypatch.setenv("MLCC_LLVM_BIN", "/opt/llvm/bin")
    env = difftest.mlcc_environment("/c", "/l")
    assert "MLCC_PIPELINE" not in env and "MLCC_DISABLE" not in env
    assert env["MLCC_LLVM_BIN"] == "/opt/llvm/bin"
    assert (env["MLCC_CACHE"], env["MLCC_LOG"]) == ("/c", "/l")
    assert env["MLCC_SMALL_UNIT"] == "0"


PRINTS = '#include <stdio.h>\nint main(void) { printf("checksum = 2A\\n"); return 0; }\n'


@pytest.mark.parametrize("forced, target", [(CLANG, targets.HOST),
                                            ("default<Oz>,function(instcombine)", targets.HOST),
                                            (CLANG, "thumbv7m"), (CLANG, "riscv32")])
def test_a_mismatch_leaves_a_runnable_reproducer(tmp_path, forced, target):
    """A made-up expected output: the reproducer is written, and its repro.sh,
    which rebuilds the reference (for the target, run under its emulator, its output
    read where the emulator prints it), finds that mlcc and LLVM alone agree with it."""
    program = tmp_path / "program.c"
    program.write_text(PRINTS)
    config = Config("Oz-pipeline00", "z", (f"-fmlcc-pipeline={forced}",), forced)
    result = {"builds": 0, "runs": 0, "mismatches": [], "fallbacks": [], "pipelines": {}, "routes": {},
              "timeouts": {"reference": 0, "mlcc": 0}}
    work = tmp_path / "work"
    work.mkdir()
    difftest._check_config(config, 7, str(program), difftest.Run("checksum = 0\n", "exit 0"),
                           str(work), tmp_path / "out", 10, result, targets.named(target))
    assert [m["config"] for m in result["mismatches"]] == ["Oz-pipeline00"]
    where = tmp_path / "out" / ("mismatch-7-Oz-pipeline00" if target == targets.HOST
                                else f"mismatch-{target}-7-Oz-pipeline00")
    assert sorted(p.name for p in where.iterdir()) == [
        "actual.out", "expected.out", "flags", "info.json", "pipeline", "program.c", "repro.sh"]
    assert (where / "actual.out").read_text() == "checksum = 2A\n"
    text = (where / "pipeline").read_text()
    # opt's text: clang's own pipeline spelled out (it starts by annotating the module)
    assert text == f"{forced}\n" if forced != CLANG else text.startswith("annotation2metadata")
    info = json.loads((where / "info.json").read_text())
    assert info["llvm_alone"]["output"] == "checksum = 2A\n"
    assert info["target"] == target
    proc = subprocess.run(["sh", str(where / "repro.sh")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LLVM alone matches the reference" in proc.stdout
    # and what they match is the program's output, read where the emulator prints it
    assert (where / "expected.now").read_text() == (where / "llvm.now").read_text() == "checksum = 2A\n"


@pytest.mark.parametrize("body, status", [
    ('printf("checksum = 2A\\n"); return 0;', "exit 0"),
    ("return 3;", "exit 3"),
    ("abort();", "signal 6"),
    ("for (volatile unsigned long i = 0;; i++) ;", "timeout"),   # a CPU limit, not wall clock
])
def test_run_binary_statuses(tmp_path, body, status):
    from mlcc.toolchain import find

    src = tmp_path / "p.c"
    src.write_text(f"#include <stdio.h>\n#include <stdlib.h>\nint main(void) {{ {body} }}\n")
    subprocess.run([find("clang"), "-O0", str(src), "-o", str(tmp_path / "p")], check=True)
    run = difftest.run_binary(str(tmp_path / "p"), 1)
    assert run.status == status
    assert (run.text == "checksum = 2A\n") == (status == "exit 0")
