"""Targets (mlcc/targets.py, mlcc/data/targets.toml): the unit's target chooses what
decides its pipeline, and a target mlcc has nothing for gets clang's bytes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import mlcc_env
from mlcc import knobs, model, targets
from mlcc.learn.paths import MODELS

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo"
MLCC = shutil.which("mlcc")
SOURCE = "ringbuf.c"  # our own: stdint, string, stddef; above the small-unit threshold


@pytest.mark.parametrize("triple, name", [
    ("x86_64-pc-linux-gnu", "x86_64"),
    ("x86_64-unknown-linux-gnux32", "x86_64"),
    ("thumbv7m-unknown-none-eabi", "thumbv7m"),
    ("thumbv7em-unknown-none-eabihf", "thumbv7m"),
    ("thumbv6m-unknown-none-eabi", "thumbv6m"),
    ("riscv32-unknown-unknown-elf", "riscv32"),
    ("aarch64-unknown-linux-gnu", "aarch64"),
    ("i386-pc-linux-gnu", None),
    ("riscv64-unknown-unknown-elf", None),
    ("armv7-unknown-linux-gnueabihf", None),
])
def test_a_triple_is_the_target_whose_arches_list_its_architecture(triple, name):
    target = targets.of_triple(triple)
    assert (target.name if target else None) == name


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "w"
    shutil.copytree(DEMO, work)
    return work


def _run(argv, work: Path, tmp_path: Path, **extra) -> subprocess.CompletedProcess:
    env = mlcc_env(tmp_path / "cache", XDG_RUNTIME_DIR=str(tmp_path), MLCC_SMALL_UNIT="0", **extra)
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300,
                          start_new_session=True)


@pytest.mark.parametrize("name", [t for t in targets.table() if t != targets.HOST])
def test_each_target_compiles_with_its_headers_and_gets_what_its_entry_says(name, tmp_path):
    """mlcc for a target (its C library's headers from the Debian packages setup.sh
    installs): the log names clang's triple, the decision is the target's measured
    default, and the object is the one that pipeline gives (clang's own bytes for
    `clang`)."""
    from mlcc.objective import object_size

    target = targets.named(name)
    work = _work(tmp_path)
    log = tmp_path / "log.jsonl"
    flags = [*target.flags, "-Oz", "-c", SOURCE]
    proc = _run([MLCC, *flags, "-o", "m.o", f"-fmlcc-log={log}"], work, tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    entry = json.loads(log.read_text().splitlines()[-1])
    assert targets.arch_of(entry["target"]) in target.arches
    default = target.default("z")
    if default == "clang":
        assert entry["pipeline"] == default
        subprocess.run(["clang-19", *flags, "-o", "c.o"], cwd=work, check=True)
        assert (work / "m.o").read_bytes() == (work / "c.o").read_bytes()
        return
    assert entry["decision"].startswith(f"{name} default")
    # the default, its code generation variants and the other pipelines single-shot
    # builds (`also`), each forced: the smallest (the earliest of equals) is what
    # single-shot gives
    objects = []
    for i, pipe in enumerate((default, *target.variants("z"), *target.also_built("z"))):
        forced = _run([MLCC, *flags, "-o", f"f{i}.o", f"-fmlcc-pipeline={pipe}"], work, tmp_path)
        assert forced.returncode == 0, forced.stderr
        objects.append((object_size(work / f"f{i}.o"), i, pipe))
    size, i, pipe = min(objects)
    assert entry["pipeline"] == pipe
    assert (work / "m.o").read_bytes() == (work / f"f{i}.o").read_bytes()
    if target.variants("z"):
        # a variant left out (its knobs act on loops or switches the unit lacks) gives the
        # default's bytes: the same smallest, as the check above shows
        built, left_out = re.search(r", smallest of (\d+) (?:code generations|builds: the default's code "
                                    r"generations)(?: \((\d+) left out[^)]*\))?(?: and [^,]*)?$",
                                    entry["decision"]).groups()
        assert int(built) + int(left_out or 0) == len(objects)


def test_an_unknown_target_gets_clangs_bytes_and_one_warning_per_build(tmp_path):
    work = _work(tmp_path)
    riscv64 = ["--target=riscv64-unknown-elf", "-isystem", "/usr/lib/picolibc/riscv64-unknown-elf/include"]
    build = " && ".join(f"{MLCC} {' '.join(riscv64)} -Oz -c {SOURCE} -o {o}" for o in ("a.o", "b.o"))
    proc = _run(["sh", "-c", build], work, tmp_path)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcc: warning: ") and "riscv64" in lines[0], proc.stderr
    assert "clang's own pipeline" in lines[0] and "Traceback" not in proc.stderr
    subprocess.run(["clang-19", *riscv64, "-Oz", "-c", SOURCE, "-o", "c.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "c.o").read_bytes()


def test_a_model_made_for_another_target_is_refused_with_one_warning(tmp_path):
    """The bundled x86-64 model named for a Thumb compile: clang's pipeline, said once."""
    thumb = list(targets.named("thumbv7m").flags)
    work = _work(tmp_path)
    bundled = str(model.bundled_model_path("z"))
    build = " && ".join(f"{MLCC} {' '.join(thumb)} -Oz -c {SOURCE} -o {o}" for o in ("a.o", "b.o"))
    proc = _run(["sh", "-c", build], work, tmp_path, MLCC_MODEL=bundled)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "made for target x86_64, not thumbv7m" in lines[0], proc.stderr
    subprocess.run(["clang-19", *thumb, "-Oz", "-c", SOURCE, "-o", "c.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "c.o").read_bytes()


def test_version_says_what_each_target_gets(tmp_path):
    proc = _run([MLCC, "--version"], tmp_path, tmp_path)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("mlcc "))
    for name, target in targets.table().items():
        assert f"{name} -Oz " in line
        if name != targets.HOST:
            assert f"{name} -Oz {target.default('z')}" in line


def test_data_stands_for_mlccs_data_directory():
    """{data} in a target's link words is mlcc's data directory (riscv32's linker script),
    and `portable` writes it back so that summaries do not name the checkout."""
    link = targets.named("riscv32").link
    script = next(w for w in link if w.endswith(".ld"))
    assert Path(script).is_file() and Path(script).parent == targets.DATA
    assert targets.portable(script) == "{data}/" + Path(script).name
    assert not any(targets.DATA_WORD in w for t in targets.table().values()
                   for w in (*t.flags, *t.link, *t.emulator))


def test_target_knobs_are_added_only_on_their_targets():
    assert "clang[thumb1-tbb]" in knobs.toggles("clang", "z", "thumbv6m")
    assert "clang[thumb1-tbb]" not in knobs.toggles("clang", "z", "thumbv7m")
    assert not any("arm-promote-constant" in t or "thumb1-tbb" in t for t in knobs.toggles("clang", "z"))
    # a target knob already in a pipeline can always be taken out
    assert "clang" in knobs.toggles("clang[thumb1-tbb]", "z", "x86_64")


@pytest.mark.parametrize("name", [t for t in targets.table() if t != targets.HOST])
def test_a_targets_default_is_its_tuned_one_when_that_beats_clang(name):
    """targets.toml ships the default and trial sets `candidates tune-default` found for
    the target (models/data/default-<target>-Oz.json) only when the default is no worse
    than clang's pipeline in total on training and on validation; else clang's."""
    result_file = MODELS / "data" / f"default-{name}-Oz.json"
    if not result_file.exists():
        assert targets.named(name).default("z") == "clang"
        return
    result = json.loads(result_file.read_text())
    checked = result["checked"]
    wins = all(checked[s]["total_gain_pct"] is not None and checked[s]["total_gain_pct"] >= 0
               for s in ("train", "validation"))
    target = targets.named(name)
    assert target.default("z") == (result["default"] if wins else "clang")
    assert target.trial_sets("z") == (tuple(tuple(s) for s in result["trial_sets"]) if wins else ())


def test_explain_names_the_target_and_what_it_gets(tmp_path):
    work = _work(tmp_path)
    thumb = targets.named("thumbv7m")
    proc = _run(["mlcc-tool", "explain", SOURCE, "--json", *thumb.flags, "-Oz"], work, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["target"].startswith("thumbv7m-") and result["chosen"] == thumb.default("z")
    assert result["codegen_variants"] == list(thumb.variants("z"))
    host = _run(["mlcc-tool", "explain", SOURCE, "--json", "-Oz"], work, tmp_path)
    assert host.returncode == 0, host.stderr
    result = json.loads(host.stdout)
    host_target = targets.named(targets.HOST)
    assert result["target"].startswith("x86_64-")
    assert result["model_choice"] in [c["pipeline"] for c in result["candidates"]]
    if not host_target.asks_model("z"):  # single-shot runs the default; the model ranks trials
        assert result["chosen"] == host_target.default("z")


def test_a_search_on_a_target_without_a_model_starts_from_its_default_and_trials(tmp_path):
    """`-fmlcc-search` tries the target's default and its largest trial set's pipelines
    first, as it tries a model's ranked candidates: it finds at least what trials find."""
    from mlcc.settings import Settings

    thumb = targets.named("thumbv7m")
    work = _work(tmp_path)
    bitcode = tmp_path / "u.bc"
    subprocess.run(["clang-19", *thumb.flags, "-Oz", "-Xclang", "-disable-llvm-passes", "-emit-llvm",
                    "-c", SOURCE, "-o", str(bitcode)], cwd=work, check=True)
    decision = model.choose(str(bitcode), "z", Settings(), triple="thumbv7m-unknown-none-eabi")
    sets = thumb.trial_sets("z")
    assert decision.ranked[0] == decision.pipeline == thumb.default("z")
    assert set(sets[-1]) <= set(decision.ranked) and len(set(decision.ranked)) == len(decision.ranked)


@pytest.mark.parametrize("name", [t for t in targets.table() if t != targets.HOST])
def test_a_target_ships_a_model_only_when_it_beats_its_default(name):
    """A target's model (mlcc/models/size-<target>-Oz.onnx) is bundled only when
    `train model` found it beats the target's default by TARGET_MODEL_MIN_POINTS on
    validation, in total and in project geomean, for every seed
    (models/data/model-<target>-Oz.json); otherwise the default alone ships."""
    from mlcc.learn.train import train

    bundled = model.bundled_model_path("z", name)
    result_file = MODELS / "data" / f"model-{name}-Oz.json"
    if not result_file.exists():
        assert not bundled.exists()
        return
    result = json.loads(result_file.read_text())
    ships = all(train.beats_default(run["validation"] | {"best_single_fixed": run["validation"]["default"]})
                for run in result["seeds"])
    assert result["ships_model"] == ships
    assert bundled.exists() == ships


@pytest.mark.parametrize("name", list(targets.table()))
def test_code_generation_variants_differ_from_the_default_in_code_generation_only(name):
    """So that single-shot builds them all from the default's one opt run."""
    target = targets.named(name)
    opt_side = {"drop", "replace", "append"}
    for level in ("z", "s"):
        default = set(knobs.knobs_of(target.default(level)))
        for variant in target.variants(level):
            changed = set(knobs.knobs_of(variant)) ^ default
            assert changed and not any(opt_side & set(knobs.table()[k]) for k in changed), variant


@pytest.mark.parametrize("name", [t for t in targets.table() if t != targets.HOST])
def test_a_targets_variants_are_the_ones_chosen_for_its_default(name):
    """targets.toml ships the variants `candidates codegen-variants` chose on the
    training units for the shipped default (models/data/codegen-variants-<t>-Oz.json)."""
    from mlcc.learn.candidates import ship_targets
    target = targets.named(name)
    assert list(target.variants("z")) == ship_targets.chosen_variants(name, "z", target.default("z"))


def test_one_opt_run_serves_the_default_and_its_variants(tmp_path):
    thumb = next((t for t in targets.table().values() if t.variants("z")), None)
    if thumb is None:
        pytest.skip("no target ships code generation variants")
    work = _work(tmp_path)
    proc = _run([MLCC, *thumb.flags, "-Oz", "-c", SOURCE, "-o", "m.o"], work, tmp_path, MLCC_TRACE="1")
    assert proc.returncode == 0, proc.stderr
    programs = [Path(line.split()[2]).name for line in proc.stderr.splitlines()
                if line.startswith("mlcc: + ")]
    # and one more for each other pipeline single-shot builds (`also`), unless mlcc's pass
    # plugin runs that one inside clang (mlcc/plugin_build.py)
    from mlcc import plugin_build
    others = 0 if plugin_build.installed(shutil.which("clang-19")) else len(thumb.also_built("z"))
    assert sum(p.startswith("opt") for p in programs) == 1 + others, programs


@pytest.mark.parametrize("name", [t for t in targets.table() if targets.named(t).variants("z")])
def test_trials_keep_at_least_what_single_shot_builds(name, tmp_path):
    """On a target whose single-shot builds more than its default (code generation
    variants, clang's pipeline), `-fmlcc-trials=K` builds those too: its object is never
    larger than single-shot's, and its log says so."""
    from mlcc.objective import object_size

    target = targets.named(name)
    work = _work(tmp_path)
    log = tmp_path / "log.jsonl"
    flags = [*target.flags, "-Oz", "-c", SOURCE, f"-fmlcc-log={log}"]
    for argv in ([*flags, "-o", "single.o"], [*flags, "-o", "trials.o", "-fmlcc-trials=4"]):
        proc = _run([MLCC, *argv], work, tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    single, trials = [json.loads(line) for line in log.read_text().splitlines()]
    assert object_size(work / "trials.o") <= object_size(work / "single.o")
    built = int(re.search(r", best of (\d+) builds: \d+ trials and single-shot's"
                          r"( \(\d+ optimized to an earlier build's module\))?$", trials["decision"]).group(1))
    assert built >= 1 + len(target.trial_sets("z")[-1])


def test_codegen_variants_can_be_turned_off(tmp_path):
    """`-fmlcc-no-codegen-variants` (MLCC_CODEGEN_VARIANTS=0): the default alone, its bytes,
    one code generation; the decision cache keeps the two apart."""
    thumb = next((t for t in targets.table().values() if t.variants("z")), None)
    if thumb is None:
        pytest.skip("no target ships code generation variants")
    work = _work(tmp_path)
    log = tmp_path / "log.jsonl"
    flags = [*thumb.flags, "-Oz", "-c", SOURCE, f"-fmlcc-log={log}"]
    for argv in ([*flags, "-o", "on.o"], [*flags, "-o", "off.o", "-fmlcc-no-codegen-variants"],
                 [*flags, "-o", "forced.o", f"-fmlcc-pipeline={thumb.default('z')}"]):
        proc = _run([MLCC, *argv], work, tmp_path)
        assert proc.returncode == 0, proc.stderr
    on, off, _ = [json.loads(line) for line in log.read_text().splitlines()]
    assert "code generations" in on["decision"] and "code generations" not in off["decision"]
    assert off["pipeline"] == thumb.default("z")
    assert (work / "off.o").read_bytes() == (work / "forced.o").read_bytes()


@pytest.mark.parametrize("level", model.SHIPPED_LEVELS)
def test_single_shot_asks_the_bundled_model_only_when_it_beats_its_default(level):
    """x86-64's bundled models came before the rule a target's model ships by (it must
    beat the target's default by TARGET_MODEL_MIN_POINTS on validation); where one does
    not, single-shot runs its candidate 0 alone (`single_shot = "default"`), and the model
    ranks only trials and search. `default` names that candidate 0, so nothing drifts
    when the model is retrained. A model with trial-only candidates (code generation
    twins: knobs whose `levels` leave this level out, mlcc/learn/candidates/codegen_twins.py)
    scores with them on validation but single-shot may not run them: it ranks trials only."""
    from mlcc.learn.train.train import TARGET_MODEL_MIN_POINTS

    host = targets.named(targets.HOST)
    bundled = model.load(str(model.bundled_model_path(level)))
    validation = json.loads(bundled.metadata()["mlcc.validation"])
    beats = (validation["model"]["total_gain_pct"] - validation["best_single_fixed"]["total_gain_pct"]
             >= TARGET_MODEL_MIN_POINTS)
    trial_only = [c for c in bundled.candidates if knobs.barred(c, level)]
    assert host.asks_model(level) == (beats and not trial_only)
    if not host.asks_model(level):
        assert host.default(level) == bundled.candidates[0]
        assert not any(c in trial_only for c in (bundled.candidates[0], host.default(level)))


def test_single_shot_runs_the_default_without_reading_the_unit(tmp_path, monkeypatch):
    """Where single-shot runs the default alone: no features, no inference, and the
    slow passes bounded as for the model's choice. Search and a model the settings name
    still ask the model; trials read its trial set (and its ranking only when the set
    is not whole: tests/test_model.py)."""
    from mlcc import features
    from mlcc.settings import Settings

    host = targets.named(targets.HOST)
    level = next((lv for lv in model.SHIPPED_LEVELS if not host.asks_model(lv)), None)
    if level is None:
        pytest.skip("every bundled model decides single-shot")
    work = _work(tmp_path)
    bitcode = tmp_path / "u.bc"
    subprocess.run(["clang-19", f"-O{level}", "-Xclang", "-disable-llvm-passes", "-emit-llvm",
                    "-c", SOURCE, "-o", str(bitcode)], cwd=work, check=True)
    asked = model.choose(str(bitcode), level, Settings(server=False, search=4))
    assert asked.source.startswith("model ") and asked.scores
    trials = model.choose(str(bitcode), level, Settings(server=False, trials=2))
    assert trials.source.startswith("model ") and trials.source.endswith("its trial set")
    assert len(trials.trial_sets[1]) == 2

    def unread(*_a, **_k):
        raise AssertionError("single-shot read the unit's features")

    monkeypatch.setattr(features, "extract_features", unread)
    decision = model.choose(str(bitcode), level, Settings(server=False))
    assert decision.pipeline == host.default(level) and not decision.scores
    assert decision.source == "x86_64 default (its model ranks only trials and search)"
    assert decision.slow_size is not None  # counted for the bound on slow passes
    monkeypatch.undo()
    named = model.choose(str(bitcode), level, Settings(server=False, model=str(model.bundled_model_path(level))))
    assert named.source.startswith("model ")
    # what the cache keys decisions by tells the two apart
    assert (model.identity_for(level, Settings()) !=
            model.identity_for(level, Settings(trials=2)))


@pytest.mark.parametrize("name", [t for t in targets.table() if targets.named(t).also_built("z")])
def test_single_shot_with_clangs_pipeline_beside_makes_no_object_larger_than_clangs(name, tmp_path):
    """Where a target's single-shot also builds clang's own pipeline, no object it keeps is
    larger than clang's, and where clang's is the smallest the bytes are clang's."""
    from mlcc.objective import object_size

    target = targets.named(name)
    assert "clang" in target.also_built("z")
    work = _work(tmp_path)
    log = tmp_path / "log.jsonl"
    for source in sorted(p.name for p in DEMO.glob("*.c")):
        flags = [*target.flags, "-Oz", "-c", source]
        proc = _run([MLCC, *flags, "-o", "m.o", f"-fmlcc-log={log}"], work, tmp_path)
        assert proc.returncode == 0, proc.stderr
        subprocess.run(["clang-19", *flags, "-o", "c.o"], cwd=work, check=True)
        entry = json.loads(log.read_text().splitlines()[-1])
        assert "clang's pipeline" in entry["decision"], entry["decision"]
        assert object_size(work / "m.o") <= object_size(work / "c.o"), source
        if entry["pipeline"] == "clang":
            assert (work / "m.o").read_bytes() == (work / "c.o").read_bytes(), source
