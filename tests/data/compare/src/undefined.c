int missing_function(void);
int main(void) { return missing_function(); }
