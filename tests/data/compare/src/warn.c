int warned(int x) {
  int unused;
  return x * 2;
}
