// The bf16 matrix products (gemm_bf16 of core/kernels/gemm.hpp, sgemm_bf16 and parallel_sgemm_bf16 of
// blas.hpp) and what runs on them under tg::set_precision(Precision::bf16): linear layers and strided convs
// (im2col). Each against a float64 product of the same bf16-rounded operands: what is left is float32
// summation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "conv2d_cases.hpp"
#include "core/kernels/blas.hpp"
#include "core/kernels/conv2d.hpp"
#include "core/kernels/gemm.hpp"
#include "core/runtime/precision.hpp"
#include "core/runtime/threads.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

namespace {

using conv2d_test::Buffer;

Buffer bf16_rounded(const Buffer& b) {
  Buffer r(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) r[i] = tg::from_bf16(tg::to_bf16(b[i]));
  return r;
}

// C = op(A) op(B) + beta C in double, A and B as given (row-major, contiguous).
Buffer reference_product(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const Buffer& a,
                         const Buffer& b, float beta, const Buffer& c0) {
  Buffer c(m * n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < k; ++p)
        s += static_cast<double>(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = static_cast<float>(s + beta * c0[i * n + j]);
    }
  return c;
}

}  // namespace

TEST_SUITE("bf16 gemm") {
  TEST_CASE("gemm_bf16 equals the float64 product of the bf16-rounded operands") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    struct Size {
      std::size_t m, n, k;
    };
    // odd inner dimensions (a zero partner), several blocks of kKC = 256 and kMC = 128, partial tiles
    for (const Size s :
         {Size{2, 3, 1}, Size{9, 33, 7}, Size{17, 40, 300}, Size{130, 70, 513}, Size{8, 32, 2}}) {
      for (const bool ta : {false, true})
        for (const bool tb : {false, true})
          for (const float beta : {0.f, 1.f}) {
            INFO("m ", s.m, " n ", s.n, " k ", s.k, " trans_a ", ta, " trans_b ", tb, " beta ", beta);
            const Buffer a = conv2d_test::random_buffer(s.m * s.k, 11),
                         b = conv2d_test::random_buffer(s.k * s.n, 12);
            const Buffer c0 = conv2d_test::random_buffer(s.m * s.n, 13);
            Buffer c = beta == 0.f ? conv2d_test::poisoned(s.m * s.n) : c0;
            tg::sgemm_bf16(ta, tb, s.m, s.n, s.k, 1.f, a.data(), b.data(), beta, c.data());
            const Buffer ref =
                reference_product(ta, tb, s.m, s.n, s.k, bf16_rounded(a), bf16_rounded(b), beta, c0);
            conv2d_test::check_close(c, ref, "sgemm_bf16");
            Buffer cp = beta == 0.f ? conv2d_test::poisoned(s.m * s.n) : c0;
            tg::parallel_sgemm_bf16(ta, tb, s.m, s.n, s.k, 1.f, a.data(), b.data(), beta, cp.data());
            conv2d_test::check_close(cp, ref, "parallel_sgemm_bf16");
          }
    }
  }

  TEST_CASE("the strided convs' bf16 kernels (im2col) equal the definition on bf16-rounded values") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    const conv2d_test::ConvCase cases[] = {
        {"stride 2", {4, 3, 12, 10}, {8, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}}},
        {"resnet20 shortcut, 1x1 stride 2", {3, 16, 8, 8}, {32, 16, 1, 1}, {.stride = {2, 2}}},
    };
    for (const conv2d_test::ConvCase& c : cases) {
      INFO(c.name);
      const conv2d_test::ConvExpected e = conv2d_test::conv_reference(c);
      const Buffer xr = bf16_rounded(e.x), wr = bf16_rounded(e.w), dr = bf16_rounded(e.dout);
      Buffer ref_out(e.out.size()), ref_dx(e.x.size()), ref_dw(e.w.size()), ref_db(e.b.size());
      tg::conv2d_reference_forward(xr.data(), wr.data(), e.b.data(), e.g, ref_out.data());
      tg::conv2d_reference_backward(dr.data(), xr.data(), wr.data(), e.g, ref_dx.data(), ref_dw.data(),
                                    ref_db.data());
      Buffer out = conv2d_test::poisoned(e.out.size());
      tg::conv2d_im2col_bf16_forward(e.x.data(), e.w.data(), e.b.data(), e.g, out.data());
      conv2d_test::check_close(out, ref_out, "forward");
      // dx from bf16(W)^T bf16(dout), then col2im; dweight from bf16(dout) bf16(cols)^T: the reference's
      Buffer dx = conv2d_test::poisoned(e.x.size()), dw = conv2d_test::poisoned(e.w.size()),
             db = conv2d_test::poisoned(e.b.size());
      tg::conv2d_im2col_bf16_backward(e.dout.data(), e.x.data(), e.w.data(), e.g, dx.data(), dw.data(),
                                      db.data());
      conv2d_test::check_close(dx, ref_dx, "dx");
      conv2d_test::check_close(dw, ref_dw, "dweight");
      conv2d_test::check_close(db, e.db, "dbias");
    }
  }

  TEST_CASE("under set_precision(bf16) linear runs its products in bf16, forward and backward") {
    if (!tg::bf16_supported()) {
      MESSAGE("skipped: ", tg::bf16_unsupported_reason());
      return;
    }
    const test_util::ClearTapeOnExit clear_tape;
    const std::size_t n = 6, in = 37, out = 5;
    const Buffer xv = conv2d_test::random_buffer(n * in, 21), wv = conv2d_test::random_buffer(out * in, 22),
                 bv = conv2d_test::random_buffer(out, 23), dv = conv2d_test::random_buffer(n * out, 24);
    const auto array = [](const Buffer& v, tg::Shape shape) {
      tg::Array a = tg::Array::from_shape(shape);
      std::copy(v.begin(), v.end(), a.begin());
      return a;
    };
    tg::Tensor x(array(xv, {n, in}), true), w(array(wv, {out, in}), true), b(array(bv, {out}), true);
    tg::Tensor y;
    {
      const tg::PrecisionGuard bf16(tg::Precision::bf16);
      y = tg::linear(x, w, b);
    }
    tg::sum(y * tg::Tensor(array(dv, {n, out}))).backward();  // the backward after the guard: still bf16
    const Buffer xr = bf16_rounded(xv), wr = bf16_rounded(wv), dr = bf16_rounded(dv);
    Buffer ref_y = reference_product(false, true, n, out, in, xr, wr, 0.f, Buffer(n * out, 0.f));
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t o = 0; o < out; ++o) ref_y[i * out + o] += bv[o];
    conv2d_test::check_close(Buffer(y.value().begin(), y.value().end()), ref_y, "y");
    const Buffer ref_dx = reference_product(false, false, n, in, out, dr, wr, 0.f, Buffer(n * in, 0.f));
    const Buffer ref_dw = reference_product(true, false, out, in, n, dr, xr, 0.f, Buffer(out * in, 0.f));
    conv2d_test::check_close(Buffer(x.grad().begin(), x.grad().end()), ref_dx, "dx");
    conv2d_test::check_close(Buffer(w.grad().begin(), w.grad().end()), ref_dw, "dw");
  }
}
