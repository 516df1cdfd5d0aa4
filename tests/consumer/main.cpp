// Built against an installed tapegrad: d/dx sum(x*x + 1) = 2x.
#include <iostream>

#include "tapegrad.hpp"

int main() {
  tg::Tensor x(tg::Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  tg::Tensor y = tg::sum(x * x + 1.f);
  y.backward();
  const tg::Array expected = {{2.f, 4.f}, {6.f, 8.f}};
  if (y.item() != 34.f || x.grad() != expected) {
    std::cerr << "consumer: wrong result " << y.item() << '\n';
    return 1;
  }
  std::cout << "consumer: ok\n";
  return 0;
}
