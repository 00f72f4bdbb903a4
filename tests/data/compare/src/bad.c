int broken(void) {
  return undeclared_thing + 1;
}
