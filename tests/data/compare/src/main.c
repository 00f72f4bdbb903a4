#include <stdio.h>
#include <string.h>
#include "util.h"

int main(int argc, char **argv) {
  const char *text = "the quick brown fox";
  printf("checksum %d\n", checksum(text, strlen(text)));
  for (int i = 0; i < 6; i++)
    printf("%d %s %d\n", i, name_of(i), scale(i + argc));
  return argc > 5;
}
