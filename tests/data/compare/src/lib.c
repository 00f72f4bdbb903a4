static int table[16];
int lib_value(int x) {
  for (int i = 0; i < 16; i++)
    table[i] = i * x;
  return table[x & 15] + 1;
}
