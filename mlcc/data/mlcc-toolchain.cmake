# CMake toolchain file for mlcc: use it with
#   cmake -DCMAKE_TOOLCHAIN_FILE=$(mlcc-tool toolchain-file) ...
# mlcc behaves as clang 19, so CMake identifies the compilers as Clang 19.
find_program(MLCC_C_COMPILER NAMES mlcc REQUIRED)
find_program(MLCC_CXX_COMPILER NAMES mlcc++ REQUIRED)
set(CMAKE_C_COMPILER "${MLCC_C_COMPILER}" CACHE FILEPATH "mlcc (C)")
set(CMAKE_CXX_COMPILER "${MLCC_CXX_COMPILER}" CACHE FILEPATH "mlcc++ (C++)")
