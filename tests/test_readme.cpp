// README.md's C++, extracted at build time by tests/extract_readme.cmake into readme_blocks.hpp (in the build
// folder): it compiles, every section's statements run, and the custom layers it shows work as it says.
#include <doctest/doctest.h>

#include <exception>
#include <string>
#include <vector>

#include "readme_blocks.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

TEST_CASE("README: every section's C++ compiles and its statements run without throwing") {
  const test_util::ScopedSeed seed(0);
  const test_util::ClearTapeOnExit clear_tape;
  REQUIRE(readme::programs().size() >= 2);  // "Write your own layer" and "A taste of the core" at least
  for (const readme::Program& program : readme::programs()) {
    INFO("README section: ", std::string(program.section));
    try {
      program.run();
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", std::string(e.what()));
    }
    tg::clear_tape();
  }
}

TEST_CASE("README 'Write your own layer': silu passes gradcheck, and PReLU and SiLU train in a Sequential") {
  using namespace readme::write_your_own_layer;
  const test_util::ScopedSeed seed(0);
  tg::Tensor probe(tg::randn({3, 4}), true);
  auto check = tg::gradcheck([](const std::vector<tg::Tensor>& in) { return silu(in[0]); }, {probe});
  INFO(check.report);
  CHECK(check.ok);
  tg::Sequential model(tg::Linear(2, 16), PReLU(), tg::Linear(16, 16), SiLU(), tg::Linear(16, 2));
  CHECK(model.named_parameters()[2].first == "1.weight");
  tg::Tensor x(tg::randn({32, 2}));
  std::vector<int> labels(32);
  for (std::size_t i = 0; i < 32; ++i) labels[i] = x.value()(i, 0) > 0.f;
  tg::SGD opt(model.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  float first = 0.f, last = 0.f;
  for (int step = 0; step < 50; ++step) {
    tg::Tensor loss = tg::cross_entropy(model(x), labels);
    (step == 0 ? first : last) = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  CHECK(last < 0.5f * first);
}

TEST_CASE("README 'A taste of the core': square passes gradcheck") {
  using namespace readme::a_taste_of_the_core;
  tg::Tensor x(Array{{1.f, 2.f}, {3.f, 4.f}}, true);
  const tg::GradcheckResult r =
      tg::gradcheck([](const std::vector<tg::Tensor>& in) { return tg::sum(square(in[0])); }, {x});
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.nonzero);
}
