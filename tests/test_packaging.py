"""mlcc as a user installs it: a wheel carries the bundled models and uses them,
and an install without them says so once per build instead of falling back silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import mlcc_env

ROOT = Path(__file__).resolve().parents[1]

# Enough code that the unit takes the model's route at the default small-unit threshold.
_SOURCE = "#include <string.h>\n" + "".join(
    f"int f{i}(const char *s, int n) {{ int h = {i};\n"
    "  for (int i = 0; i < n; i++) switch (s[i]) {\n"
    "    case 'a': h = h * 31 + 1; break; case 'b': h ^= h >> 3; break;\n"
    "    case 'c': h += (int)strlen(s); break; default: h -= s[i]; }\n"
    "  return h; }\n" for i in range(40))


def _package_copy(dest: Path, *, with_models: bool) -> Path:
    """What a build of the package sees: pyproject, README and mlcc/, no caches."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", *(() if with_models else ("models",)))
    shutil.copytree(ROOT / "mlcc", dest / "mlcc", ignore=ignore)
    return dest


def _user_env(**extra) -> dict:
    """A user's environment: no PYTHONPATH pointing into a checkout, no MLCC_* settings."""
    env = mlcc_env()
    env.pop("MLCC_SMALL_UNIT")  # the default threshold, as a user has it
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def test_a_wheel_installed_in_a_clean_venv_uses_its_bundled_models(tmp_path: Path):
    source = _package_copy(tmp_path / "src", with_models=True)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("mlcc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"mlcc/models/size-Oz.onnx", "mlcc/models/size-Os.onnx",
            "mlcc/data/feature-schema.json"} <= set(names)
    # the learning side's subpackages and the lists they read (`mlcc-tool bench`, `retrain`)
    assert {"mlcc/learn/evaluate/bench.py", "mlcc/learn/search/search.py",
            "mlcc/learn/data/bench-projects.toml", "mlcc/learn/data/corpus-projects.toml"} <= set(names)

    # A venv of its own holding mlcc from the wheel alone. Its dependencies are those of
    # this test's Python, as plain path entries (no download; the editable install of
    # the checkout is a finder that .pth-processing would load: not processed here).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True,
                   timeout=600, env=_user_env())  # a PYTHONPATH to a checkout would pass for mlcc
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("-packages") and os.path.isdir(p)]
    (Path(site) / "test-dependencies.pth").write_text("".join(p + "\n" for p in ours))
    shutil.rmtree(source)  # nothing may come from the copy the wheel was built from

    work = tmp_path / "work"
    work.mkdir()
    (work / "hash.c").write_text(_SOURCE)
    env = _user_env()
    where = subprocess.run([str(python), "-c", "import mlcc; print(mlcc.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv))
    for level in ("z", "s"):
        # trials ask the bundled model (single-shot runs its default: targets.toml)
        proc = subprocess.run([str(venv / "bin" / "mlcc"), f"-O{level}", "-c", "hash.c",
                               "-fmlcc-verbose", "-fmlcc-trials=2"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "(model " in proc.stderr, proc.stderr
        assert "warning" not in proc.stderr
    version = subprocess.run([str(venv / "bin" / "mlcc-tool"), "--version"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=120)
    assert "model: size-Oz.onnx sha256:" in version.stdout
    assert "model: size-Os.onnx sha256:" in version.stdout


def _is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _mlcc_of(package: Path, bindir: Path, env: dict) -> dict:
    """`env` with `mlcc` running `package`. The Python entry point takes the package
    from PYTHONPATH; a native client (MLCC_TEST_CLIENT=1, or installed by setup.sh) runs the package it was built
    for, whatever PYTHONPATH says, so `package` gets a client of its own, as an install
    of it would."""
    on_path = shutil.which("mlcc", path=env.get("PATH"))
    if os.environ.get("MLCC_TEST_CLIENT") != "1" and not (on_path and _is_elf(on_path)):
        return env
    subprocess.run([sys.executable, "-m", "mlcc.client_build", "--bindir", str(bindir)], env=env,
                   cwd=package, check=True, capture_output=True, timeout=120)
    return {**env, "PATH": f"{bindir}{os.pathsep}{env['PATH']}"}


def test_an_install_without_its_models_says_so_once_per_build(tmp_path: Path, runtime: Path):
    package = _package_copy(tmp_path / "pkg", with_models=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "hash.c").write_text(_SOURCE)
    env = _mlcc_of(package, tmp_path / "bin",
                   _user_env(PYTHONPATH=str(package), XDG_RUNTIME_DIR=str(runtime)))
    # one build: three compiles in one process group, as under make
    build = "mlcc -Oz -c hash.c -o a.o && mlcc -Oz -c hash.c -o b.o && mlcc -Oz -c hash.c -o c.o"
    proc = subprocess.run(["sh", "-c", build], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("mlcc: warning:")]
    assert len(warnings) == 1 and "bundled -Oz model is missing" in warnings[0], proc.stderr
    assert proc.stderr.strip() == warnings[0]
    # the next build says it again
    again = subprocess.run(["mlcc", "-Oz", "-c", "hash.c", "-o", "d.o"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300, start_new_session=True)
    assert "bundled -Oz model is missing" in again.stderr
    subprocess.run(["clang-19", "-Oz", "-c", "hash.c", "-o", "clang.o"], cwd=work, check=True)
    assert (work / "a.o").read_bytes() == (work / "clang.o").read_bytes()
    version = subprocess.run(["mlcc-tool", "--version"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=120)
    assert "the bundled -Oz model is missing" in version.stdout
    assert "the bundled -Os model is missing" in version.stdout
    # asking for no model is not a broken install: nothing to warn about
    quiet = subprocess.run(["mlcc", "-Oz", "-c", "hash.c", "-o", "e.o"], cwd=work,
                           env={**env, "MLCC_MODEL": "none"}, capture_output=True, text=True,
                           timeout=300, start_new_session=True)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_an_unusable_model_is_said_once_per_build(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(os.urandom(4096))
    work = tmp_path / "work"
    work.mkdir()
    (work / "hash.c").write_text(_SOURCE)
    env = mlcc_env(MLCC_MODEL=str(bad))
    build = "mlcc -Oz -c hash.c -o a.o && mlcc -Oz -c hash.c -o b.o -fmlcc-no-cache"
    proc = subprocess.run(["sh", "-c", build], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "is not a valid ONNX model" in lines[0], proc.stderr
