/* Inline assembly the assembler rejects: an error of code generation, not of the front end. */
int bump(int x) {
  __asm__ volatile("bogus_insn %0" : : "r"(x));
  return x + 1;
}
