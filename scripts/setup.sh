#!/usr/bin/env bash
# Installs everything mlcc and its tests need on a fresh Debian 12 / Ubuntu
# machine: LLVM 19, the build tools the project tests use, and mlcc itself
# (editable, with its test and training extras). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=0
for tool in clang-19 opt-19 llc-19 llvm-size-19 cmake make csmith valgrind ccache autoreconf python3; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
[ -e /usr/include/csmith/csmith.h ] || need_apt=1
# Cross headers and libraries for the targets of mlcc/data/targets.toml, and qemu-user to run
# cross programs (the target tests, the cross difftest; its bare-metal Arm programs link
# gcc-arm-none-eabi's libgcc and start files, its riscv32 ones gcc-riscv64-unknown-elf's libgcc)
for dir in /usr/lib/arm-none-eabi/include /usr/lib/picolibc/riscv64-unknown-elf/include \
           /usr/aarch64-linux-gnu/include /usr/lib/gcc-cross/aarch64-linux-gnu/12/libstdc++.so \
           /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/libgcc.a \
           /usr/lib/gcc/riscv64-unknown-elf/12.2.0/rv32im/ilp32/libgcc.a; do
  [ -e "$dir" ] || need_apt=1
done
for tool in qemu-aarch64 qemu-arm qemu-riscv32; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
# clang's profile runtime (libclang_rt.profile.a), for profiled builds' instrumented step
[ -e /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.profile-x86_64.a ] || need_apt=1
# LLVM's headers, to build mlcc's pass plugin (mlcc/plugin_build.py)
[ -e /usr/lib/llvm-19/include/llvm/Passes/PassPlugin.h ] || need_apt=1
if [ "$need_apt" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends \
    clang-19 llvm-19 lld-19 cmake make autoconf automake libtool pkg-config \
    python3 python3-pip python3-venv \
    csmith libcsmith-dev valgrind dpkg-dev ccache xz-utils bzip2 ca-certificates \
    libnewlib-arm-none-eabi gcc-arm-none-eabi picolibc-riscv64-unknown-elf gcc-riscv64-unknown-elf \
    libc6-dev-arm64-cross \
    libgcc-12-dev-arm64-cross libstdc++-12-dev-arm64-cross qemu-user libclang-rt-19-dev \
    llvm-19-dev
fi

# deb-src lines let the tests fetch real projects with `apt-get source`.
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
    $SUDO apt-get update -q
  fi
fi

# Debian's own Python refuses system-wide pip installs (PEP 668): use a venv
# in .venv then; the Makefile puts .venv/bin first on PATH when it exists.
if python3 -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) and sys.prefix == sys.base_prefix else 1)'; then
  [ -d .venv ] || python3 -m venv .venv
  PY=.venv/bin/python
else
  PY=python3
fi
$PY -m pip install -q --disable-pip-version-check -e '.[test]'
# Ray (the `ray` extra, a ~80 MB wheel): the learning side's `--engine ray` and its tests
# (tests/test_engine.py), which skip without it. Not every platform has a Ray wheel.
$PY -m pip install -q --disable-pip-version-check -e '.[ray]' \
  || echo "setup: Ray was not installed; the Ray tests of tests/test_engine.py will skip" >&2
# Byte-compile mlcc now: with PYTHONDONTWRITEBYTECODE set (as on some CI machines)
# an editable install would otherwise compile every module from source in every
# compiler process, 25-90 ms each (a wheel install compiles them at install time).
$PY -m compileall -q mlcc
# The native client (mlcc/client/mlcc-client.c, built with clang-19) over the Python
# console scripts mlcc and mlcc++, so that commands run in a warm compile server
# (docs/USAGE.md): the same outputs, less CPU on every measure taken (docs/DESIGN.md),
# and the whole suite runs through it. --no-client keeps the Python scripts; without
# the client mlcc works the same, only slower.
if [ "${1:-}" != "--no-client" ] && [ "${2:-}" != "--no-client" ]; then
  $PY -m mlcc.client_build || echo "setup: the native client was not built; mlcc runs as Python" >&2
fi

# The pass plugin (mlcc/plugin/mlcc-pipeline.cpp, built with clang++-19 against LLVM 19's
# headers): clang runs a chosen pipeline and generates code in one process, the same
# objects as opt and then clang (docs/DESIGN.md). Without it mlcc runs opt and clang.
$PY -m mlcc.plugin_build || echo "setup: the pass plugin was not built; mlcc runs opt and clang apart" >&2

# The clang fork server (mlcc/client/mlcc-fork-server.c, built with clang-19): the compile
# server starts clang once and forks it for each clang run of a unit, without clang's
# start-up (docs/DESIGN.md). Without it each clang run is a process of its own.
$PY -m mlcc.fork_server_build || echo "setup: the clang fork server was not built; clang starts per run" >&2

if [ "${1:-}" = "--demo" ] || [ "${2:-}" = "--demo" ]; then
  PATH="$PWD/.venv/bin:$PATH" $PY scripts/demo.py
fi
