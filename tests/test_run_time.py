"""The run-time benchmark (`python -m mlcc.learn.evaluate run-time`): its workloads name benchmark
projects, its input is the same every time, and outputs are compared as declared."""

from __future__ import annotations

import bz2
import gzip

from mlcc.learn.evaluate import bench_builds, run_time


def test_every_workload_runs_a_program_of_a_benchmark_project():
    projects = {p.name: p for p in bench_builds.load_projects()}
    for workload in run_time.load_workloads():
        assert workload["project"] in projects, workload["name"]
        assert workload["check"] in ("stdout", "last-line")
        assert not workload["argv"][0].startswith("/"), "programs are relative to the build"


def test_the_input_is_seeded_and_its_compressed_copies_decompress_to_it(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = run_time.write_inputs(tmp_path / "a"), run_time.write_inputs(tmp_path / "b")
    text = open(first["input"], "rb").read()
    assert text == open(second["input"], "rb").read() and len(text) >= run_time.INPUT_BYTES
    assert bz2.decompress(open(first["input_bz2"], "rb").read()) == text
    assert gzip.decompress(open(first["input_gz"], "rb").read()) == text


def test_last_line_check_ignores_the_timings_above_it():
    assert run_time.same_output("last-line", b"took 3 ms\nPass 463, Fail 0\n", b"took 9 ms\nPass 463, Fail 0\n")
    assert not run_time.same_output("last-line", b"Pass 463, Fail 0\n", b"Pass 462, Fail 1\n")
    assert not run_time.same_output("stdout", b"took 3 ms\nok\n", b"took 9 ms\nok\n")


def test_ratios_pair_each_workload_with_its_own_clang_build():
    rows = [{"builds": {"clang-Oz": {"instructions": 100}, "mlcc-Oz-single": {"instructions": 110}}},
            {"builds": {"clang-Oz": {"instructions": 200}}}]
    assert run_time.ratios(rows, "clang-Oz", "mlcc-Oz-single") == [1.1]
