"""The small error hierarchy of mlcc.

Helpers raise these; only the console entry points turn them into exit codes
and one-line `mlcc:` messages.
"""

from __future__ import annotations


class MlccError(Exception):
    """Base of every error mlcc reports to the user; the message says what to do."""

    exit_code = 1


class UsageError(MlccError):
    """A -fmlcc-* option or MLCC_* setting has an invalid value."""


class ToolchainMissing(MlccError):
    """An LLVM tool (clang-19, opt-19, ...) could not be found."""


class ToolFailed(MlccError):
    """An external tool exited non-zero, crashed or timed out."""

    def __init__(self, argv, returncode, stderr="", timed_out=False):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr or ""
        self.timed_out = timed_out
        tool = self.argv[0] if self.argv else "?"
        if timed_out:  # True, or the limit in seconds
            what = "timed out" + ("" if timed_out is True else f" after {timed_out:.0f} s")
        elif returncode is not None and returncode < 0:
            what = f"was killed by signal {-returncode}"
        else:
            what = f"exited with code {returncode}"
        last = self.stderr.strip().splitlines()[-1:] or [""]
        detail = f": {last[0]}" if last[0] else ""
        super().__init__(f"{tool} {what}{detail}")

    @property
    def exit_code(self):  # type: ignore[override]
        """The code mlcc exits with when this stage decides the outcome."""
        if self.returncode is None or self.returncode == 0:
            return 1
        if self.returncode < 0:
            return 128 - self.returncode
        return self.returncode


class OutputClosed(MlccError):
    """The reader of `-o -` went away: clang exits 74 (EX_IOERR) and says nothing."""

    exit_code = 74


class FeatureError(MlccError):
    """A bitcode file could not be read or parsed for its features."""


class WorkerMismatch(MlccError):
    """A worker of the learning side's engine has another LLVM than the head."""


class ModelError(MlccError):
    """The model file is missing, unreadable or does not fit this mlcc."""


class ModelMismatch(ModelError):
    """The model was made for another LLVM, feature schema or objective."""
