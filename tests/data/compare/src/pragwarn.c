/* A call to a function with a warning attribute, the warning silenced by a pragma:
   code generation gives the warning, and only the source knows the pragma. */
extern void iffy(void) __attribute__((warning("calling iffy is iffy")));
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wattribute-warning"
void call_iffy(void) { iffy(); }
#pragma clang diagnostic pop
