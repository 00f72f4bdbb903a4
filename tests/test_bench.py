"""The pure parts of `mlcc-tool bench` (mlcc/learn/evaluate/bench*.py): no project is built here."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from mlcc.errors import MlccError
from mlcc.learn.evaluate import bench, bench_builds, bench_measure, bench_repeats, bench_report


def _log_line(**entry) -> str:
    return json.dumps({"time": 1.0, **entry})


LOG_LINES = [
    _log_line(path="optimize", source="a.c", cwd="/w/src", output="a.o", opt_level="z",
              pipeline="clang", decision="model", cache="miss", fallback=None, size=100,
              output_cache="hit",
              seconds={"frontend": 0.5, "target": 0.1, "model": 0.2, "opt": 0.3, "codegen": 0.4}),
    _log_line(path="optimize", source="b.c", cwd="/w/src/lib", output="../obj/b.o", opt_level="z",
              pipeline="instcombine,simplifycfg", decision="model", cache="miss", fallback=None,
              size=50, seconds={"frontend": 1.0, "target": 0.0, "model": 0.5, "opt": 0.5,
                                "codegen": 0.5}),
    _log_line(path="optimize", source="c.c", cwd="/w/src", output="c.o", opt_level="z",
              pipeline="default<Oz>", decision="clang-default", cache="miss",
              fallback="opt-19 exited with code 1", size=70,
              seconds={"frontend": 0.25, "target": 0.05, "model": 0.1, "opt": 0.0,
                       "codegen": 0.0, "fallback": 0.6}),
    _log_line(path="clang", reason="no source to compile (link only)", cwd="/w/src", argv=["-o", "x"]),
    _log_line(path="clang", reason="no source to compile (link only)", cwd="/w/src", argv=["-o", "y"]),
    _log_line(path="clang", reason="-O2", cwd="/w/src", argv=["-O2", "-c", "d.c"]),
    "not json",
    "",
]


def test_log_lines_aggregate_into_seconds_per_stage() -> None:
    summary = bench_measure.aggregate_log(bench_measure.parse_log(LOG_LINES), "/w")
    assert summary["units"] == 3
    assert summary["plain_commands"] == 3
    assert summary["plain_reasons"] == {"no source to compile (link only)": 2, "-O2": 1}
    assert summary["fallbacks"] == 1
    assert summary["model_pipelines"] == 1
    assert summary["cache"] == {"miss": 3}
    assert summary["output_hits"] == 1
    assert summary["stages"] == pytest.approx({"frontend": 1.75, "target": 0.15, "model": 0.8,
                                               "opt": 0.8, "codegen": 0.9, "whole": 0.0,
                                               "fallback": 0.6})
    assert summary["log_sizes"] == {"src/a.o": 100, "src/obj/b.o": 50, "src/c.o": 70}


def test_breakdown_overhead_is_build_cpu_minus_the_stages() -> None:
    stages = bench_measure.aggregate_log(bench_measure.parse_log(LOG_LINES))["stages"]
    breakdown = bench_measure.stage_breakdown(stages, build_cpu=10.0)
    assert list(breakdown) == [*bench_measure.STAGES, "overhead"]
    assert breakdown["overhead"] == pytest.approx(10.0 - 5.0)
    assert bench_measure.stage_breakdown({}, build_cpu=2.0) == {
        **dict.fromkeys(bench_measure.STAGES, 0.0), "overhead": 2.0}


def _run(compiler: str, mode: str, objects: dict, artifacts: dict, wall: float, cpu: float) -> dict:
    run = {"project": "p", "compiler": compiler, "level": "-Oz", "mode": mode, "ok": True,
           "error": None, "objects": objects, "artifacts": artifacts, "wall": wall, "cpu": cpu}
    if compiler == "mlcc":
        run["mlcc"] = {"units": 3, "plain_commands": 1, "fallbacks": 0, "model_pipelines": 2}
        run["breakdown"] = bench_measure.stage_breakdown(
            {"frontend": 4.0, "target": 0.5, "model": 1.0, "opt": 2.0, "codegen": 3.0}, cpu)
    return run


def _results() -> dict:
    runs = {
        "alpha|clang|-Oz|-": _run("clang", "-", {"a.o": 1000, "b.o": 500, "x.o": 10},
                                  {"bin/alpha": 2000}, wall=10.0, cpu=12.0),
        "alpha|mlcc|-Oz|single": _run("mlcc", "single", {"a.o": 900, "b.o": 510, "y.o": 10},
                                      {"bin/alpha": 1900}, wall=14.0, cpu=18.0),
        "beta|clang|-Oz|-": _run("clang", "-", {"c.o": 300}, {"libbeta.so": 400}, wall=5.0, cpu=4.0),
        "beta|mlcc|-Oz|single": {"project": "beta", "ok": False, "error": "make exited 2\nmore"},
    }
    return {"format": bench.RESULTS_FORMAT,
            "identity": {"mlcc": "0.1.0", "clang": "clang version 19.1.7",
                         "model": {"-Oz": "model: size-Oz.onnx", "-Os": "model: size-Os.onnx"}},
            "invocations": [{"kind": "build", "command": "mlcc-tool bench --profile quick",
                             "profile": "quick", "date": "2025-01-01 00:00 UTC", "jobs": 2,
                             "git": "abc1234", "loadavg_end": [1.0, 1.0, 1.0],
                             "machine": {"nproc": 2, "cpu": "Test CPU", "loadavg": [0.5, 0.4, 0.3],
                                         "system": "Linux", "python": "3.11"}}],
            "runs": runs}


PROJECTS = [bench_builds.Project("alpha", "alpha", "c", recipe="alpha"),
            bench_builds.Project("beta", "beta", "c++", recipe="beta")]


def test_summary_pairs_objects_by_path_and_totals_the_projects() -> None:
    [section] = bench_report.summarize(_results()["runs"], PROJECTS, ["-Oz"], ["single"])
    alpha, beta = section["rows"]["alpha"], section["rows"]["beta"]
    assert alpha["ok"] and not beta["ok"] and beta["error"].startswith("make exited 2")
    assert alpha["files"] == 2  # x.o and y.o are in one build only
    assert (alpha["objects_clang"], alpha["objects_mlcc"]) == (1500, 1410)
    assert alpha["objects_gain"] == pytest.approx(6.0)
    assert alpha["artifact_gain"] == pytest.approx(5.0)
    assert sorted(alpha["file_gains"]) == [-2.0, 10.0]
    assert (alpha["files_smaller"], alpha["files_same"], alpha["files_larger"]) == (1, 0, 1)
    assert alpha["cpu_ratio"] == pytest.approx(1.5)
    total = section["total"]
    assert total["projects"] == 1 and total["artifact_gain"] == pytest.approx(5.0)
    assert total["breakdown"]["overhead"] == pytest.approx(18.0 - 10.5)
    assert "not met" in bench_report.time_verdict(total)


def test_time_verdict_gives_the_geometric_mean_of_the_projects_cpu_ratios() -> None:
    runs = _results()["runs"]
    # beta built: 16 s against clang's 4 s (4x), alpha 18 s against 12 s (1.5x)
    runs["beta|mlcc|-Oz|single"] = _run("mlcc", "single", {"c.o": 290}, {"libbeta.so": 390}, wall=6.0, cpu=16.0)
    [section] = bench_report.summarize(runs, PROJECTS, ["-Oz"], ["single"])
    total = section["total"]
    assert total["cpu_ratio"] == pytest.approx(34.0 / 16.0)
    assert total["cpu_ratio_geomean"] == pytest.approx((4.0 * 1.5) ** 0.5, abs=1e-3)
    text = bench_report.time_verdict(total)
    assert "2.12× clang's (wall: 1.33×; per project, geometric mean 2.45×); target ≤ 1.25×: not met" in text
    [one] = bench_report.summarize(_results()["runs"], PROJECTS, ["-Oz"], ["single"])
    assert "geometric mean" not in bench_report.time_verdict(one["total"])
    # built twice each (--repeat 2): the totals of the first builds and of the second
    for key, cpus in {"alpha|clang|-Oz|-": (10.0, 14.0), "alpha|mlcc|-Oz|single": (20.0, 16.0),
                      "beta|clang|-Oz|-": (4.0, 4.0), "beta|mlcc|-Oz|single": (16.0, 16.0)}.items():
        runs[key]["repeats"] = [{"cpu": c, "wall": 1.0} for c in cpus]
    [twice] = bench_report.summarize(runs, PROJECTS, ["-Oz"], ["single"])
    assert twice["total"]["cpu_ratio_runs"] == [pytest.approx(36 / 14, abs=1e-3), pytest.approx(32 / 18, abs=1e-3)]
    assert "; run by run 2.57×, 1.78×)" in bench_report.time_verdict(twice["total"])
    assert total["cpu_ratio_runs"] == []


def test_markdown_shows_the_numbers_the_terminal_prints() -> None:
    results = _results()
    sections = bench_report.summarize(results["runs"], PROJECTS, ["-Oz"], ["single"])
    text = bench_report.render_markdown(results, sections, {"size gain per project": "img/bench-gain.png"})
    assert "`mlcc-tool bench --profile quick`" in text
    assert "2 CPUs (Test CPU)" in text and "load average 0.5 / 0.4 / 0.3" in text
    assert "model: size-Oz.onnx" in text and "clang version 19.1.7" in text
    assert "## -Oz, single-shot" in text
    for row in bench_report.size_rows(sections[0]) + bench_report.time_rows(sections[0]):
        assert "| " + " | ".join(row) + " |" in text
    assert "| alpha | c | 2 | 2 000 | 1 900 | +5.00% | 1 500 | 1 410 | +6.00% | 1/0/1 |" in text
    assert "- beta failed: `make exited 2`" in text
    assert "1.50×" in text and "target ≤ 1.25×: not met" in text
    assert "![size gain per project](img/bench-gain.png)" in text
    assert "## Driver speed" not in text
    assert bench_report.CROSS_BEGIN not in text
    with_cross = bench_report.render_markdown(results, sections, {}, ["## Other targets", "numbers"])
    block = with_cross.split(bench_report.CROSS_BEGIN, 1)[1].split(bench_report.CROSS_END, 1)[0]
    assert block == "\n## Other targets\nnumbers\n"
    assert with_cross.index(bench_report.CROSS_END) < with_cross.index("## Reproduce")


def test_fixed_section_says_what_the_models_choice_adds() -> None:
    results = _results()
    results["runs"]["alpha|mlcc|-Oz|fixed"] = _run("mlcc", "fixed", {"a.o": 950, "b.o": 500, "y.o": 10},
                                                   {"bin/alpha": 1950}, wall=13.0, cpu=17.0)
    sections = bench_report.summarize(results["runs"], PROJECTS, ["-Oz"], ["single", "fixed"])
    fixed = sections[1]
    assert fixed["total"]["artifact_gain"] == pytest.approx(2.5)
    choice = fixed["choice"]  # single-shot (a.o 900, b.o 510) against fixed (950, 500)
    assert choice["projects"] == 1 and choice["artifact_gain"] == pytest.approx(100 * 50 / 1950)
    assert (choice["files_smaller"], choice["files_same"], choice["files_larger"]) == (1, 1, 1)
    text = bench_report.render_markdown(results, sections, {})
    assert "## -Oz, the model's default pipeline on every unit (MLCC_PIPELINE)" in text
    assert bench_report.choice_line(fixed) in text and "linked +2.56%" in bench_report.choice_line(fixed)
    assert "no target" in bench_report.time_verdict(fixed["total"], mode="fixed")
    assert "choice" not in sections[0] and bench_report.choice_line(sections[0]) == ""


def test_fixed_mode_forces_the_bundled_models_default(monkeypatch) -> None:
    monkeypatch.delenv("MLCC_MODEL", raising=False)
    from mlcc import model
    default = model.load(str(model.bundled_model_path("z"))).candidates[0]
    assert bench_builds.fixed_pipeline("-Oz") == default
    env = bench_builds.mlcc_environment({"MLCC_PIPELINE": "clang", "PATH": "/bin"}, "fixed",
                                         Path("log"), Path("cache"), default)
    assert env["MLCC_PIPELINE"] == default and env["MLCC_TRIALS"] == "0"
    assert "MLCC_PIPELINE" not in bench_builds.mlcc_environment({"MLCC_PIPELINE": "clang"}, "single",
                                                                 Path("log"), Path("cache"))


def test_markdown_has_a_driver_speed_table_when_measured() -> None:
    results = _results()
    variants = {name: {"wall": w, "cpu": w * 0.9} for name, w in
                zip(bench_report.DRIVER_VARIANTS, (0.02, 0.01, 0.06, 0.3, 0.2))}
    variants["mlcc no cache"]["stages"] = dict.fromkeys(bench_measure.STAGES, 0.01)
    variants["mlcc no cache"]["overhead"] = 0.24
    results["driver_speed"] = {"date": "2025-01-01 00:00 UTC", "loadavg_before": [0.1, 0.1, 0.1],
                               "command": "mlcc-tool bench --driver-speed",
                               "files": {"tiny.c": {"lines": 20, "runs": 3, "variants": variants}}}
    sections = bench_report.summarize(results["runs"], PROJECTS, ["-Oz"], ["single"])
    text = bench_report.render_markdown(results, sections, {})
    assert "## Driver speed" in text
    assert "| tiny.c (20 lines) | mlcc no cache | 0.30 s | 0.27 s | 15.00× | 15.00× |" in text
    # Start-up (mlcc disabled minus clang, CPU) times the build's 4 mlcc commands.
    assert bench_report.startup_cost(results["driver_speed"]) == pytest.approx(0.036)
    assert "each of its 4 commands: 0.04 s each (driver-speed benchmark), 0.14 s in all" in text
    assert "of which the bare interpreter is 0.01 s" in text


def _tiny_object(text_size: int) -> bytes:
    """A 64-bit little-endian ELF relocatable object with an empty .text of `text_size` bytes."""
    names = b"\0.shstrtab\0.text\0"
    shoff = 64 + len(names)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    header[16:18] = (1).to_bytes(2, "little")  # ET_REL
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)
    sections = [bytes(64),
                struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, 64, len(names), 0, 0, 1, 0),
                struct.pack("<IIQQQQIIQQ", 11, 8, 6, 0, 0, text_size, 0, 0, 16, 0)]
    return bytes(header) + names + b"".join(sections)


def test_objects_on_disk_are_found_and_probes_skipped(tmp_path: Path) -> None:
    for rel in ("src/a.o", "build/CMakeFiles/3.25.1/CompilerIdC/CMakeCCompilerId.o",
                "src/conftest.o"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(_tiny_object(42))
    (tmp_path / "src" / "notes.o").write_text("not an object")
    assert bench_measure.find_objects(tmp_path) == {"src/a.o": 42}
    assert bench_measure.linked_size(tmp_path / "src" / "a.o") == 42


def test_bench_projects_are_not_in_the_model_corpus() -> None:
    projects = bench_builds.load_projects()
    assert len(projects) >= 8
    assert {p.language for p in projects} == {"c", "c++"}
    corpus = bench_builds.corpus_packages()
    assert not {p.package for p in projects} & corpus
    assert 2 <= sum(p.quick for p in projects) <= 3
    with pytest.raises(MlccError, match="corpus"):
        bench_builds.check_not_in_corpus(projects, {projects[0].package})


def test_projects_without_a_recipe_need_steps_and_artifacts(tmp_path: Path) -> None:
    bad = tmp_path / "bench.toml"
    bad.write_text('[[project]]\nname = "x"\npackage = "x"\nlanguage = "c"\n'
                   'steps = [["make"]]\n')
    with pytest.raises(MlccError, match="artifacts"):
        bench_builds.load_projects(bad)


def test_time_verdict_without_optimized_units_blames_start_up_only() -> None:
    total = {"cpu_ratio": 1.4, "wall_ratio": 1.4, "units": 0, "plain_commands": 10,
             "mlcc_cpu": 14.0, "clang_cpu": 10.0}
    text = bench_report.time_verdict(total, startup=0.12, interpreter=0.07)
    assert "not met" in text and "optimized no unit" in text
    assert "10 commands" in text and "1.20 s in all" in text and "bare interpreter is 0.07 s" in text
    assert "three tool processes" not in text


def test_redo_names_a_configuration_of_the_profile(tmp_path: Path) -> None:
    with pytest.raises(MlccError, match="no configuration mlcc -Oz lukewarm"):
        bench.run(profile_name="quick", redo=["mlcc -Oz lukewarm"], json_path=tmp_path / "r.json",
                  workdir=tmp_path / "w", write_docs=False)


def _timed_run(cpu: float, wall: float, objects: dict, ok: bool = True) -> dict:
    return {"ok": ok, "cpu": cpu, "wall": wall, "date": f"d{cpu}", "objects": objects,
            "breakdown": {"codegen": cpu / 2, "overhead": cpu / 4}, "model_servers": {"count": 1, "cpu": cpu / 10}}


def test_repeated_builds_fold_into_their_medians_and_keep_every_run() -> None:
    first = bench_repeats.fold(None, _timed_run(30.0, 9.0, {"a.o": 10}))
    assert bench_repeats.count(first) == 1 and first["cpu"] == 30.0
    second = bench_repeats.fold(first, _timed_run(10.0, 5.0, {"a.o": 10}))
    third = bench_repeats.fold(second, _timed_run(20.0, 7.0, {"a.o": 10}))
    assert bench_repeats.count(third) == 3
    assert [r["cpu"] for r in third["repeats"]] == [30.0, 10.0, 20.0]
    assert (third["cpu"], third["wall"]) == (20.0, 7.0)
    assert third["breakdown"] == {"codegen": 10.0, "overhead": 5.0}
    assert third["model_servers"]["cpu"] == 2.0
    assert "sizes_differ" not in third
    # a plain result from an earlier invocation counts as one run
    topped = bench_repeats.fold(_timed_run(12.0, 4.0, {"a.o": 10}), _timed_run(14.0, 6.0, {"a.o": 10}))
    assert bench_repeats.count(topped) == 2 and topped["cpu"] == 13.0


def test_a_repeated_build_whose_sizes_change_says_which_files() -> None:
    first = bench_repeats.fold(None, _timed_run(10.0, 5.0, {"a.o": 10, "b.o": 20}))
    second = bench_repeats.fold(first, _timed_run(11.0, 5.0, {"a.o": 10, "b.o": 21}))
    assert second["sizes_differ"] == ["b.o"]
    assert second["objects"]["b.o"] == 21
    third = bench_repeats.fold(second, _timed_run(12.0, 5.0, {"a.o": 10, "b.o": 21}))
    assert third["sizes_differ"] == ["b.o"]  # once changed, still said


def test_a_failed_repeat_is_kept_as_the_failure_it_is() -> None:
    first = bench_repeats.fold(None, _timed_run(10.0, 5.0, {"a.o": 10}))
    failed = bench_repeats.fold(first, {"ok": False, "cpu": 1.0, "wall": 1.0, "error": "boom"})
    assert failed["ok"] is False and bench_repeats.count(failed) == 0


def test_repeat_builds_round_by_round_tops_up_and_redo_starts_over(tmp_path: Path, monkeypatch) -> None:
    order = []
    cpu = iter(range(1, 100))

    def build(project, config, tree, jobs):
        # the scheduling alone is under test here: a record the report can read
        order.append(f"{project.name}|{config.label}")
        return {"ok": True, "cpu": float(next(cpu)), "wall": 1.0, "objects": {"x.o": 1}, "artifacts": {}}

    monkeypatch.setattr(bench, "build", build)
    monkeypatch.setattr(bench, "print_tables", lambda *a, **k: None)
    monkeypatch.setattr(bench, "summarize", lambda *a, **k: [])
    results = tmp_path / "r.json"
    kw = dict(profile_name="quick", only=["zlib"], json_path=results, workdir=tmp_path / "w", write_docs=False)
    bench.run(**kw, repeat=2)
    labels = [c.label for c in bench_builds.configs_for(bench.PROFILES["quick"].levels, bench.PROFILES["quick"].modes)]
    assert order == [f"zlib|{label}" for label in labels] * 2  # round by round
    runs = json.loads(results.read_text())["runs"]
    assert all(bench_repeats.count(r) == 2 for r in runs.values())
    order.clear()
    bench.run(**kw, repeat=3)  # each lacks one run
    assert order == [f"zlib|{label}" for label in labels]
    runs = json.loads(results.read_text())["runs"]
    assert all(bench_repeats.count(r) == 3 for r in runs.values())
    order.clear()
    bench.run(**kw, repeat=2, redo=[labels[0]])  # its three runs are dropped for two new ones
    assert order == [f"zlib|{labels[0]}"] * 2
    runs = json.loads(results.read_text())["runs"]
    counts = {k: bench_repeats.count(r) for k, r in runs.items()}
    assert sorted(counts.values()) == [2, *[3] * (len(labels) - 1)]
    assert bench_report._repeat_lines(runs) == [
        "- times: each configuration's CPU and wall seconds are the median of 2 to 3 builds "
        "(`--repeat`; every build's are under `repeats` in the results file)"]
    assert bench_report._repeat_lines({"a": {"ok": True, "cpu": 1.0}}) == []


def test_time_verdict_of_a_warm_rebuild_counts_objects_from_the_cache() -> None:
    total = {"cpu_ratio": 1.04, "wall_ratio": 1.1, "units": 12, "plain_commands": 3,
             "mlcc_cpu": 10.4, "clang_cpu": 10.0, "output_hits": 12}
    text = bench_report.time_verdict(total, mode="warm")
    assert "target ≤ 1.05×: met" in text
    assert "12 of its 12 units took their object from the cache" in text


def test_header_lists_the_build_runs_since_the_last_fresh_start() -> None:
    builds = [{"kind": "build", "command": "mlcc-tool bench --profile full --fresh", "date": "a"},
              {"kind": "build", "command": "mlcc-tool bench --profile full --fresh", "date": "b"},
              {"kind": "build", "command": "mlcc-tool bench --profile full", "date": "c"},
              {"kind": "build", "command": "mlcc-tool bench --redo 'mlcc -Oz warm'", "date": "d"}]
    assert [b["date"] for b in bench_report._since_fresh(builds)] == ["b", "c", "d"]
    assert [b["date"] for b in bench_report._since_fresh(builds[2:])] == ["c", "d"]


def test_a_new_model_for_one_level_redoes_only_that_levels_mlcc_builds(tmp_path):
    identity = {"mlcc": "0.1.0", "clang": "clang 19", "model": {"-Oz": "model A", "-Os": "none"}}
    runs = {key: {"ok": True} for key in ("p|clang|-Oz|-", "p|clang|-Os|-", "p|mlcc|-Oz|single",
                                         "p|mlcc|-Os|single", "p|mlcc|-Os|warm")}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format": bench.RESULTS_FORMAT, "identity": identity,
                                "invocations": [], "runs": runs}))
    same, _ = bench.load_results(path, identity, fresh=False)
    assert set(same["runs"]) == set(runs)
    new_os = {**identity, "model": {"-Oz": "model A", "-Os": "model B"}}
    kept, note = bench.load_results(path, new_os, fresh=False)
    assert set(kept["runs"]) == {"p|clang|-Oz|-", "p|clang|-Os|-", "p|mlcc|-Oz|single"}
    assert kept["identity"] == new_os and "-Os changed" in note
    other_clang = {**identity, "clang": "clang 20"}
    assert bench.load_results(path, other_clang, fresh=False)[0]["runs"] == {}


def test_a_report_covers_the_profile_the_results_were_last_built_with() -> None:
    results = {"invocations": [{"kind": "build", "profile": "full"}, {"kind": "driver-speed", "profile": "quick"},
                               {"kind": "report", "profile": "quick"}]}
    assert bench.report_profile(results) == "full"
    assert bench.report_profile({"invocations": []}) == "quick"


def test_readme_headline_comes_from_the_sections_and_replaces_only_its_block(tmp_path: Path) -> None:
    from mlcc.learn.evaluate import readme_headline

    results = _results()
    # a second project that builds, so that the geometric mean differs from the total
    results["runs"]["beta|mlcc|-Oz|single"] = _run("mlcc", "single", {"c.o": 200}, {"libbeta.so": 200},
                                                   wall=6.0, cpu=5.0)
    sections = bench_report.summarize(results["runs"], PROJECTS, ["-Oz"], ["single", "warm"])
    rows = [r for r in sections[0]["rows"].values() if r["ok"]]
    # alpha 2000 -> 1900 (5 %), beta 400 -> 200 (50 %): total 13.64 %, geomean 1 - sqrt(0.95 * 0.5)
    assert sections[0]["total"]["artifact_gain"] == pytest.approx(100 * 300 / 2400)
    assert readme_headline.geomean_gain(rows) == pytest.approx(100 * (1 - (0.95 * 0.5) ** 0.5))
    lines = readme_headline.render(sections, bench_builds.MODE_TITLES, results["invocations"][0],
                                   "docs/img/bench-gain.png")
    text = "\n".join(lines)
    # CPU: 23 s against 16 s in total; per project 1.5x and 1.25x, geomean sqrt(1.875)
    assert "| `-Oz`, single-shot | +12.50 % | +31.08 % | 1 of 3 | 1.44× (1.37×) |" in text
    assert "median of" not in text
    repeated = "\n".join(readme_headline.render(sections, bench_builds.MODE_TITLES,
                                                 results["invocations"][0], None, repeats=3))
    assert "build CPU is the median of 3 builds of each" in repeated
    assert "warm" not in text  # the headline shows single-shot and trials only
    assert "`mlcc-tool bench --profile quick`" in text and "git abc1234" in text
    assert "![Linked size gain per project](docs/img/bench-gain.png)" in text

    readme = tmp_path / "README.md"
    readme.write_text(f"# mlcc\n\nintro\n\n{readme_headline.BEGIN}\nold figures\n{readme_headline.END}\n\nrest\n")
    assert readme_headline.update(readme, lines)
    written = readme.read_text()
    assert "old figures" not in written and "+31.08 %" in written
    assert written.startswith("# mlcc\n\nintro\n\n") and written.endswith(f"{readme_headline.END}\n\nrest\n")
    plain = tmp_path / "OTHER.md"
    plain.write_text("no markers\n")
    assert not readme_headline.update(plain, lines) and plain.read_text() == "no markers\n"


# --------------------------------------------------------------------------- the cross profile

CROSS_FIXTURE = Path(__file__).parent / "data" / "cross-bench"


@pytest.mark.parametrize("argv, driver, source, target, expected", [
    # output, dependency files, x86-64 flags and -fPIC go; the target's flags come first
    (["-Oz", "-MD", "-MF", "obj/a.d", "-fPIC", "-msse4.2", "-c", "a.c", "-o", "obj/a.o"], "c", "a.c",
     "thumbv7m", ["--target=thumbv7m-none-eabi", "-mcpu=cortex-m3", "-mfloat-abi=soft",
                  "--sysroot=/usr/lib/arm-none-eabi", "-Oz", "-c", "a.c", "-w"]),
    # one command, two sources: the unit's alone
    (["-Oz", "-Iinc", "-c", "a.c", "b.c", "-Wp,-MD,x.d"], "c", "b.c", "riscv32",
     ["--target=riscv32-unknown-elf", "-march=rv32imc", "-mabi=ilp32", "-isystem",
      "/usr/lib/picolibc/riscv64-unknown-elf/include", "-Oz", "-Iinc", "-c", "b.c", "-w"]),
])
def test_a_logged_compile_is_retargeted_alone_without_outputs(argv, driver, source, target, expected) -> None:
    from mlcc import targets
    from mlcc.learn.evaluate import bench_cross

    unit = bench_cross.Unit("obj/x.o", "/w", source, driver, tuple(argv))
    assert bench_cross.cross_command(unit, target) == expected
    assert expected[:len(targets.named(target).flags)] == list(targets.named(target).flags)


def test_cross_profile_on_a_fixture_counts_skipped_units(tmp_path: Path, runtime: Path) -> None:
    """The fixture built for x86-64 by mlcc with its units logged, then compiled for thumbv7m
    with clang-19 and mlcc: net.c needs a header newlib lacks and is skipped for both."""
    import os
    import shutil
    import subprocess

    from mlcc.learn.evaluate import bench_cross
    from mlcc.learn.evaluate import projects as pj

    mlcc = pj.find_compiler("mlcc")
    if mlcc is None or not Path("/usr/lib/arm-none-eabi/include").is_dir():
        pytest.skip("needs mlcc on PATH and newlib for arm-none-eabi (scripts/setup.sh)")
    tree = tmp_path / "x86_64"
    shutil.copytree(CROSS_FIXTURE, tree)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCC_")}
    env.update(MLCC_LOG=str(tree / "mlcc.log"), MLCC_CACHE=str(tmp_path / "cache"),
               XDG_RUNTIME_DIR=str(runtime))
    subprocess.run(["make", f"CC={mlcc}"], cwd=tree, env=env, check=True, capture_output=True, timeout=120)

    units = bench_cross.project_units(tree)
    # tiny sources: clang compiled them alone, and the log names their objects all the same
    assert "tiny source" in (tree / "mlcc.log").read_text()
    assert [u.path for u in units] == ["obj/sum.o", "obj/pic/sum.o", "obj/net.o"]
    assert {u.driver for u in units} == {"c"}
    project = bench_builds.Project("fixture", "fixture", "c", steps=(("make",),), artifacts=("obj/*.o",))
    run = bench_cross.object_suite(project, tree, "thumbv7m", tmp_path / "cross", jobs=2)
    assert run["ok"] and run["units"] == 3
    assert run["duplicates"] == 1  # obj/pic/sum.o is obj/sum.o once -fPIC is dropped
    assert list(run["skipped"]) == ["obj/net.o"] and "sys/socket.h" in run["skipped"]["obj/net.o"]
    assert run["mlcc_failed"] == {}
    for compiler in ("clang", "mlcc"):
        assert list(run[compiler]["objects"]) == ["obj/sum.o"]
        assert 0 < run[compiler]["code"]["obj/sum.o"] <= run[compiler]["objects"]["obj/sum.o"]
        with open(tmp_path / "cross" / "thumbv7m" / compiler / "obj" / "sum.o", "rb") as f:
            head = f.read(20)
        assert head[4] == 1 and int.from_bytes(head[18:20], "little") == 40  # ELF32, EM_ARM

    results = {"identity": bench_cross.environment_identity(), "runs": {"fixture|thumbv7m|objects": run},
               "invocations": [{"kind": "build", "command": "mlcc-tool bench --profile cross",
                                "date": "2025-01-01 00:00 UTC", "git": "abc1234",
                                "machine": {"nproc": 2, "loadavg": [0.5, 0.4, 0.3]}}]}
    [section] = bench_report.summarize_cross(results["runs"], [project])
    assert (section["target"], section["suite"]) == ("thumbv7m", "objects")
    total = section["total"]
    assert total["projects"] == 1 and total["units"] == 2 and total["files"] == 1
    assert total["skipped"] == 1 and total["mlcc_failed"] == 0
    assert total["bytes_clang"] == run["clang"]["objects"]["obj/sum.o"]
    assert total["code_mlcc"] == run["mlcc"]["code"]["obj/sum.o"]
    for key in ("bytes_gain", "geomean_gain", "code_gain"):
        assert total[key] is not None
    # CPU of the paired file's compiles (clang's cc1, mlcc's tools) only, a real figure
    assert run["clang"]["cpu"] > 0 and run["mlcc"]["cpu"] > 0
    assert total["cpu_ratio"] == pytest.approx(run["mlcc"]["cpu"] / run["clang"]["cpu"])
    assert total["files_smaller"] + total["files_same"] + total["files_larger"] == 1
    assert total["reasons"] == {"'sys/socket.h' file not found": 1}
    lines = bench_report.cross_lines(results, [section])
    text = "\n".join(lines)
    assert "| " + " | ".join(bench_report.cross_summary_rows([section])[0]) + " |" in text
    assert "1 skipped" in text and "`'sys/socket.h' file not found` (1)" in text

    # the trials suite: the same compiles with -fmlcc-trials=4, in a directory of its own;
    # clang's pipeline is one of the trials, so no file comes out larger than clang's
    trials = bench_cross.object_suite(project, tree, "thumbv7m", tmp_path / "cross", jobs=2,
                                      suite="objects-trials")
    assert trials["ok"] and trials["suite"] == "objects-trials"
    assert (tmp_path / "cross" / "thumbv7m-objects-trials" / "mlcc" / "obj" / "sum.o").exists()
    assert (tmp_path / "cross" / "thumbv7m" / "mlcc" / "obj" / "sum.o").exists()  # left alone
    assert trials["mlcc"]["objects"]["obj/sum.o"] <= trials["clang"]["objects"]["obj/sum.o"]
    sections = bench_report.summarize_cross({"fixture|thumbv7m|objects": run,
                                             "fixture|thumbv7m|objects-trials": trials}, [project])
    assert [s["suite"] for s in sections] == ["objects", "objects-trials"]
    assert sections[1]["total"]["files_larger"] == 0


def test_a_targets_changed_entry_redoes_only_the_suites_it_made(tmp_path: Path) -> None:
    """Flags or default: every suite of the target. Code generation variants: single-shot
    (objects, linked). Trial sets: the trials suite. Other targets keep their runs."""
    from mlcc.learn.evaluate import bench_cross
    identity = bench_cross.environment_identity()
    path = tmp_path / "cross.json"
    runs = {f"p|{t}|{s}": {"project": "p", "target": t, "suite": s, "ok": True}
            for t in ("thumbv7m", "riscv32") for s in ("objects", "objects-trials")}
    path.write_text(json.dumps({"format": bench_cross.CROSS_FORMAT, "identity": identity, "runs": runs}))

    def kept(change: dict) -> set[str]:
        new = json.loads(json.dumps(identity))
        new["targets"]["thumbv7m"].update(change)
        return set(bench_cross.load_results(path, new, fresh=False)[0]["runs"])

    riscv = {"p|riscv32|objects", "p|riscv32|objects-trials"}
    assert kept({}) == set(runs)
    assert kept({"default": "clang[no-lsr]"}) == riscv
    assert kept({"codegen_variants": ["clang[no-lsr]"]}) == riscv | {"p|thumbv7m|objects-trials"}
    assert kept({"trials": []}) == riscv | {"p|thumbv7m|objects"}
    # recorded before variants and trial sets were part of the identity: none, and today's
    old = json.loads(json.dumps(identity))
    for entry in old["targets"].values():
        del entry["codegen_variants"], entry["trials"]
    assert bench_cross.stale_suites(old["targets"]["riscv32"], identity["targets"]["riscv32"]) == (
        set() if not identity["targets"]["riscv32"]["codegen_variants"] else {"objects", "objects-client", "linked"})


def test_cross_section_goes_before_reproduce_and_is_replaced_in_place() -> None:
    page = "# Benchmarks\n\n## -Oz\n\ntable\n\n## Reproduce\n\nmake bench\n"
    once = bench_report.with_cross_section(page, ["## Other targets", "old"])
    assert once.index(bench_report.CROSS_BEGIN) < once.index("## Reproduce")
    twice = bench_report.with_cross_section(once, ["## Other targets", "new"])
    assert "old" not in twice and "new" in twice and twice.count(bench_report.CROSS_BEGIN) == 1
    assert twice.replace("new", "old") == once


def test_reserved_suites_and_packages_stay_out_of_the_bench() -> None:
    reserved = bench_builds.reserved_names()
    assert {"mibench", "cbench", "embench", "ed", "mawk", "units"} <= reserved
    assert reserved <= bench_builds.corpus_packages()
    projects = bench_builds.load_projects()
    with pytest.raises(MlccError, match="reserved"):
        bench_builds.check_not_in_corpus([bench_builds.Project("Embench", "embench-iot", "c", recipe="x")],
                                         bench_builds.corpus_packages())
    assert sum(p.cross_link for p in projects) >= 2


def test_a_build_through_the_native_client_is_told_as_such(tmp_path: Path) -> None:
    """The `mlcc` a build finds is the native client once setup.sh has run: the run says
    so, and the time verdict does not blame Python's start-up for its commands."""
    script = tmp_path / "mlcc"
    script.write_text("#!/usr/bin/env python3\n")
    native = tmp_path / "mlcc-native"
    native.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9))
    assert bench_builds.entry_of(str(script)) == "python"
    assert bench_builds.entry_of(str(native)) == "client"
    assert bench_builds.entry_of(str(tmp_path / "missing")) == "python"
    breakdown = dict.fromkeys((*bench_report.STAGES, "overhead"), 1.0)
    total = {"cpu_ratio": 1.4, "wall_ratio": 1.3, "units": 10, "plain_commands": 5, "mlcc_cpu": 14.0,
             "clang_cpu": 10.0, "breakdown": breakdown, "server_cpu": 2.0, "entry": "client"}
    text = bench_report.time_verdict(total, startup=0.08, mode="single")
    assert "target ≤ 1.25×: not met" in text
    assert "native client execs clang itself for the 5 pass-through commands" in text
    assert "Python start-up" not in text
    assert "Python start-up" in bench_report.time_verdict({**total, "entry": "python"}, startup=0.08, mode="single")


def test_driver_speed_reads_a_process_cpu_from_proc() -> None:
    """The driver-speed benchmark counts the compile server's CPU by its /proc entry."""
    import os
    cpu = bench_measure._process_cpu(os.getpid())
    assert cpu is not None and cpu > 0
    assert bench_measure._process_cpu(2 ** 22 + 1) is None  # above any pid_max: no such process
    assert bench_measure._servers_cpu(None) == 0.0


def _section(target: str, suite: str, gain: float, geomean: float) -> dict:
    return {"target": target, "suite": suite, "rows": {},
            "total": {"projects": 1, "files": 10, "skipped": 0, "bytes_clang": 1000,
                      "bytes_mlcc": round(1000 * (1 - gain / 100)), "bytes_gain": gain,
                      "geomean_gain": geomean, "code_clang": 500, "code_mlcc": 500, "code_gain": 0.0,
                      "files_smaller": 10, "files_same": 0, "files_larger": 0, "units": 10, "mlcc_failed": 0,
                      "model_pipelines": 0, "fallbacks": 0,
                      "cpu_ratio": None, "reasons": {}}}


def test_room_rows_hold_each_target_to_its_share_of_a_small_room_or_to_the_absolute_bar() -> None:
    sections = [_section("thumbv7m", "objects", 2.0, 3.0), _section("thumbv7m", "objects-trials", 2.7, 4.0),
                _section("thumbv7m", "objects-search", 3.0, 4.0),
                _section("riscv32", "objects", 4.5, 4.0), _section("riscv32", "objects-trials", 5.0, 5.0),
                _section("riscv32", "objects-search", 6.0, 6.0),
                _section("thumbv6m", "objects", 2.0, 2.0)]  # no search: no row
    rows = {r[0]: r for r in bench_report.room_rows(sections)}
    assert set(rows) == {"thumbv7m", "riscv32"}
    # a room under 5 %: 2.0 of 3.0 is 67 % (< 80 %), 2.7 of 3.0 is 90 % (met)
    assert rows["thumbv7m"][4] == "67%" and rows["thumbv7m"][5] == "75%" and rows["thumbv7m"][7] == "90%"
    assert rows["thumbv7m"][8].startswith("not met / met")
    # a room of 5 % or more: the absolute bars, 4.5 ≥ 4 and 5.0 < 6
    assert rows["riscv32"][8].startswith("met / not met")
    lines = bench_report.cross_lines({"identity": {}, "invocations": []}, sections)
    assert "| " + " | ".join(rows["thumbv7m"]) + " |" in lines


def test_the_cross_section_has_plots_as_the_x86_64_section_has(tmp_path: Path) -> None:
    """Per target the gain of every project in each suite, the per-file gains of
    single-shot and each suite's CPU ratio: three PNG files, linked from the section."""
    def section(target: str, suite: str, gain: float, cpu: float | None) -> dict:
        s = _section(target, suite, gain, gain)
        row = {**s["total"], "ok": True, "files": 2, "bytes_gain": gain, "language": "c"}
        s["rows"] = {"zlib": row, "lua": {**row, "bytes_gain": -gain / 2},
                     "gone": {"ok": False, "language": "c", "error": "make failed"}}
        s["total"].update(file_gains=[gain, -0.5, 0.0], cpu_ratio=cpu)
        return s

    sections = [section("thumbv7m", "objects", 2.0, 3.4), section("thumbv7m", "objects-trials", 2.6, 7.3),
                section("riscv32", "objects", 2.3, 3.6), section("aarch64", "linked", 5.6, None)]
    written = bench_report.write_cross_plots(sections, tmp_path / "img")
    assert [p.name for p in written.values()] == list(bench_report.CROSS_PLOT_TITLES.values())
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    plots = {title: f"img/{path.name}" for title, path in written.items()}
    lines = bench_report.cross_lines({"identity": {}, "invocations": []}, sections, plots)
    assert "![CPU per target and suite](img/bench-cross-cpu.png)" in lines
    # no timed suite: no CPU plot; nothing to compare: no plots at all
    untimed = bench_report.write_cross_plots(sections[-1:], tmp_path / "untimed")
    assert list(untimed) == ["size gain per project and target", "distribution of per-file gains per target"]
    assert bench_report.write_cross_plots([], tmp_path / "none") == {} and not (tmp_path / "none").exists()


def test_the_cross_section_breaks_mlccs_cpu_down_by_stage_as_the_x86_64_section_does() -> None:
    run = {"ok": True, "target": "riscv32", "suite": "objects", "units": 3, "duplicates": 0, "skipped": {},
           "mlcc_failed": {},
           "clang": {"objects": {"a.o": 100, "b.o": 50}, "code": {"a.o": 80, "b.o": 40}, "cpu": 2.0},
           "mlcc": {"objects": {"a.o": 90, "b.o": 50}, "code": {"a.o": 70, "b.o": 40}, "cpu": 7.0,
                    "log": {"stages": {"frontend": 0.5, "codegen": 4.0, "opt": 1.0}, "output_hits": 1}}}
    project = bench_builds.Project(name="p", package="p", language="c")
    linked = {**run, "target": "aarch64", "suite": "linked", "clang": {"artifacts": {"x": 10}, "cpu": 1.0},
              "mlcc": {"artifacts": {"x": 9}, "cpu": 2.0}}
    sections = bench_report.summarize_cross({"p|riscv32|objects": run, "p|aarch64|linked": linked}, [project])
    rows = bench_report.cross_time_rows(sections)
    assert len(rows) == 1  # the linked build's CPU is the whole build's: no stages
    row = dict(zip(bench_report.CROSS_TIME_HEADER, rows[0]))
    assert (row["target"], row["suite"], row["objects from the output cache"]) == ("riscv32", "objects", "1")
    assert row["codegen"] == bench_report.fmt_seconds(4.0) and row["model"] == bench_report.fmt_seconds(0.0)
    assert row["CPU mlcc/clang"] == bench_report.fmt_ratio(3.5)
    lines = bench_report.cross_lines({"identity": {}, "invocations": []}, sections)
    assert "| " + " | ".join(rows[0]) + " |" in lines
