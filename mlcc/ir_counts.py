"""Counting one module's IR: the walk behind mlcc's features.

`count` reads a module's bitcode with LLVM's own bitcode reader (through
:mod:`llvmlite.binding`) and counts what `mlcc.features` turns into the
feature vector: opcodes, CFG shapes, constants, calls, functions and globals
(the schema's semantics are described there).

This runs for every file of a build, so it is written for speed: the
instruction walk talks to llvmlite's C entry points directly through
:mod:`ctypes` with plain integer pointers (llvmlite's object wrappers cost
tens of microseconds per instruction), batches the calls per function with
``map``, reads the operands only where a feature needs them, and classifies
each distinct operand value once.  ``scripts/bench_features.py`` measures it
against ``clang-19 -Oz -c``.  Imports stay lean: ``llvmlite.binding``,
``numpy`` and the standard library; the module is read and its entry points
prototyped by :mod:`mlcc.ir_reader`.
"""

from __future__ import annotations

import ctypes
import gc
from collections import Counter, defaultdict, deque
from functools import partial
from itertools import accumulate, chain, compress
from operator import attrgetter

import numpy as np

from mlcc import ir_reader
from mlcc.errors import FeatureError
from mlcc.ir_reader import Api, iterate, pointer

# --------------------------------------------------------------------------
# LLVM facts

# LLVMValueKind (llvm-c/Core.h).
_VK_CONSTANT_INT = 18
_VK_INLINE_ASM = 23
# Every kind for which isa<Constant> holds: Function .. ConstantTokenNone,
# PoisonValue, ConstantTargetNone, ConstantPtrAuth.
_CONSTANT_KINDS = frozenset(range(5, 22)) | {25, 26, 27}
_TK_INTEGER = 8  # LLVMTypeKind

# LLVMLinkage (llvm-c/Core.h).
_LINKAGE_INTERNAL = (8, 9)
_LINKAGE_PRIVATE = 9
_LINKAGE_LINKONCE_WEAK = (2, 3, 4, 5, 6, 12, 14)

_BINARY_OPS = frozenset(
    b"add fadd sub fsub mul fmul udiv sdiv fdiv urem srem frem "
    b"shl lshr ashr and or xor".split()
)
_CAST_OPS = frozenset(
    b"trunc zext sext fptoui fptosi uitofp sitofp fptrunc fpext "
    b"ptrtoint inttoptr bitcast addrspacecast".split()
)
# isa<UnaryInstruction>: casts, alloca, load, va_arg, extractvalue, freeze, fneg.
_UNARY_OPS = _CAST_OPS | {b"alloca", b"load", b"va_arg", b"extractvalue", b"freeze", b"fneg"}

# How much of each instruction's operand list the walk reads.  ``load`` is
# skipped: its only operand is a pointer, never a ConstantInt.  Terminators
# and phis are read one by one, as the last/first instructions of a block.
_TERMINATOR_OPS = frozenset(
    b"ret br switch indirectbr invoke resume unreachable cleanupret catchret "
    b"catchswitch callbr".split()
)
# Only operand 0 can be a ConstantInt (store: value, then pointer; alloca:
# array size) or there is only one operand (casts, fneg, freeze).
_FIRST_OPS = frozenset({b"store", b"alloca", b"fneg", b"freeze"}) | _CAST_OPS
_CMP_OPS = frozenset({b"icmp", b"fcmp"})
_CALL_OPS = frozenset({b"call"})
_CALL_TERMINATORS = frozenset({b"invoke", b"callbr"})
_NOT_GENERIC = _FIRST_OPS | _BINARY_OPS | _CMP_OPS | _CALL_OPS | _TERMINATOR_OPS | {b"load", b"phi"}
# Everything else (gep, select, extract/insert*, atomics, ...): read all
# operands; an opcode this table does not know is read in full too.
_IS_GENERIC = defaultdict(lambda: True, dict.fromkeys(_NOT_GENERIC, False))
_GET_VALUE = attrgetter("value")
_consume = deque(maxlen=0).extend

# Function attributes counted in ``funcs_<attr>`` (defined functions only).
_FN_ATTRS = ("minsize", "optsize", "optnone", "noinline", "alwaysinline", "inlinehint", "cold", "noreturn")

_SMALL_FUNC_INSTS = 10


# --------------------------------------------------------------------------
# Counting


def count(data: bytes, shown: str) -> dict:
    """The counts of the module in `data` (bitcode; `shown` names it in errors), by
    feature name, and its opcodes under ``_opcodes``. Raises FeatureError when it
    is not LLVM bitcode."""
    api = ir_reader.api()
    # The walk allocates hundreds of thousands of small objects and no
    # cycles: the cyclic GC would only rescan them over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with ir_reader.open_module(data, shown) as mod:
            td = api.llvm.create_target_data(mod.data_layout)
            try:
                return _Extractor(api, pointer(mod), pointer(td)).run()
            except FeatureError as exc:
                raise FeatureError(f"{shown!r}: {exc}") from None
            finally:
                td.close()
    finally:
        if gc_was_enabled:
            gc.enable()


class _Extractor:
    def __init__(self, api: Api, mod: int, td: int) -> None:
        self.api = api
        self.mod = mod
        self.td = td

    # -- module level --------------------------------------------------

    def _functions(self):
        api = self.api
        it = api.functions_iter(self.mod)
        try:
            funcs = iterate(api.functions_next, it)
        finally:
            api.functions_dispose(it)
        return funcs

    def _globals(self):
        api = self.api
        it = api.globals_iter(self.mod)
        try:
            gvs = iterate(api.globals_next, it)
        finally:
            api.globals_dispose(it)
        return gvs

    def _fn_attrs(self, f: int) -> set:
        api = self.api
        it = api.attrs_iter(f)
        try:
            # The first attribute set is the function's own; its string is
            # LLVM's rendering of the set ("minsize nounwind ...").
            s = api.attrs_next(it)
            if not s:
                return set()
            text = s.value or b""
            api.dispose_string(s)
        finally:
            api.attrs_dispose(it)
        return set(text.decode("utf-8", "replace").split())

    # -- main ----------------------------------------------------------

    def run(self) -> dict:
        api = self.api
        v: dict = {}

        funcs = self._functions()
        # pointer -> (defined, internal, returns_int, intrinsic)
        finfo: dict[int, tuple] = {}
        defined: list[int] = []
        n_decl = n_intr = n_internal = n_lo_weak = n_vararg = 0
        attr_counts = dict.fromkeys(_FN_ATTRS, 0)
        for f in funcs:
            is_decl = bool(api.is_declaration(f))
            link = api.linkage(f)
            fty = api.global_value_type(f)
            rt_int = api.type_kind(api.return_type(fty)) == _TK_INTEGER
            intrinsic = False
            if is_decl:
                n_decl += 1
                name = api.value_name(f) or b""
                intrinsic = name.startswith(b"llvm.")
                n_intr += intrinsic
            else:
                defined.append(f)
                internal = link in _LINKAGE_INTERNAL
                n_internal += internal
                n_lo_weak += link in _LINKAGE_LINKONCE_WEAK
                n_vararg += bool(api.is_vararg(fty))
                attrs = self._fn_attrs(f)
                for a in _FN_ATTRS:
                    if a in attrs:
                        attr_counts[a] += 1
            finfo[f] = (not is_decl, (not is_decl) and link in _LINKAGE_INTERNAL, rt_int, intrinsic)

        v["TotalFuncs"] = len(funcs)  # CompilerGym counts declarations too
        v["funcs_defined"] = len(defined)
        v["funcs_declared"] = n_decl
        v["funcs_declared_intrinsic"] = n_intr
        v["funcs_internal"] = n_internal
        v["funcs_linkonce_or_weak"] = n_lo_weak
        v["funcs_vararg"] = n_vararg
        for a, n in attr_counts.items():
            v["funcs_" + a] = n

        gvars = self._globals()
        g_def = g_decl = g_int = g_priv = 0
        g_bytes = g_priv_bytes = 0
        for g in gvars:
            if api.is_declaration(g):
                g_decl += 1
                continue
            g_def += 1
            link = api.linkage(g)
            size = api.abi_size(self.td, api.global_value_type(g))
            g_bytes += size
            if link == _LINKAGE_PRIVATE:
                g_priv += 1
                g_priv_bytes += size
            elif link in _LINKAGE_INTERNAL:
                g_int += 1
        v.update(
            gvars_defined=g_def,
            gvars_declared=g_decl,
            gvars_internal=g_int,
            gvars_private=g_priv,
            gvars_bytes=g_bytes,
            gvars_private_bytes=g_priv_bytes,
        )

        self._walk(defined, finfo, set(gvars), v)
        return v

    def _walk(self, defined: list, finfo: dict, gvar_set: set, v: dict) -> None:
        """Walk every instruction of the defined functions.

        The work is batched per function: ``map`` over the ctypes entry
        points keeps the per-instruction loops in C; Python-level loops run
        per call, per multi-way terminator and per phi only.  Pointers are
        gathered module-wide and matched up with numpy at the end (sorting
        beats hash tables of a few hundred thousand pointers).
        """
        api = self.api
        blocks_iter, blocks_next, blocks_dispose = api.blocks_iter, api.blocks_next, api.blocks_dispose
        insts_iter, insts_next, insts_dispose = api.insts_iter, api.insts_next, api.insts_dispose
        ops_iter, ops_next, ops_dispose = api.ops_iter, api.ops_next, api.ops_dispose
        opcode_name, dispose_string = api.opcode_name, api.dispose_string
        get_value = _GET_VALUE
        consume = _consume
        is_first = _FIRST_OPS.__contains__
        is_binary = _BINARY_OPS.__contains__
        is_cmp = _CMP_OPS.__contains__
        is_call = _CALL_OPS.__contains__
        is_generic = _IS_GENERIC.__getitem__
        is_phi = b"phi".__eq__

        opseq: list[bytes] = []  # opcode of every instruction, in order
        all_insts: list[int] = []  # every instruction pointer
        operands: list[int] = []  # operand values that may be ConstantInt (0: none)
        bin_lhs: list[int] = []  # binary operators' operands
        bin_rhs: list[int] = []
        callees: list[int] = []
        n_call_large = 0
        # Blocks, module-wide, in order: a block's id is its position.
        all_blocks: list[int] = []
        blk_ninst: list[int] = []
        # Terminator of block k: its opcode and its first three operands
        # (0: none); operands beyond the third as (block id, pointer).
        term_op: list[bytes] = []
        term_r1: list[int] = []
        term_r2: list[int] = []
        term_r3: list[int] = []
        rest_src: list[int] = []
        rest_ptr: list[int] = []
        term_callees: list[int] = []
        phi_counts: list[int] = []  # per block that has phis
        phi_args: list[int] = []
        entries: list[int] = []
        func_insts: list[int] = []
        func_blocks: list[int] = []

        for f in defined:
            bi = blocks_iter(f)
            try:
                blocks = iterate(blocks_next, bi)
            finally:
                blocks_dispose(bi)
            if not blocks:
                continue
            base = len(all_blocks)
            nb = len(blocks)
            entries.append(base)
            all_blocks += blocks

            iis = list(map(insts_iter, blocks))
            try:
                per_block = [list(iter(partial(insts_next, ii), 0)) for ii in iis]
            finally:
                consume(map(insts_dispose, iis))
            sizes = list(map(len, per_block))
            if 0 in sizes:  # a block without instructions: not valid IR
                raise FeatureError("malformed module: empty basic block")
            fins = list(chain.from_iterable(per_block))
            strs = list(map(opcode_name, fins))
            ops = list(map(get_value, strs))
            consume(map(dispose_string, strs))
            del strs
            opseq += ops
            all_insts += fins
            blk_ninst += sizes
            func_insts.append(len(fins))
            func_blocks.append(nb)

            # Operand 0 only (store: value; alloca: array size; casts).
            sel = list(compress(fins, map(is_first, ops)))
            if sel:
                its = list(map(ops_iter, sel))
                operands += map(ops_next, its)
                consume(map(ops_dispose, its))
            # Two operands.
            for pred, binary in ((is_binary, True), (is_cmp, False)):
                sel = list(compress(fins, map(pred, ops)))
                if not sel:
                    continue
                its = list(map(ops_iter, sel))
                lhs = list(map(ops_next, its))
                rhs = list(map(ops_next, its))
                consume(map(ops_dispose, its))
                operands += lhs
                operands += rhs
                if binary:
                    bin_lhs += lhs
                    bin_rhs += rhs
            # Any number of operands, only their multiset matters: advance
            # all iterators in lock step, dropping the exhausted ones.
            sel = list(compress(fins, map(is_generic, ops)))
            if sel:
                its = list(map(ops_iter, sel))
                act = its
                while act:
                    vals = list(map(ops_next, act))
                    operands += vals
                    act = list(compress(act, vals))
                consume(map(ops_dispose, its))
            # Calls: the callee is the last operand.
            sel = list(compress(fins, map(is_call, ops)))
            if sel:
                its = list(map(ops_iter, sel))
                try:
                    for oi in its:
                        cops = list(iter(partial(ops_next, oi), 0))
                        if cops:
                            callees.append(cops.pop())
                            if len(cops) > 4:
                                n_call_large += 1
                            operands += cops
                finally:
                    consume(map(ops_dispose, its))

            # Terminators: the last instruction of each block.  Its
            # basic-block operands are the successors.  Three operands of
            # every terminator in lock step (br has 1 or 3), the rest one
            # terminator at a time.
            ends = list(accumulate(sizes))
            term_op += [ops[e - 1] for e in ends]
            its = list(map(ops_iter, [fins[e - 1] for e in ends]))
            try:
                r1 = list(map(ops_next, its))
                r2 = list(map(ops_next, its))
                r3 = list(map(ops_next, its))
                for k in compress(range(nb), r3):
                    rest = list(iter(partial(ops_next, its[k]), 0))
                    rest_src += [base + k] * len(rest)
                    rest_ptr += rest
                    if term_op[base + k] in _CALL_TERMINATORS:
                        # invoke/callbr: a call site too; callee is last.
                        term_callees.append(rest[-1] if rest else r3[k])
            finally:
                consume(map(ops_dispose, its))
            term_r1 += r1
            term_r2 += r2
            term_r3 += r3

            # Phi nodes sit at the top of a block.
            starts = [0, *ends[:-1]]
            for k in compress(range(nb), map(is_phi, [ops[q] for q in starts])):
                q, last = starts[k], ends[k] - 1
                nphi = nargs = 0
                while q <= last and ops[q] == b"phi":
                    oi = ops_iter(fins[q])
                    try:
                        pops = list(iter(partial(ops_next, oi), 0))
                    finally:
                        ops_dispose(oi)
                    operands += pops
                    nphi += 1
                    nargs += len(pops)
                    q += 1
                phi_counts.append(nphi)
                phi_args.append(nargs)

        u64 = np.uint64
        # ---- CFG ------------------------------------------------------------
        nblocks = len(all_blocks)
        blocks_arr = np.array(all_blocks, dtype=u64)
        border = np.argsort(blocks_arr, kind="stable")
        bsorted = blocks_arr[border]

        def block_ids(ptrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """(is a block of this module, its id) for each pointer."""
            if nblocks == 0:
                z = np.zeros(len(ptrs), dtype=bool)
                return z, np.zeros(len(ptrs), dtype=np.intp)
            pos = np.searchsorted(bsorted, ptrs)
            pos[pos == nblocks] = 0
            return bsorted[pos] == ptrs, border[pos]

        src_parts, dst_parts = [], []
        for r in (term_r1, term_r2, term_r3):
            hit, ids = block_ids(np.array(r, dtype=u64))
            src_parts.append(np.flatnonzero(hit))
            dst_parts.append(ids[hit])
        hit, ids = block_ids(np.array(rest_ptr, dtype=u64))
        src_parts.append(np.array(rest_src, dtype=np.intp)[hit])
        dst_parts.append(ids[hit])
        src = np.concatenate(src_parts).astype(np.intp)
        dst = np.concatenate(dst_parts).astype(np.intp)
        nsucc = np.bincount(src, minlength=nblocks)
        npred = np.bincount(dst, minlength=nblocks)
        n_edges = int(len(src))
        n_critical = int(np.count_nonzero((nsucc[src] > 1) & (npred[dst] > 1))) if n_edges else 0
        # Entry blocks never have predecessors; any other block without
        # one is unreachable.
        unreachable_blocks = int(np.count_nonzero(npred == 0)) - len(entries)
        perm = np.argsort(src, kind="stable")
        succ_flat = dst[perm].tolist()
        succ_ptr = np.concatenate(([0], np.cumsum(nsucc))).tolist()
        back_edges, loop_headers = _back_edges(succ_flat, succ_ptr, entries)
        nsucc_l = nsucc.tolist()
        switch_cases = sum(nsucc_l[k] - 1 for k, op in enumerate(term_op) if op == b"switch")
        n_cond_br = sum(1 for op, r in zip(term_op, term_r3) if r and op == b"br")

        # ---- classify each distinct operand value once --------------------
        operands += term_r1
        operands += term_r2
        operands += term_r3
        operands += rest_ptr
        uniq, counts = np.unique(np.array(operands, dtype=u64), return_counts=True)
        del operands
        keep = uniq != 0
        keep &= ~_member(np.sort(np.array(all_insts, dtype=u64)), uniq)
        keep &= ~_member(bsorted, uniq)
        # What is left: functions, globals, arguments, constants, inline asm.
        c32 = c64 = zeros = ones = 0
        funcs_used = set()
        const_set = set()
        flag = ctypes.c_bool()
        for p, n in zip(uniq[keep].tolist(), counts[keep].tolist()):
            if p in finfo:
                funcs_used.add(p)
                const_set.add(p)
            elif p in gvar_set:
                const_set.add(p)
            else:
                kind = api.value_kind(p)
                if kind == _VK_CONSTANT_INT:
                    const_set.add(p)
                    w32, w64, zero, one = self._const_int(p, flag)
                    if w32:
                        c32 += n
                    elif w64:
                        c64 += n
                    if one:
                        ones += n
                    elif zero:
                        zeros += n
                elif kind in _CONSTANT_KINDS:
                    const_set.add(p)
        consts = np.array(sorted(const_set), dtype=u64)
        bin_const = int(np.count_nonzero(_member(consts, np.array(bin_lhs, dtype=u64))
                                         | _member(consts, np.array(bin_rhs, dtype=u64))))

        # ---- calls --------------------------------------------------------
        return_int = d_def = d_decl = d_intr = indirect = asm = 0
        direct_calls: Counter = Counter()
        n_calls = len(callees)
        for k, callee in enumerate(chain(callees, term_callees)):
            info = finfo.get(callee)
            if info is None:
                if api.value_kind(callee) == _VK_INLINE_ASM:
                    asm += 1
                else:
                    indirect += 1
                continue
            is_def, _internal, rt_int, intrinsic = info
            if k < n_calls:  # Autophase's returnInt counts CallInst only
                return_int += rt_int
            direct_calls[callee] += 1
            if is_def:
                d_def += 1
            elif intrinsic:
                d_intr += 1
            else:
                d_decl += 1
        # Functions used other than as a callee (stored, passed, compared).
        address_taken = funcs_used
        no_call = once = 0
        for f in defined:
            if not finfo[f][1] or f in address_taken:
                continue
            n = direct_calls.get(f, 0)
            if n == 0:
                no_call += 1
            elif n == 1:
                once += 1

        # ---- opcode counts --------------------------------------------------
        opcodes = Counter(opseq)
        g = opcodes.get

        # ---- per-block Autophase counters -----------------------------------
        p1, p2, pm = npred == 1, npred == 2, npred > 2
        s1, s2, sm = nsucc == 1, nsucc == 2, nsucc > 2

        def cnt(mask: np.ndarray) -> int:
            return int(np.count_nonzero(mask))

        ninst = np.array(blk_ninst, dtype=np.int64)
        block_low = cnt(ninst < 15)
        block_high = cnt(ninst > 500)
        phi_args_arr = np.array(phi_args, dtype=np.int64)
        bb_hi_phi = sum(1 for n in phi_counts if n > 3)

        v.update(
            BBNumArgsHi=cnt(phi_args_arr > 5),
            BBNumArgsLo=cnt((phi_args_arr >= 1) & (phi_args_arr <= 5)),
            onePred=cnt(p1),
            onePredOneSuc=cnt(p1 & s1),
            onePredTwoSuc=cnt(p1 & s2),
            oneSuccessor=cnt(s1),
            twoPred=cnt(p2),
            twoPredOneSuc=cnt(p2 & s1),
            twoEach=cnt(p2 & s2),
            twoSuccessor=cnt(s2),
            morePreds=cnt(pm),
            moreSuccessors=cnt(sm),
            moreEach=cnt(pm & sm),
            BB03Phi=len(phi_counts) - bb_hi_phi,
            BBHiPhi=bb_hi_phi,
            BBNoPhi=nblocks - len(phi_counts),
            BeginPhi=len(phi_counts),
            BranchCount=g(b"br", 0),
            returnInt=return_int,
            CriticalCount=n_critical,
            NumEdges=n_edges,
            const32Bit=c32,
            const64Bit=c64,
            numConstZeroes=zeros,
            numConstOnes=ones,
            UncondBranches=g(b"br", 0) - n_cond_br,
            binaryConstArg=bin_const,
            BlockLow=block_low,
            BlockMid=nblocks - block_low - block_high,
            BlockHigh=block_high,
            TotalBlocks=nblocks,
            TotalInsts=len(opseq),
            TotalMemInst=sum(g(o, 0) for o in (b"getelementptr", b"load", b"store", b"call", b"invoke", b"alloca")),
            ArgsPhi=sum(phi_args),
            testUnary=sum(n for o, n in opcodes.items() if o in _UNARY_OPS),
            callLargeNumArgs=n_call_large,
            switch_cases=switch_cases,
            back_edges=back_edges,
            loop_headers=loop_headers,
            blocks_unreachable=unreachable_blocks,
            calls_direct_defined=d_def,
            calls_direct_declared=d_decl,
            calls_intrinsic=d_intr,
            calls_indirect=indirect,
            calls_inline_asm=asm,
            funcs_address_taken=len(address_taken),
            funcs_internal_no_direct_call=no_call,
            funcs_internal_called_once=once,
            funcs_small=sum(1 for n in func_insts if n <= _SMALL_FUNC_INSTS),
            max_func_insts=max(func_insts, default=0),
            mean_func_insts=(sum(func_insts) / len(func_insts)) if func_insts else 0.0,
            max_func_blocks=max(func_blocks, default=0),
            mean_func_blocks=(sum(func_blocks) / len(func_blocks)) if func_blocks else 0.0,
        )
        # Autophase's Num<Opcode>Inst names.
        for name, opc in _AUTOPHASE_OPCODES.items():
            v[name] = g(opc, 0)
        v["_opcodes"] = opcodes

    def _const_int(self, p: int, flag) -> tuple[bool, bool, bool, bool]:
        """(32-bit, 64-bit, == 0, == 1) of a ConstantInt."""
        api = self.api
        width = api.type_bit_width(api.type_of(p))
        words = api.const_int_words(p)
        raw = api.const_int_raw(p, ctypes.byref(flag))
        vals = [raw[k] for k in range(words)]
        zero = not any(vals)
        one = bool(vals) and vals[0] == 1 and not any(vals[1:])
        return width == 32, width == 64, zero, one


_AUTOPHASE_OPCODES = {
    "NumAShrInst": b"ashr",
    "NumAddInst": b"add",
    "NumAllocaInst": b"alloca",
    "NumAndInst": b"and",
    "NumBitCastInst": b"bitcast",
    "NumBrInst": b"br",
    "NumCallInst": b"call",
    "NumGetElementPtrInst": b"getelementptr",
    "NumICmpInst": b"icmp",
    "NumLShrInst": b"lshr",
    "NumLoadInst": b"load",
    "NumMulInst": b"mul",
    "NumOrInst": b"or",
    "NumPHIInst": b"phi",
    "NumRetInst": b"ret",
    "NumSExtInst": b"sext",
    "NumSelectInst": b"select",
    "NumShlInst": b"shl",
    "NumStoreInst": b"store",
    "NumSubInst": b"sub",
    "NumTruncInst": b"trunc",
    "NumXorInst": b"xor",
    "NumZExtInst": b"zext",
}


def _member(sorted_arr: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x[i] in sorted_arr`` for each i (np.isin is far slower on pointer
    values, which span a wide range)."""
    if len(sorted_arr) == 0 or len(x) == 0:
        return np.zeros(len(x), dtype=bool)
    pos = np.searchsorted(sorted_arr, x)
    pos[pos == len(sorted_arr)] = 0
    return sorted_arr[pos] == x


def _back_edges(succ_flat: list, succ_ptr: list, entries: list) -> tuple[int, int]:
    """Back edges (edges into a block on the DFS stack) of the CFGs given in
    CSR form (successors of block k: ``succ_flat[succ_ptr[k]:succ_ptr[k+1]]``),
    one DFS from each function's entry block; and the number of distinct
    blocks they enter (loop headers).  For the reducible CFGs that C front
    ends produce these are exactly the natural loops' back edges."""
    state = bytearray(len(succ_ptr))  # 0 new, 1 on the DFS stack, 2 done
    headers = set()
    back = 0
    for entry in entries:
        state[entry] = 1
        stack = [(entry, iter(succ_flat[succ_ptr[entry]:succ_ptr[entry + 1]]))]
        while stack:
            node, it = stack[-1]
            for t in it:
                st = state[t]
                if st == 0:
                    state[t] = 1
                    stack.append((t, iter(succ_flat[succ_ptr[t]:succ_ptr[t + 1]])))
                    break
                if st == 1:
                    back += 1
                    headers.add(t)
            else:
                state[node] = 2
                stack.pop()
    return back, len(headers)
