"""The size objective: bytes of code and initialized data in an object file.

One function, `object_size`, used everywhere sizes are compared (the model's
labels, trials, search, benchmarks): the summed sizes of the `.text`, `.data`
and `.rodata` sections, including their `.text.*`-style subsections (as
-ffunction-sections/-fdata-sections and mergeable strings produce them).
Read straight from the ELF section headers: no tool run, no text parsing.
"""

from __future__ import annotations

import struct

COUNTED_SECTIONS = (".text", ".data", ".rodata")


def counts(name: str) -> bool:
    """True for .text/.data/.rodata and their subsections (`.rodata.str1.1`, `.text.f`)."""
    return any(name == base or name.startswith(base + ".") for base in COUNTED_SECTIONS)


def sections(data: bytes) -> list[tuple[str, int, int, int]]:
    """(name, type, file offset, size) of each section of an ELF relocatable object
    (32/64-bit, either endianness), in the section header table's order."""
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        entry = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
        entry = endian + "IIIIIIIIII"
    headers = [struct.unpack_from(entry, data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[str_off:str_off + str_size]
    found = []
    for h in headers:
        name_off = h[0]
        end = names.find(b"\0", name_off)
        found.append((names[name_off:end].decode("ascii", errors="replace"), h[1], h[4], h[5]))
    return found


def section_sizes(data: bytes) -> dict[str, int]:
    """{section name: size} of an ELF relocatable object (32/64-bit, either endianness)."""
    sizes: dict[str, int] = {}
    for name, _, _, size in sections(data):
        sizes[name] = sizes.get(name, 0) + size
    return sizes


def data_size(path, constant_pools: bool = True) -> int:
    """The initialized-data part of the objective: bytes of .data/.rodata (with subsections).
    Without `constant_pools`, less the `.rodata.cst*` sections code generation fills with
    the constants its instructions load (vector and floating-point literals)."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(size for name, size in section_sizes(data).items()
               if counts(name) and not (name == ".text" or name.startswith(".text."))
               and (constant_pools or not name.startswith(".rodata.cst")))


def object_size(path) -> int:
    """The objective: total bytes of .text/.data/.rodata (with subsections) in `path`."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(size for name, size in section_sizes(data).items() if counts(name))
