/* pixman's affine-bench flushes the cache with volatile loads from a constant array. LLVM 19's
   attributor (attributor-light, attributor-light-cgscc) marks such a function memory(none), the
   calls go, and the array with them (docs/RELIABILITY.md). */
static void flush_cache(void) {
    static const char clean_space[1 << 16];
    volatile const char *x = clean_space;
    const char *end = clean_space + sizeof clean_space;
    while ((const char *)x < end) { (void)*x; x += 32; }
}
int main(void) { flush_cache(); return 0; }
