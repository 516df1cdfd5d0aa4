// Matrix products through OpenBLAS SGEMM: matmul and linear (fully connected).
#include "core/ops/linear.hpp"

#include "core/base/error.hpp"
#include "core/kernels/blas.hpp"
#include "core/runtime/precision.hpp"

namespace tg {

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2) {
    fail("matmul: expected two 2-d tensors [n, k] x [k, m], got ", shape_str(a.shape()), " x ",
         shape_str(b.shape()));
  }
  if (a.shape()[1] != b.shape()[0]) {
    fail("matmul: inner dimensions differ: ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  }
  const std::size_t n = a.shape()[0], k = a.shape()[1], m = b.shape()[1];
  Array out = Array::from_shape({n, m});
  parallel_sgemm(false, false, n, m, k, 1.f, a.value().data(), b.value().data(), 0.f, out.data());
  return make_op("matmul", std::move(out), {a, b},
                 [a, b](const Array& dout) { return matmul_backward(dout, a, b); });
}

// da [n,k] = dout [n,m] b^T ; db [k,m] = a^T dout
std::vector<Array> matmul_backward(const Array& dout, const Tensor& a, const Tensor& b) {
  const std::size_t n = a.shape()[0], k = a.shape()[1], m = b.shape()[1];
  Array da = no_gradient(), db = no_gradient();
  if (a.requires_grad()) {
    da = Array::from_shape({n, k});
    parallel_sgemm(false, true, n, k, m, 1.f, dout.data(), b.value().data(), 0.f, da.data());
  }
  if (b.requires_grad()) {
    db = Array::from_shape({k, m});
    parallel_sgemm(true, false, k, m, n, 1.f, a.value().data(), dout.data(), 0.f, db.data());
  }
  return gradients(std::move(da), std::move(db));
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (w.dim() != 2) fail("linear: expected weight [out, in], got ", shape_str(w.shape()));
  const std::size_t out = w.shape()[0], in = w.shape()[1];
  if (x.dim() != 2 || x.shape()[1] != in) {
    fail("linear: expected input [N, ", in, "] for weight ", shape_str(w.shape()), ", got ",
         shape_str(x.shape()));
  }
  if (b.defined() && (b.dim() != 1 || b.shape()[0] != out)) {
    fail("linear: expected bias [", out, "] for weight ", shape_str(w.shape()), ", got ",
         shape_str(b.shape()));
  }
  const std::size_t batch = x.shape()[0];
  Array y = Array::from_shape({batch, out});
  if (b.defined()) {  // start from the bias in every row, then accumulate x w^T on top (beta = 1)
    const float* pb = b.value().data();
    for (std::size_t i = 0; i < batch; ++i) std::copy(pb, pb + out, y.data() + i * out);
  }
  // bf16 mixed precision: the products in bf16 (tg::set_precision), the choice kept for the backward.
  const bool bf16 = precision() == Precision::bf16;
  (bf16 ? parallel_sgemm_bf16 : parallel_sgemm)(false, true, batch, out, in, 1.f, x.value().data(),
                                                w.value().data(), b.defined() ? 1.f : 0.f, y.data());
  std::vector<Tensor> inputs = b.defined() ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w};
  return make_op("linear", std::move(y), inputs,
                 [x, w, b, bf16](const Array& dy) { return linear_backward(dy, x, w, b, bf16); });
}

// y [N,out] = x [N,in] w^T + b
// dx [N,in] = dy w ; dw [out,in] = dy^T x ; db [out] = sum over N of dy
std::vector<Array> linear_backward(const Array& dy, const Tensor& x, const Tensor& w, const Tensor& b,
                                   bool bf16) {
  const auto gemm = bf16 ? parallel_sgemm_bf16 : parallel_sgemm;
  const std::size_t batch = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
  Array dx = no_gradient(), dw = no_gradient(), db = no_gradient();
  if (x.requires_grad()) {
    dx = Array::from_shape({batch, in});
    gemm(false, false, batch, in, out, 1.f, dy.data(), w.value().data(), 0.f, dx.data());
  }
  if (w.requires_grad()) {
    dw = Array::from_shape({out, in});
    gemm(true, false, out, in, batch, 1.f, dy.data(), x.value().data(), 0.f, dw.data());
  }
  if (b.defined() && b.requires_grad()) {
    db = xt::zeros<float>({out});
    float* pdb = db.data();
    for (std::size_t i = 0; i < batch; ++i) {
      const float* row = dy.data() + i * out;
      for (std::size_t o = 0; o < out; ++o) pdb[o] += row[o];
    }
  }
  if (b.defined()) return gradients(std::move(dx), std::move(dw), std::move(db));
  return gradients(std::move(dx), std::move(dw));
}

}  // namespace tg
