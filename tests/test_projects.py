"""Build real projects with their own build systems using mlcc/mlcc++ and run their test suites.

Every (recipe, optimization level) pair from ``mlcc/learn/evaluate/projects.py`` is built
with ``CC=mlcc CXX=mlcc++``; the test passes when the project's own test
suite passes and mlcc's ``MLCC_LOG`` shows translation units that took the
optimizing path. Sources come from Debian source packages (cached in
``$MLCC_TEST_CACHE``); a failed download fails the test.

Each result is written to ``result.json`` in the test's tmp_path and, when
``MLCC_PROJECT_RESULTS`` names a file, appended to it as a JSON line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlcc.model import bundled_model_path

from mlcc.learn.evaluate import projects

pytestmark = pytest.mark.projects

OPT_LEVELS = ["-Os", "-Oz"]


@pytest.fixture(scope="session")
def mlcc_compilers() -> tuple[str, str]:
    """Return the absolute paths of mlcc and mlcc++ (failing, not skipping, when absent)."""
    cc, cxx = projects.find_compiler("mlcc"), projects.find_compiler("mlcc++")
    if cc is None or cxx is None:
        pytest.fail("mlcc/mlcc++ are not on PATH: install the project (pip install -e . or scripts/setup.sh)")
    return cc, cxx


def _record(result: projects.BuildResult, tmp_path: Path) -> None:
    """Write the result to tmp_path/result.json and append it to $MLCC_PROJECT_RESULTS if set."""
    line = json.dumps(result.to_dict())
    (tmp_path / "result.json").write_text(line + "\n")
    aggregate = os.environ.get("MLCC_PROJECT_RESULTS")
    if aggregate:
        with open(aggregate, "a") as handle:
            handle.write(line + "\n")


@pytest.mark.parametrize("opt", OPT_LEVELS)
@pytest.mark.parametrize("recipe", list(projects.RECIPES))
def test_project_builds_and_passes_its_tests(recipe: str, opt: str, tmp_path: Path,
                                             mlcc_compilers: tuple[str, str]) -> None:
    """The project's own test suite passes and mlcc optimized at least one of its translation units."""
    cc, cxx = mlcc_compilers
    mlcc_log = tmp_path / "mlcc.log"
    try:
        result = projects.build_project(recipe, cc, cxx, opt, tmp_path / "work", mlcc_log=mlcc_log)
    except projects.FetchError as exc:
        pytest.fail(f"cannot download the sources for {recipe}: {exc}", pytrace=False)
    _record(result, tmp_path)
    assert result.passed, result.error

    assert mlcc_log.exists(), f"mlcc wrote no MLCC_LOG ({mlcc_log}) while building {recipe}"
    paths = projects.mlcc_log_paths(mlcc_log)
    if not bundled_model_path(opt[2:]).exists():
        # no model for the level: every compile is clang itself, and the log says why
        assert f'"reason": "no model for {opt}"' in mlcc_log.read_text()
        return
    assert paths["optimize"] >= 1, (
        f"no translation unit of {recipe} took mlcc's optimizing path; MLCC_LOG paths: {dict(paths)}"
    )


def test_rebuild_with_a_warm_cache_takes_every_object_from_it(
        tmp_path: Path, mlcc_compilers: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Lua built, then built again from fresh sources with the same cache: every unit's
    object comes from the cache, the program is the same bytes and passes its tests."""
    cc, cxx = mlcc_compilers
    monkeypatch.setenv("MLCC_CACHE", str(tmp_path / "cache"))
    builds = []
    for name in ("cold", "warm"):
        log = tmp_path / f"{name}.log"
        try:
            result = projects.build_project("lua", cc, cxx, "-Oz", tmp_path / "work", mlcc_log=log)
        except projects.FetchError as exc:
            pytest.fail(f"cannot download the sources for lua: {exc}", pytrace=False)
        assert result.passed, result.error
        units = [json.loads(line) for line in log.read_text().splitlines()]
        units = [u for u in units if u.get("path") == "optimize"]
        builds.append((Path(result.artifact).read_bytes(), [u["output_cache"] for u in units]))
    (cold_program, cold), (warm_program, warm) = builds
    assert warm_program == cold_program
    assert len(warm) == len(cold) >= 30
    assert set(cold) == {"miss"} and set(warm) == {"hit"}


def test_compile_lines_are_found_after_build_tool_prefixes() -> None:
    log = "\n".join([
        "cd /b && /usr/bin/mlcc -DX -Oz -o a.o -c /s/a.c",
        "libtool: compile:  /usr/bin/mlcc -I. -Os -O2 -Oz -c b.c -fPIC -o .libs/b.o",
        "/usr/bin/mlcc -std=gnu99 -Oz -Wall -c -o c.o c.c",
        "checking whether /usr/bin/mlcc understands -c and -o together... yes",
        "/usr/bin/mlcc -o prog a.o b.o",
    ])
    lines = projects.compile_lines(log, ["/usr/bin/mlcc", "/usr/bin/mlcc++"])
    assert [tokens[-1] for tokens in lines] == ["/s/a.c", ".libs/b.o", "c.c"]


def test_mlcc_log_paths_counts_each_translation_unit(tmp_path: Path) -> None:
    log = tmp_path / "mlcc.log"
    log.write_text('{"path": "optimize"}\n{"path": "optimize"}\n{"path": "passthrough"}\n\nnot json\n')
    assert projects.mlcc_log_paths(log) == {"optimize": 2, "passthrough": 1, "<not json>": 1}


LTO_RECIPES = ["zlib-cmake", "lua", "libyaml", "tinyxml2"]


@pytest.mark.parametrize("kind", ["full", "thin"])
@pytest.mark.parametrize("recipe", LTO_RECIPES)
def test_project_builds_with_lto_and_passes_its_tests(recipe: str, kind: str, tmp_path: Path,
                                                      mlcc_compilers: tuple[str, str]) -> None:
    """With -Oz -flto=KIND -fuse-ld=lld through mlcc (mlcc/lto.py) the project's own test
    suite passes; its units took mlcc's route and its links carried mlcc's options."""
    cc, cxx = mlcc_compilers
    mlcc_log = tmp_path / "mlcc.log"
    flags, env = projects.lto_settings(kind, "-Oz", mlcc=True)
    try:
        result = projects.build_project(recipe, cc, cxx, "-Oz", tmp_path / "work", mlcc_log=mlcc_log,
                                        flags=flags, extra_env=env)
    except projects.FetchError as exc:
        pytest.fail(f"cannot download the sources for {recipe}: {exc}", pytrace=False)
    _record(result, tmp_path)
    assert result.passed, result.error
    paths = projects.mlcc_log_paths(mlcc_log)
    assert paths["optimize"] >= 1 and paths["lto-link"] >= 1, dict(paths)
