"""Reading a module's bitcode: the one door to LLVM's bitcode reader (through
:mod:`llvmlite.binding`), and the cheap facts a compile needs without features.

`ir_counts` walks a module for the model's features with the raw entry points here.
`shape` reads only what a decision needs when no model runs: the instruction count
that bounds slow passes (the `TotalInsts` feature, counted the same way), whether the
control flow has a cycle and the largest switch, which say whether a code generation
variant can change anything (`knobs.acts_on`). It imports no numpy: on a target
without a model the compile pays only for llvmlite and the walk.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from dataclasses import dataclass
from functools import partial

from mlcc.errors import FeatureError


class Api:
    """ctypes prototypes on llvmlite's shared library, taking and returning
    plain integers, so that the hot loop does not build llvmlite objects."""

    def __init__(self) -> None:
        import llvmlite.binding as llvm
        from llvmlite.binding import ffi

        self.llvm = llvm
        # The same shared object llvmlite loaded (dlopen returns the same
        # handle), with function objects of our own so that llvmlite's
        # argtypes stay untouched.  PyDLL: these calls are short and never
        # call back into Python, so they keep the GIL (releasing and taking
        # it again would cost more than most of the calls themselves).
        lib = ctypes.PyDLL(ffi.lib._name)
        lock = getattr(ffi.lib, "_lock", None)
        self.lock = lock if lock is not None else contextlib.nullcontext()
        vp = ctypes.c_void_p
        # Handles come back as plain ints, NULL as 0 (c_size_t, not
        # c_void_p, which would give None): 0 is the end-of-iteration
        # sentinel and ir_counts' numpy arrays of pointers need no filtering of None.
        h = ctypes.c_size_t

        class _OwnedStr(ctypes.c_char_p):
            # A subclass so that ctypes hands back the object (not bytes):
            # we read .value and free the pointer ourselves.
            pass

        def fn(name, restype, *argtypes):
            f = getattr(lib, name)
            f.restype = restype
            f.argtypes = list(argtypes)
            return f

        self.functions_iter = fn("LLVMPY_ModuleFunctionsIter", h, vp)
        self.functions_next = fn("LLVMPY_FunctionsIterNext", h, vp)
        self.functions_dispose = fn("LLVMPY_DisposeFunctionsIter", None, vp)
        self.globals_iter = fn("LLVMPY_ModuleGlobalsIter", h, vp)
        self.globals_next = fn("LLVMPY_GlobalsIterNext", h, vp)
        self.globals_dispose = fn("LLVMPY_DisposeGlobalsIter", None, vp)
        self.blocks_iter = fn("LLVMPY_FunctionBlocksIter", h, vp)
        self.blocks_next = fn("LLVMPY_BlocksIterNext", h, vp)
        self.blocks_dispose = fn("LLVMPY_DisposeBlocksIter", None, vp)
        self.insts_iter = fn("LLVMPY_BlockInstructionsIter", h, vp)
        self.insts_next = fn("LLVMPY_InstructionsIterNext", h, vp)
        self.insts_dispose = fn("LLVMPY_DisposeInstructionsIter", None, vp)
        self.ops_iter = fn("LLVMPY_InstructionOperandsIter", h, vp)
        self.ops_next = fn("LLVMPY_OperandsIterNext", h, vp)
        self.ops_dispose = fn("LLVMPY_DisposeOperandsIter", None, vp)
        self.attrs_iter = fn("LLVMPY_FunctionAttributesIter", h, vp)
        self.attrs_next = fn("LLVMPY_AttributeListIterNext", _OwnedStr, vp)
        self.attrs_dispose = fn("LLVMPY_DisposeAttributeListIter", None, vp)
        self.opcode_name = fn("LLVMPY_GetOpcodeName", _OwnedStr, vp)
        self.value_name = fn("LLVMPY_GetValueName", ctypes.c_char_p, vp)
        self.dispose_string = fn("LLVMPY_DisposeString", None, _OwnedStr)
        self.value_kind = fn("LLVMPY_GetValueKind", ctypes.c_int, vp)
        self.is_declaration = fn("LLVMPY_IsDeclaration", ctypes.c_int, vp)
        self.linkage = fn("LLVMPY_GetLinkage", ctypes.c_int, vp)
        self.type_of = fn("LLVMPY_TypeOf", h, vp)
        self.global_value_type = fn("LLVMPY_GlobalGetValueType", h, vp)
        self.return_type = fn("LLVMPY_GetReturnType", h, vp)
        self.is_vararg = fn("LLVMPY_IsFunctionVararg", ctypes.c_int, vp)
        self.type_kind = fn("LLVMPY_GetTypeKind", ctypes.c_int, vp)
        self.type_bit_width = fn("LLVMPY_GetTypeBitWidth", ctypes.c_uint64, vp)
        self.const_int_words = fn("LLVMPY_GetConstantIntNumWords", ctypes.c_uint, vp)
        self.const_int_raw = fn(
            "LLVMPY_GetConstantIntRawValue", ctypes.POINTER(ctypes.c_uint64), vp, ctypes.POINTER(ctypes.c_bool)
        )
        self.abi_size = fn("LLVMPY_ABISizeOfType", ctypes.c_longlong, vp, vp)


_API: Api | None = None
_API_LOCK = threading.Lock()


def api() -> Api:
    global _API
    if _API is None:
        with _API_LOCK:
            if _API is None:
                _API = Api()
    return _API


def iterate(api_next, it) -> list:
    """All values of an llvmlite iterator handle, as integer pointers."""
    return list(iter(partial(api_next, it), 0))


def pointer(obj) -> int:
    return ctypes.cast(obj._ptr, ctypes.c_void_p).value


def read_bitcode(path) -> tuple[bytes, str]:
    """The bytes of a bitcode file and its name for messages; raises FeatureError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FeatureError(f"cannot read bitcode file {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    if not data:
        raise FeatureError(f"cannot parse {os.fspath(path)!r}: empty file")
    return data, os.fspath(path)


@contextlib.contextmanager
def open_module(data: bytes, shown: str):
    """The module in `data` (bitcode; `shown` names it in errors) as llvmlite's module,
    in a context of its own, closed on leaving. Raises FeatureError when it is not
    LLVM bitcode."""
    a = api()
    llvm = a.llvm
    with a.lock:
        ctx = llvm.create_context()
        try:
            try:
                mod = llvm.parse_bitcode(data, context=ctx)
            except RuntimeError as exc:
                # llvmlite: "LLVM bitcode parsing error\n<LLVM's message>"
                lines = str(exc).splitlines()[1:] or ["not LLVM bitcode"]
                detail = " ".join(" ".join(lines).split())
                raise FeatureError(f"cannot parse {shown!r} as LLVM bitcode: {detail}") from None
            try:
                yield mod
            finally:
                mod.close()
        finally:
            ctx.close()


@dataclass(frozen=True)
class Shape:
    """What `shape` reads of a module."""

    instructions: int     # of its defined functions: the TotalInsts feature
    largest_function: int  # instructions of its largest function: the max_func_insts feature
    has_cycle: bool       # some function's control flow has a cycle (so maybe a loop)
    largest_switch: int   # cases of its largest switch with two or more (0: none)


def shape(path) -> Shape:
    """The `Shape` of the bitcode at `path`; raises FeatureError."""
    data, shown = read_bitcode(path)
    a = api()
    with open_module(data, shown) as mod:
        return _shape(a, pointer(mod))


def _shape(a: Api, mod: int) -> Shape:
    instructions = largest_switch = largest_function = 0
    has_cycle = False
    it = a.functions_iter(mod)
    try:
        functions = iterate(a.functions_next, it)
    finally:
        a.functions_dispose(it)
    for f in functions:
        if a.is_declaration(f):
            continue
        it = a.blocks_iter(f)
        try:
            blocks = iterate(a.blocks_next, it)
        finally:
            a.blocks_dispose(it)
        position = {b: k for k, b in enumerate(blocks)}
        before = instructions
        for k, block in enumerate(blocks):
            it = a.insts_iter(block)
            try:
                insts = iterate(a.insts_next, it)
            finally:
                a.insts_dispose(it)
            instructions += len(insts)
            if not insts:
                raise FeatureError("malformed module: empty basic block")
            # The terminator's block operands are the block's successors. Every cycle has
            # an edge to a block at or before its source in the function's block order,
            # so a function without such an edge has no loop.
            it = a.ops_iter(insts[-1])
            try:
                successors = [position[op] for op in iterate(a.ops_next, it) if op in position]
            finally:
                a.ops_dispose(it)
            has_cycle = has_cycle or any(s <= k for s in successors)
            if len(successors) > 2:
                name = a.opcode_name(insts[-1])
                if name.value == b"switch":  # the default, then one successor per case
                    largest_switch = max(largest_switch, len(successors) - 1)
                a.dispose_string(name)
        largest_function = max(largest_function, instructions - before)
    return Shape(instructions, largest_function, has_cycle, largest_switch)
