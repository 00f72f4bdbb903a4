# CMake toolchain file for mlcc: use it with
#   cmake -DCMAKE_TOOLCHAIN_FILE=$(mlcc-tool toolchain-file) ...
# mlcc behaves as clang 19, so CMake identifies the compilers as Clang 19.
find_program(MLCC_C_COMPILER NAMES mlcc REQUIRED)
find_program(MLCC_CXX_COMPILER NAMES mlcc++ REQUIRED)
set(CMAKE_C_COMPILER "${MLCC_C_COMPILER}" CACHE FILEPATH "mlcc (C)")
set(CMAKE_CXX_COMPILER "${MLCC_CXX_COMPILER}" CACHE FILEPATH "mlcc++ (C++)")
# LTO objects are LLVM 19 bitcode: archive them with LLVM 19's llvm-ar, which indexes
# their symbols (CMake finds clang-19's by its suffix; mlcc's name has none, and an
# older llvm-ar or GNU ar cannot read them)
find_program(MLCC_LLVM_AR NAMES llvm-ar-19)
find_program(MLCC_LLVM_RANLIB NAMES llvm-ranlib-19)
if(MLCC_LLVM_AR AND MLCC_LLVM_RANLIB)
  set(CMAKE_AR "${MLCC_LLVM_AR}" CACHE FILEPATH "llvm-ar of LLVM 19")
  set(CMAKE_RANLIB "${MLCC_LLVM_RANLIB}" CACHE FILEPATH "llvm-ranlib of LLVM 19")
endif()
