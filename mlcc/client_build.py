"""Build the native client (mlcc/client/mlcc-client.c) with the clang mlcc drives,
and install it as `mlcc` and `mlcc++`.

The client carries what it needs to know as compile-time constants: the Python
that runs mlcc, this package's directory (for its fallback and for starting the
server) and the server's socket name, which hashes the Python (its binary and
prefix, whatever name it was started by), the directory and the protocol
(`compile_server.socket_name`). So a client belongs to one mlcc install; after
moving or reinstalling mlcc (a `pip install` writes Python console scripts over
it), run `mlcc-tool install-client` again. Edits and upgrades of mlcc in place
need nothing: the server notices them (`compile_server.stamp`).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
from pathlib import Path

from mlcc import compile_server

SOURCE = Path(__file__).parent / "client" / "mlcc-client.c"
NAMES = {"c": "mlcc", "c++": "mlcc++"}
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra")


def _c_string(text: str) -> str:
    out = []
    for byte in os.fsencode(text):
        ch = chr(byte)
        out.append(ch if 0x20 <= byte < 0x7f and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def config_header(driver: str, parent: str | None = None) -> str:
    """mlcc-client-config.h for the client of `driver` ("c" or "c++") run by this Python."""
    parent = parent or compile_server.package_parent()
    path_setup = (f"import sys; sys.path[:] = [{parent!r}] + [p for p in sys.path if p]; ")
    entry = "main_cxx" if driver == "c++" else "main_c"
    fallback = path_setup + f"del sys.argv[0]; from mlcc.cli import {entry}; {entry}()"
    server = path_setup + "from mlcc.compile_server import main; sys.exit(main())"
    values = {
        "MLCC_PYTHON": _c_string(sys.executable),
        "MLCC_FALLBACK_CODE": _c_string(fallback),
        "MLCC_SERVER_CODE": _c_string(server),
        "MLCC_SOCKET_NAME": _c_string(compile_server.socket_name(parent)),
        "MLCC_DEFAULT_DRIVER": _c_string(driver),
        "MLCC_PROTOCOL": str(compile_server.PROTOCOL),
        "MLCC_RETRY_AFTER": str(int(compile_server.RETRY_AFTER)),
        "MLCC_START_WAIT": str(int(compile_server.START_WAIT)),
    }
    return ("/* written by mlcc/client_build.py */\n"
            + "".join(f"#define {k} {v}\n" for k, v in values.items()))


def build(out_dir, clang: str | None = None) -> list[Path]:
    """Compile `mlcc` and `mlcc++` into `out_dir` (each replaced whole, by rename);
    return their paths. Raises ToolFailed or ToolchainMissing."""
    from mlcc.process import run_tool
    from mlcc.toolchain import find
    clang = clang or find("clang")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    with tempfile.TemporaryDirectory(prefix="mlcc-client-") as tmp:
        for driver, name in NAMES.items():
            include = Path(tmp) / driver.replace("+", "x")
            include.mkdir()
            (include / "mlcc-client-config.h").write_text(config_header(driver))
            partial = out_dir / f".{name}.{os.getpid()}.tmp"
            try:
                run_tool([clang, *CFLAGS, "-I", str(include), str(SOURCE), "-o", str(partial)],
                         capture_stderr=True)
                os.replace(partial, out_dir / name)
            finally:
                if partial.exists():
                    partial.unlink()
            built.append(out_dir / name)
    return built


def default_bindir() -> Path:
    """Where this Python's console scripts live (`mlcc` among them)."""
    return Path(sysconfig.get_path("scripts"))


def is_client(path) -> bool:
    """True when `path` is a native client of this very mlcc install."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    name = compile_server.socket_name(compile_server.package_parent())
    return data[:4] == b"\x7fELF" and name.encode() in data


def main(argv=None) -> int:
    """`python -m mlcc.client_build [--bindir DIR]` (scripts/setup.sh)."""
    import argparse
    from mlcc.errors import MlccError
    parser = argparse.ArgumentParser(description="Build and install mlcc's native client.")
    parser.add_argument("--bindir", type=Path, default=None,
                        help="where to put mlcc and mlcc++ (default: this Python's scripts)")
    args = parser.parse_args(argv)
    try:
        for path in build(args.bindir or default_bindir()):
            print(f"installed {path}")
    except (MlccError, OSError) as exc:
        print(f"mlcc: error: cannot build the native client: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
