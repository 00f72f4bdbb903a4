#ifndef UTIL_H
#define UTIL_H
#include <stddef.h>
int checksum(const char *s, size_t n);
int scale(int x);
const char *name_of(int i);
#endif
