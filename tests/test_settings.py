"""Table-driven tests of `mlcc.settings`: `-fmlcc-*` flags, `MLCC_*` variables,
the config file, and their precedence (flag > environment > config > default).
"""

from __future__ import annotations

import pytest

from mlcc.errors import UsageError
from mlcc.settings import Settings, load, split_mlcc_flags


def _params(cases, bugs=None):
    bugs = bugs or {}
    for case_id, *rest in cases:
        marks = [pytest.mark.xfail(reason=bugs[case_id], strict=True)] if case_id in bugs else []
        yield pytest.param(*rest, id=case_id, marks=marks)


@pytest.fixture
def settings_for(tmp_path, monkeypatch):
    """Settings from a config file's text, environment variables and command-line flags.

    The environment is exactly `env` plus MLCC_CONFIG (when `config` is given) and an
    empty XDG_CONFIG_HOME, so the user's own configuration never leaks in.
    """
    monkeypatch.chdir(tmp_path)

    def make(config=None, env=None, argv=()):
        environ = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        if config is not None:
            path = tmp_path / "mlcc.toml"
            path.write_text(config)
            environ["MLCC_CONFIG"] = str(path)
        environ.update(env or {})
        _, flags = split_mlcc_flags(list(argv))
        return load(flags, environ)

    return make


# --- Stripping -fmlcc-* from the command line --------------------------------

# id, argv, argv left for clang, {setting: raw value}
SPLIT_CASES = [
    ("nothing", ["-Oz", "-c", "foo.c"], ["-Oz", "-c", "foo.c"], {}),
    ("bare-flag-is-true", ["-fmlcc-verbose", "-c", "foo.c"], ["-c", "foo.c"], {"verbose": "1"}),
    ("value", ["-fmlcc-trials=3", "foo.c"], ["foo.c"], {"trials": "3"}),
    ("no-form-is-false", ["-fmlcc-no-verbose"], [], {"verbose": "0"}),
    ("no-disable", ["-fmlcc-no-disable", "foo.c"], ["foo.c"], {"disable": "0"}),
    ("empty-value", ["-fmlcc-model="], [], {"model": ""}),
    ("value-with-equals", ["-fmlcc-log=/tmp/a=b.jsonl"], [], {"log": "/tmp/a=b.jsonl"}),
    ("last-wins", ["-fmlcc-trials=1", "-fmlcc-trials=2"], [], {"trials": "2"}),
    ("bare-trials-is-the-measured-default", ["-fmlcc-trials", "foo.c"], ["foo.c"], {"trials": "3"}),
    ("order-kept", ["-Oz", "-fmlcc-verbose", "-c", "-fmlcc-disable", "foo.c", "-o", "x.o"],
     ["-Oz", "-c", "foo.c", "-o", "x.o"], {"verbose": "1", "disable": "1"}),
    ("look-alikes-kept", ["-fmlcc", "-fmlccverbose", "-fno-mlcc-verbose", "-mlcc-verbose"],
     ["-fmlcc", "-fmlccverbose", "-fno-mlcc-verbose", "-mlcc-verbose"], {}),
    # A setting whose own name starts with "no-" is switched on by its flag.
    ("no-cache-setting", ["-fmlcc-no-cache", "-c", "foo.c"], ["-c", "foo.c"], {"no-cache": "1"}),
]

SETTINGS_BUGS = {}


@pytest.mark.parametrize("argv, rest, found", list(_params(SPLIT_CASES, SETTINGS_BUGS)))
def test_split_mlcc_flags(argv, rest, found):
    assert split_mlcc_flags(argv) == (rest, found)


@pytest.mark.parametrize("flag", ["-fmlcc-foo", "-fmlcc-no-foo", "-fmlcc-foo=1", "-fmlcc-",
                                  "-fmlcc-no-verbose=1", "-fmlcc-Verbose"])
def test_unknown_flag_is_a_usage_error(flag):
    with pytest.raises(UsageError, match="unknown option"):
        split_mlcc_flags(["-c", flag, "foo.c"])


def test_every_setting_has_a_flag():
    for name in Settings.names():
        _, found = split_mlcc_flags([f"-fmlcc-{name}=1"])
        assert found == {name: "1"}


# --- Precedence: flag > environment > config file > default ------------------

# id, config file text (None: no file), environment, flags, setting, expected value
PRECEDENCE_CASES = [
    ("default", None, {}, [], "trials", 0),
    ("default-timeout", None, {}, [], "timeout", 600.0),
    ("config", "trials = 3\n", {}, [], "trials", 3),
    ("env-over-default", None, {"MLCC_TRIALS": "5"}, [], "trials", 5),
    ("env-over-config", "trials = 3\n", {"MLCC_TRIALS": "5"}, [], "trials", 5),
    ("flag-over-env", "trials = 3\n", {"MLCC_TRIALS": "5"}, ["-fmlcc-trials=7"], "trials", 7),
    ("flag-over-config", "trials = 3\n", {}, ["-fmlcc-trials=7"], "trials", 7),
    ("config-bool", "verbose = true\n", {}, [], "verbose", True),
    ("env-bool-over-config", "verbose = true\n", {"MLCC_VERBOSE": "0"}, [], "verbose", False),
    ("env-bool-words", None, {"MLCC_VERBOSE": "yes"}, [], "verbose", True),
    ("no-flag-over-env", None, {"MLCC_VERBOSE": "1"}, ["-fmlcc-no-verbose"], "verbose", False),
    ("flag-over-env-bool", None, {"MLCC_VERBOSE": "off"}, ["-fmlcc-verbose"], "verbose", True),
    ("disable-env", None, {"MLCC_DISABLE": "1"}, [], "disable", True),
    ("config-dashed-key", "no-cache = true\n", {}, [], "no_cache", True),
    ("config-underscored-key", "no_cache = true\n", {}, [], "no_cache", True),
    ("env-underscored-name", None, {"MLCC_NO_CACHE": "true"}, [], "no_cache", True),
    ("config-float", "timeout = 30\n", {}, [], "timeout", 30.0),
    ("env-float-over-config", "timeout = 30\n", {"MLCC_TIMEOUT": "2.5"}, [], "timeout", 2.5),
    ("config-string", "model = 'm.onnx'\n", {}, [], "model", "m.onnx"),
    ("flag-string-over-all", "model = 'a.onnx'\n", {"MLCC_MODEL": "b.onnx"},
     ["-fmlcc-model=c.onnx"], "model", "c.onnx"),
    ("settings-are-independent", "trials = 3\nverbose = true\n", {"MLCC_SEARCH": "4"},
     ["-fmlcc-no-verbose"], "trials", 3),
]


@pytest.mark.parametrize("config, env, argv, name, expected", list(_params(PRECEDENCE_CASES)))
def test_precedence(settings_for, config, env, argv, name, expected):
    value = getattr(settings_for(config, env, argv), name)
    assert value == expected and type(value) is type(expected)


def test_nothing_given_is_the_defaults(settings_for):
    assert settings_for() == Settings()


def test_xdg_config_file(tmp_path, monkeypatch):
    (tmp_path / "xdg" / "mlcc").mkdir(parents=True)
    (tmp_path / "xdg" / "mlcc" / "config.toml").write_text("trials = 4\n")
    (tmp_path / "explicit.toml").write_text("trials = 6\n")
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert load({}, xdg).trials == 4
    assert load({}, {**xdg, "MLCC_CONFIG": str(tmp_path / "explicit.toml")}).trials == 6


# --- Invalid values ----------------------------------------------------------

# id, config file text, environment, flags
INVALID_CASES = [
    ("env-int-text", None, {"MLCC_TRIALS": "abc"}, []),
    ("env-int-negative", None, {"MLCC_TRIALS": "-1"}, []),
    ("flag-int-text", None, {}, ["-fmlcc-trials=x"]),
    ("flag-int-float", None, {}, ["-fmlcc-search=1.5"]),
    ("flag-bool-word", None, {}, ["-fmlcc-verbose=maybe"]),
    ("env-bool-word", None, {"MLCC_DISABLE": "perhaps"}, []),
    ("env-timeout-zero", None, {"MLCC_TIMEOUT": "0"}, []),
    ("flag-timeout-negative", None, {}, ["-fmlcc-timeout=-3"]),
    ("env-timeout-nan", None, {"MLCC_TIMEOUT": "nan"}, []),
    ("config-int-text", "trials = 'many'\n", {}, []),
    ("config-int-bool", "trials = true\n", {}, []),
    ("config-bool-word", "verbose = 'perhaps'\n", {}, []),
    ("config-unknown-key", "colour = 1\n", {}, []),
    ("config-broken-toml", "trials = \n", {}, []),
    ("config-file-missing", None, {"MLCC_CONFIG": "does-not-exist.toml"}, []),
    # A valid flag does not hide an invalid environment value.
    ("env-invalid-under-flag", None, {"MLCC_TRIALS": "abc"}, ["-fmlcc-trials=2"]),
]

INVALID_BUGS = {}


@pytest.mark.parametrize("config, env, argv", list(_params(INVALID_CASES, INVALID_BUGS)))
def test_invalid_values(settings_for, config, env, argv):
    with pytest.raises(UsageError):
        settings_for(config, env, argv)


def test_usage_error_names_the_source(settings_for):
    with pytest.raises(UsageError, match="MLCC_TRIALS"):
        settings_for(env={"MLCC_TRIALS": "abc"})
    with pytest.raises(UsageError, match="-fmlcc-verbose"):
        settings_for(argv=["-fmlcc-verbose=maybe"])
    with pytest.raises(UsageError, match="mlcc.toml"):
        settings_for(config="trials = 'many'\n")
