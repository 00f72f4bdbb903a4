#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

struct Shape {
  virtual ~Shape() = default;
  virtual double area() const = 0;
};
struct Rect : Shape {
  double w, h;
  Rect(double w, double h) : w(w), h(h) {}
  double area() const override { return w * h; }
};

int main() {
  std::vector<std::string> words = {"pear", "apple", "fig", "banana"};
  std::sort(words.begin(), words.end());
  std::map<std::string, int> len;
  for (const auto &w : words) len[w] = (int)w.size();
  for (const auto &[w, n] : len) std::printf("%s=%d\n", w.c_str(), n);
  Rect r(3, 4);
  const Shape &s = r;
  std::printf("area %.1f\n", s.area());
  return 0;
}
