// Every conv2d kernel family (im2col + SGEMM, direct) against the plain seven-loop definition
// (core/kernels/conv2d_reference.cpp), forward and backward, on raw buffers; and the op's choice of kernel.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "conv2d_cases.hpp"
#include "core/base/error.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/ops/conv2d.hpp"
#include "core/runtime/random.hpp"
#include "test_util.hpp"

using namespace conv2d_test;

namespace {

// The geometries every kernel family must get right.
const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> all = {
      {"padding, 13 output channels (not a multiple of 8 or 16)",
       {2, 3, 9, 7},
       {13, 3, 3, 3},
       {.padding = {1, 0}}},
      {"'same' padding with an even kernel (extra row/column bottom/right)",
       {2, 2, 8, 9},
       {5, 2, 4, 2},
       {.padding = tg::kSame}},
      {"dilation and rectangular padding",
       {2, 2, 11, 10},
       {3, 2, 3, 2},
       {.padding = {2, 1}, .dilation = {2, 3}}},
      {"1x1 kernel", {3, 5, 6, 6}, {9, 5, 1, 1}, {}},
      {"stride 2 (im2col only)", {4, 3, 12, 10}, {8, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
      {"stride (1, 2) with dilation (im2col only)",
       {2, 2, 9, 11},
       {3, 2, 3, 2},
       {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 3}}},
      {"odd channel counts 17 -> 19", {2, 17, 7, 8}, {19, 17, 3, 3}, {.padding = {1, 1}}},
      {"several chunks of images", {12, 8, 32, 32}, {16, 8, 3, 3}, {.padding = {1, 1}}},
      {"Cout multiple of 16 on a narrow image (lanes kernel)", {2, 3, 9, 17}, {32, 3, 5, 5}, {}},
      {"batch 1, lanes kernel, padded", {1, 2, 7, 7}, {16, 2, 3, 3}, {.padding = {1, 1}}},
      {"lenet conv1", {3, 1, 28, 28}, {6, 1, 5, 5}, {.padding = {2, 2}}},
      // one image, more threads: small convs stay on one thread; from 4M multiply-adds per thread its output
      // rows (36 rows: 12 + 12 + 12) or, with fewer rows, its output channels (72 = 24 + 24 + 24 on the wide
      // grid, 21 blocks of 16 on the lanes kernel) are split over them
      {"batch 1, wide grid, one thread", {1, 3, 9, 7}, {19, 3, 3, 3}, {.padding = {1, 1}}},
      {"batch 1, lanes kernel, one thread", {1, 3, 9, 17}, {48, 3, 5, 5}, {}},
      {"batch 1, wide grid, rows split", {1, 32, 36, 30}, {40, 32, 3, 3}, {.padding = {1, 1}}},
      {"batch 1, wide grid, channels split", {1, 64, 9, 40}, {72, 64, 3, 3}, {.padding = {1, 1}}},
      {"batch 1, lanes kernel, channels split", {1, 64, 8, 8}, {336, 64, 3, 3}, {.padding = {1, 1}}},
  };
  return all;
}

using ForwardKernel = void (*)(const float*, const float*, const float*, const tg::Conv2dGeometry&, float*);
using BackwardKernel = void (*)(const float*, const float*, const float*, const tg::Conv2dGeometry&, float*,
                                float*, float*);

// One kernel family against the reference: forward with and without bias; backward with every gradient, and
// with each one alone (the others null).
void check_family(const ConvExpected& e, ForwardKernel forward, BackwardKernel backward) {
  const tg::Conv2dGeometry& g = e.g;
  Buffer out = poisoned(e.out.size());
  forward(e.x.data(), e.w.data(), e.b.data(), g, out.data());
  check_close(out, e.out, "forward with bias");
  out = poisoned(e.out.size());
  forward(e.x.data(), e.w.data(), nullptr, g, out.data());
  check_close(out, e.out_no_bias, "forward without bias");

  Buffer dx = poisoned(e.dx.size()), dw = poisoned(e.dw.size()), db = poisoned(e.db.size());
  backward(e.dout.data(), e.x.data(), e.w.data(), g, dx.data(), dw.data(), db.data());
  check_close(dx, e.dx, "dx");
  check_close(dw, e.dw, "dweight");
  check_close(db, e.db, "dbias");

  dx = poisoned(e.dx.size());
  backward(e.dout.data(), e.x.data(), e.w.data(), g, dx.data(), nullptr, nullptr);
  check_close(dx, e.dx, "dx alone");
  dw = poisoned(e.dw.size());
  backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, dw.data(), nullptr);
  check_close(dw, e.dw, "dweight alone");
  db = poisoned(e.db.size());
  backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, nullptr, db.data());
  check_close(db, e.db, "dbias alone");
  backward(e.dout.data(), e.x.data(), e.w.data(), g, nullptr, nullptr, nullptr);  // nothing wanted: no crash
}

}  // namespace

TEST_CASE("conv2d im2col kernels agree with the reference, forward and backward (dx, dweight, dbias)") {
  for (const ConvCase& c : cases()) {
    INFO(c.name, ": x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    check_family(conv_reference(c), tg::conv2d_im2col_forward, tg::conv2d_im2col_backward);
  }
}

TEST_CASE("conv2d direct kernels agree with the reference wherever they apply, forward and backward") {
  const test_util::ScopedNumThreads threads(
      3);  // batch 1 and 2 split rows or channels, batch 3 and more images
  int applied = 0;
  for (const ConvCase& c : cases()) {
    INFO(c.name, ": x ", tg::shape_str(c.x), " w ", tg::shape_str(c.w));
    const ConvExpected e = conv_reference(c);
    if (!tg::conv2d_direct_applies(e.g)) continue;
    ++applied;
    check_family(e, tg::conv2d_direct_forward, tg::conv2d_direct_backward);
  }
  CHECK(applied == static_cast<int>(cases().size()) - 2);  // all but the two strided cases
}

TEST_CASE("conv2d kernels give zero weight and bias gradients for an empty batch") {
  const tg::Conv2dGeometry g = tg::conv2d_geometry({0, 3, 6, 6}, {4, 3, 3, 3}, {.padding = {1, 1}});
  const Buffer w = random_buffer(4 * 27, 2);
  for (const BackwardKernel backward : {tg::conv2d_im2col_backward, tg::conv2d_direct_backward}) {
    Buffer dw = poisoned(w.size()), db = poisoned(4);
    backward(nullptr, nullptr, w.data(), g, nullptr, dw.data(), db.data());
    CHECK(dw == Buffer(w.size(), 0.f));
    CHECK(db == Buffer(4, 0.f));
  }
}

TEST_CASE(
    "conv2d_kernel picks direct for stride 1 and im2col for strided convs; set_conv_algorithm forces one") {
  const tg::Conv2dGeometry unit = tg::conv2d_geometry({1, 2, 8, 8}, {3, 2, 3, 3}, {});
  const tg::Conv2dGeometry strided = tg::conv2d_geometry({1, 2, 8, 8}, {3, 2, 3, 3}, {.stride = {2, 2}});
  {
    const test_util::ScopedConvAlgorithm guard(tg::ConvAlgorithm::Auto);
    CHECK(tg::conv2d_kernel(unit) == tg::Conv2dKernel::Direct);
    CHECK(tg::conv2d_kernel(strided) == tg::Conv2dKernel::Im2col);
  }
  {
    const test_util::ScopedConvAlgorithm guard(tg::ConvAlgorithm::Im2col);
    CHECK(tg::conv2d_kernel(unit) == tg::Conv2dKernel::Im2col);
  }
  {
    const test_util::ScopedConvAlgorithm guard(tg::ConvAlgorithm::Direct);
    CHECK(tg::conv2d_kernel(unit) == tg::Conv2dKernel::Direct);
    CHECK(tg::conv2d_kernel(strided) == tg::Conv2dKernel::Im2col);  // direct does not apply: falls back
  }
}

TEST_CASE("ScopedConvAlgorithm restores the previous algorithm when a check throws") {
  const tg::ConvAlgorithm before = tg::conv_algorithm();
  try {
    const test_util::ScopedConvAlgorithm guard(
        before == tg::ConvAlgorithm::Im2col ? tg::ConvAlgorithm::Direct : tg::ConvAlgorithm::Im2col);
    throw std::runtime_error("a REQUIRE failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(tg::conv_algorithm() == before);
}
