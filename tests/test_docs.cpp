// The code of README.md and docs/*.md, extracted at build time by tests/extract_docs.cmake into
// docs_blocks.hpp (in the build folder; the script's header gives the convention): every ```cpp block
// compiles and every section's statements run, every ```tg model file builds (or, marked error, fails as
// it says), and the layers and ops the pages define work as they say. A failure names the page and line.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "docs_blocks.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace {

// Runs every section's statements once per process (they register layers, which may happen only once), and
// returns what threw, as "page:line (## section): message".
const std::vector<std::string>& run_programs_once() {
  static const std::vector<std::string> failures = [] {
    const test_util::ScopedSeed seed(0);
    // The pages write and remove files in std::filesystem::temp_directory_path(); two test processes
    // running them at once (ctest -j) must not share those files, so each gets its own TMPDIR.
    const test_util::TempDir tmp;
    const char* previous = std::getenv("TMPDIR");
    const std::string previous_value = previous ? previous : "";
    ::setenv("TMPDIR", tmp.path.c_str(), 1);
    std::vector<std::string> out;
    for (const docs::Program& program : docs::programs()) {
      try {
        program.run();
      } catch (const std::exception& e) {
        out.push_back(std::string(program.page) + ":" + std::to_string(program.line) + " (## " +
                      program.section + "): threw: " + e.what());
      }
      tg::clear_tape();
    }
    if (previous) {
      ::setenv("TMPDIR", previous_value.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
    return out;
  }();
  return failures;
}

}  // namespace

TEST_CASE("docs: every page's C++ compiles and every section's statements run without throwing") {
  const test_util::ClearTapeOnExit clear_tape;
  REQUIRE(docs::programs().size() >= 6);
  for (const std::string& failure : run_programs_once()) FAIL_CHECK(failure);
}

TEST_CASE("docs: every ```tg model file builds for its input, and every ```tg error block fails as it says") {
  const test_util::ClearTapeOnExit clear_tape;
  run_programs_once();  // the layers the pages register
  REQUIRE(docs::model_blocks().size() >= 10);
  for (const docs::ModelBlock& block : docs::model_blocks()) {
    const std::string where = std::string(block.page) + ":" + std::to_string(block.line);
    try {
      tg::Sequential model = tg::model_from_text(block.text, block.input, block.classes, where);
      if (block.error) FAIL_CHECK(where, ": a ```tg error block built without an error");
    } catch (const tg::Error& e) {
      const std::string message = e.what();
      if (!block.error) {
        FAIL_CHECK(where, ": the model file does not build: ", message);
        continue;
      }
      for (const docs::Expected& expected : block.expected) {
        if (message.find(expected.text) == std::string::npos)
          FAIL_CHECK(where, ": the error\n  ", message, "\nlacks its '# error:' text\n  ",
                     std::string(expected.text));
        const std::string line_prefix = where + ":" + std::to_string(expected.line) + ": ";
        if (expected.line > 0 && message.rfind(line_prefix, 0) != 0)
          FAIL_CHECK(where, ": the error\n  ", message, "\ndoes not name line ", expected.line,
                     " of the block (", line_prefix, ")");
      }
    }
  }
}

TEST_CASE("docs: every page of docs/ and README.md is extracted") {
  std::vector<std::string> expected{"README.md"};
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TAPEGRAD_SOURCE_DIR) + "/docs"))
    if (entry.path().extension() == ".md") expected.push_back("docs/" + entry.path().filename().string());
  std::vector<std::string> extracted(docs::pages().begin(), docs::pages().end());
  std::sort(expected.begin(), expected.end());
  std::sort(extracted.begin(), extracted.end());
  CHECK(extracted == expected);  // a new page needs a CMake re-run (the glob has CONFIGURE_DEPENDS)
}

TEST_CASE("README 'Write your own layer': Swish trains its beta, named as PyTorch would") {
  using docs::readme::write_your_own_layer::Swish;
  const test_util::ScopedSeed seed(0);
  tg::Sequential model(tg::Linear(2, 16), Swish(1.f), tg::Linear(16, 2));
  REQUIRE(model.named_parameters().size() == 5);
  CHECK(model.named_parameters()[2].first == "1.beta");
  CHECK(model.at<Swish>(1).beta.shape() == tg::Shape{1});  // as nn.Parameter(torch.ones(1))
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
  CHECK(model.at<Swish>(1).beta.value()(0) != 1.f);  // beta learned
}

TEST_CASE("docs/extending.md: softplus passes gradcheck, ScaleShift's gradient reaches its weight") {
  using namespace docs::extending::custom_layers_and_ops;
  const test_util::ScopedSeed seed(0);
  const tg::Array wide = tg::randn({2, 3, 4}) * 4.f;  // large values too: the stable form
  tg::Tensor x(wide, true);
  const tg::GradcheckResult r =
      tg::gradcheck([](const std::vector<tg::Tensor>& in) { return tg::sum(softplus(in[0])); }, {x});
  INFO(r.report);
  CHECK(r.ok);
  CHECK(r.nonzero);
  const tg::Tensor big(tg::Array{100.f, -100.f});
  CHECK(softplus(big).value()(0) == doctest::Approx(100.f));
  CHECK(softplus(big).value()(1) >= 0.f);

  tg::Sequential net(tg::Conv2D(1, 4, 3), ScaleShift(4, 1.f), tg::Flatten(), tg::Linear(4 * 6 * 6, 3));
  tg::cross_entropy(net(tg::Tensor(tg::randn({2, 1, 8, 8}))), {0, 2}).backward();
  CHECK(net.at<ScaleShift>(1).weight.grad().shape() == tg::Shape{4, 1, 1});
  CHECK(xt::amax(xt::abs(net.at<ScaleShift>(1).weight.grad()))() > 0.f);
  tg::clear_tape();
}
