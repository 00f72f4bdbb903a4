"""The corpus (mlcc/learn/corpus/): the -Os and other targets' units derived from the
collected ones, and the versions of a source package apt knows of."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mlcc.learn.corpus import derive, sources
from mlcc.process import run_tool
from mlcc.toolchain import find


def test_the_os_front_end_is_the_oz_one_without_minsize(tmp_path):
    """An -Oz unit rerun at -Os: same IR but for `minsize`, and no dependency file written."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "a.c").write_text("int twice(int x) { return 2 * x; }\nint main(void) { return twice(3); }\n")
    argv = ["-Oz", "-Wp,-DSEVEN=7", "-MD", "-MF", "a.d", "-c", "a.c", "-o", "a.o"]
    oz = tmp_path / "oz"
    oz.mkdir()
    clang = find("clang")
    run_tool([clang, "-Oz", "-Wp,-DSEVEN=7", "-Xclang", "-disable-llvm-passes", "-emit-llvm", "-c",
              "a.c", "-o", str(oz / "u1.bc")], cwd=build)
    (oz / "u1.json").write_text(json.dumps({
        "id": "u1", "argv": argv, "codegen_args": ["-Oz", "-Wno-unused-command-line-argument"],
        "cwd": str(build), "driver": "c", "language": "c", "opt_level": "z",
        "source": str(build / "a.c")}))
    command = derive.frontend_command(json.loads((oz / "u1.json").read_text()), "s")
    assert "-Os" in command and "-Oz" not in command and "-Wp,-DSEVEN=7" in command
    assert not {"-MD", "-MF", "a.d"} & set(command)

    assert derive.derive_unit((str(oz), str(tmp_path / "os"), "u1", "s", "x86_64")) is None
    meta = json.loads((tmp_path / "os" / "u1.json").read_text())
    assert meta["opt_level"] == "s" and meta["codegen_args"][0] == "-Os" and meta["argv"][0] == "-Os"
    assert not (build / "a.d").exists()

    def ir(path):
        text = run_tool([find("opt"), "-S", str(path), "-o", "-"], capture_stdout=True).stdout.decode()
        return [line for line in text.splitlines() if not line.startswith("; ModuleID")]
    derived, original = ir(tmp_path / "os" / "u1.bc"), ir(oz / "u1.bc")
    assert not any("minsize" in line for line in derived)
    assert any("minsize" in line for line in original)
    assert [line.replace("minsize ", "") for line in original] == derived


def test_deriving_the_os_corpus_skips_units_this_machines_corpus_lacks(tmp_path, monkeypatch):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"units": [{"project": "gone", "id": "u1", "split": "train"}]}))
    monkeypatch.setattr(derive, "MANIFEST_FILE", manifest)
    monkeypatch.setenv("MLCC_DATA", str(tmp_path / "data"))
    result = CliRunner().invoke(derive.main, ["--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "0 units derived for x86_64 at -Os, 0 failed" in result.output
    assert "1 not in the -Oz corpus" in result.output


def test_a_unit_derived_for_another_target_is_compiled_for_it(tmp_path):
    """A collected x86-64 command rerun for thumbv7m: its triple, newlib's headers, the
    x86-only and PIC flags gone from the command and from code generation's flags."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "a.c").write_text("#include <string.h>\nsize_t n(const char *s) { return strlen(s); }\n")
    argv = ["-Oz", "-fPIC", "-msse2", "-c", "a.c", "-o", "a.o"]
    oz = tmp_path / "oz"
    oz.mkdir()
    (oz / "u1.json").write_text(json.dumps({
        "id": "u1", "argv": argv, "codegen_args": ["-Oz", "-fPIC", "-msse2"],
        "cwd": str(build), "driver": "c", "language": "c", "opt_level": "z",
        "source": str(build / "a.c")}))
    assert derive.derive_unit((str(oz), str(tmp_path / "thumb"), "u1", "z", "thumbv7m")) is None
    meta = json.loads((tmp_path / "thumb" / "u1.json").read_text())
    assert meta["target"] == "thumbv7m" and "--target=thumbv7m-none-eabi" in meta["codegen_args"]
    assert not {"-fPIC", "-msse2"} & set(meta["argv"] + meta["codegen_args"])
    text = run_tool([find("opt"), "-S", str(tmp_path / "thumb" / "u1.bc"), "-o", "-"],
                    capture_stdout=True).stdout.decode()
    assert 'target triple = "thumbv7m-unknown-none-eabi"' in text

    (build / "b.c").write_text("#include <sys/socket.h>\nint s(void) { return socket(0, 0, 0); }\n")
    (oz / "u2.json").write_text(json.dumps({
        "id": "u2", "argv": ["-Oz", "-c", "b.c"], "codegen_args": ["-Oz"], "cwd": str(build),
        "driver": "c", "language": "c", "opt_level": "z", "source": str(build / "b.c")}))
    error = derive.derive_unit((str(oz), str(tmp_path / "thumb"), "u2", "z", "thumbv7m"))
    assert error and "b.c" in error  # newlib has no sockets: counted as failed, nothing written
    assert not (tmp_path / "thumb" / "u2.bc").exists()


def test_apt_lists_the_versions_of_a_source_package_for_the_fetch_fallback():
    versions = sources.source_versions("lua5.4")   # deb-src is on (scripts/setup.sh)
    assert versions and all(v[0].isdigit() for v in versions), versions
    assert sources.source_versions("no-such-source-package-mlcc") == []
