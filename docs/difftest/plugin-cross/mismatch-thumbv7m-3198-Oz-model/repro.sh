#!/bin/sh
# Csmith program vs clang -O0 for thumbv7m: configuration Oz-model (mlcc -Oz).
# Builds the reference, the mlcc build, and the same pipeline with LLVM alone
# (opt-19 -passes=..., no mlcc); prints each one's output status. Exits 1 while
# mlcc's build differs from the reference.
cd "$(dirname "$0")" || exit 2
INC=${CSMITH_INCLUDE:-/usr/include/csmith}
T=${TIMEOUT:-50}
/usr/bin/clang-19 -O0 --target=thumbv7m-none-eabi -mcpu=cortex-m3 -mfloat-abi=soft --sysroot=/usr/lib/arm-none-eabi -I"$INC" -w program.c -fuse-ld=lld -nostdlib /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crti.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtbegin.o /usr/lib/arm-none-eabi/lib/thumb/v7/nofp/rdimon-crt0.o -L/usr/lib/arm-none-eabi/lib/thumb/v7/nofp -L/usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp -Wl,--start-group -lc -lrdimon -lgcc -Wl,--end-group /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtend.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtn.o -Wl,--defsym=__bss_start__=__bss_start -Wl,--defsym=__bss_end__=_end -Wl,--defsym=__end__=_end -o ref.exe || exit 2
timeout "$T" qemu-arm -cpu max ./ref.exe > expected.now; echo "reference: exit $?"

export MLCC_CACHE="$(mktemp -d)" MLCC_CONFIG=/dev/null
mlcc -Oz --target=thumbv7m-none-eabi -mcpu=cortex-m3 -mfloat-abi=soft --sysroot=/usr/lib/arm-none-eabi -I"$INC" -w program.c -fuse-ld=lld -nostdlib /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crti.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtbegin.o /usr/lib/arm-none-eabi/lib/thumb/v7/nofp/rdimon-crt0.o -L/usr/lib/arm-none-eabi/lib/thumb/v7/nofp -L/usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp -Wl,--start-group -lc -lrdimon -lgcc -Wl,--end-group /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtend.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtn.o -Wl,--defsym=__bss_start__=__bss_start -Wl,--defsym=__bss_end__=_end -Wl,--defsym=__end__=_end -o mlcc.exe || exit 2
timeout "$T" qemu-arm -cpu max ./mlcc.exe > mlcc.now; echo "mlcc: exit $?"

/usr/bin/clang-19 -Oz --target=thumbv7m-none-eabi -mcpu=cortex-m3 -mfloat-abi=soft --sysroot=/usr/lib/arm-none-eabi -I"$INC" -w -Xclang -disable-llvm-passes -emit-llvm -c program.c -o program.bc
/usr/bin/opt-19 --discard-value-names --relocation-model=static --vectorize-loops=false --vectorize-slp=true -passes="$(cat pipeline)" program.bc -o program.opt.bc
/usr/bin/clang-19 -Oz --target=thumbv7m-none-eabi -mcpu=cortex-m3 -mfloat-abi=soft --sysroot=/usr/lib/arm-none-eabi -Xclang -disable-llvm-passes -mllvm -enable-machine-outliner=always -mllvm -disable-lsr -mllvm -min-jump-table-entries=16 -mllvm -disable-block-placement -mllvm -disable-machine-licm -mllvm -split-spill-mode=size -mllvm -x86-machine-combiner=false -mllvm -arm-promote-constant program.opt.bc -fuse-ld=lld -nostdlib /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crti.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtbegin.o /usr/lib/arm-none-eabi/lib/thumb/v7/nofp/rdimon-crt0.o -L/usr/lib/arm-none-eabi/lib/thumb/v7/nofp -L/usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp -Wl,--start-group -lc -lrdimon -lgcc -Wl,--end-group /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtend.o /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7/nofp/crtn.o -Wl,--defsym=__bss_start__=__bss_start -Wl,--defsym=__bss_end__=_end -Wl,--defsym=__end__=_end -o llvm.exe
timeout "$T" qemu-arm -cpu max ./llvm.exe > llvm.now; echo "LLVM alone: exit $?"

if cmp -s expected.now llvm.now; then echo "LLVM alone matches the reference"
else echo "LLVM alone differs from the reference"; fi
cmp -s expected.now mlcc.now && { echo "mlcc matches the reference"; exit 0; }
echo "mlcc differs from the reference:"; diff expected.now mlcc.now; exit 1
