"""mlcc: a clang-compatible compiler driver that chooses LLVM pass pipelines with a learned model."""

__version__ = "0.1.0"
