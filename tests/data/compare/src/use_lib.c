#include <stdio.h>
int lib_value(int);
int main(void) { printf("lib %d\n", lib_value(5)); return 0; }
