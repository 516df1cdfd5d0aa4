// What the conv2d kernel suites share (test_conv2d_kernels.cpp, test_conv2d_grouped.cpp): random and
// NaN-poisoned raw buffers, the comparison, and a case's reference results from the plain seven-loop
// definition (core/kernels/conv2d_reference.cpp).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/kernels/conv2d.hpp"
#include "core/ops/conv2d.hpp"
#include "core/runtime/random.hpp"

namespace conv2d_test {

using Buffer = std::vector<float>;

inline Buffer random_buffer(std::size_t n, std::uint64_t seed) {
  tg::Generator gen(seed);
  Buffer b(n);
  for (float& v : b) v = gen.uniform(-1.f, 1.f);
  return b;
}

// Output buffers start as NaN: a kernel that accumulates instead of overwriting, or skips an element, fails.
inline Buffer poisoned(std::size_t n) { return Buffer(n, std::numeric_limits<float>::quiet_NaN()); }

// |got - ref| <= 1e-4 + 1e-4 |ref| for every element; reports the first that is not.
inline void check_close(const Buffer& got, const Buffer& ref, const char* what) {
  INFO(what);
  REQUIRE(got.size() == ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!(std::abs(got[i] - ref[i]) <= 1e-4f + 1e-4f * std::abs(ref[i]))) {
      FAIL_CHECK("element ", i, " of ", ref.size(), ": got ", got[i], ", expected ", ref[i]);
      return;
    }
  }
}

struct ConvCase {
  const char* name;
  tg::Shape x, w;
  tg::Conv2dOptions options;
};

// The reference results of one case: forward with and without bias, and all three gradients.
struct ConvExpected {
  tg::Conv2dGeometry g;
  Buffer x, w, b, dout;
  Buffer out, out_no_bias, dx, dw, db;
};

inline ConvExpected conv_reference(const ConvCase& c) {
  ConvExpected e;
  e.g = tg::conv2d_geometry(c.x, c.w, c.options);
  const tg::Conv2dGeometry& g = e.g;
  const std::size_t out_size = g.batch * g.c_out * g.pixels_out();
  e.x = random_buffer(g.batch * g.c_in * g.h * g.w, 1);
  e.w = random_buffer(g.c_out * g.patch(), 2);
  e.b = random_buffer(g.c_out, 3);
  e.dout = random_buffer(out_size, 4);
  e.out = poisoned(out_size), e.out_no_bias = poisoned(out_size);
  e.dx = poisoned(e.x.size()), e.dw = poisoned(e.w.size()), e.db = poisoned(e.b.size());
  tg::conv2d_reference_forward(e.x.data(), e.w.data(), e.b.data(), g, e.out.data());
  tg::conv2d_reference_forward(e.x.data(), e.w.data(), nullptr, g, e.out_no_bias.data());
  tg::conv2d_reference_backward(e.dout.data(), e.x.data(), e.w.data(), g, e.dx.data(), e.dw.data(),
                                e.db.data());
  return e;
}

}  // namespace conv2d_test
