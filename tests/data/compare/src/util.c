#include "util.h"
#include <string.h>

#ifndef SCALE
#define SCALE 2
#endif

static const char *const names[] = {"zero", "one", "two", "three", "four"};
int counter = 7;

int checksum(const char *s, size_t n) {
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return (int)(h & 0x7fffffff);
}

int scale(int x) {
  int r = 0;
  for (int i = 0; i < SCALE; i++)
    r += x;
  return r + counter;
}

const char *name_of(int i) {
  switch (i) {
  case 0: case 1: case 2: case 3: case 4:
    return names[i];
  default:
    return strlen(names[0]) > 3 ? "many" : "?";
  }
}
