// Why one file: the Walker is one class whose node mappings share its graph, shape tracking and messages;
// split, each part would need all of it.
// ONNX import, the nodes: the graph (import_graph.cpp) walked from its input to its output, each node (or a
// short run of nodes: Pad + Conv, GlobalAveragePool + Flatten, MatMul + Add) becoming one layer of a
// Sequential, and each fork that joins again at an Add a tg::Residual. The entry points: import_model.cpp.
#include "core/base/error.hpp"
#include "layers/activations.hpp"
#include "layers/batchnorm.hpp"
#include "layers/conv2d.hpp"
#include "layers/linear.hpp"
#include "layers/model_file.hpp"
#include "layers/onnx/import_graph.hpp"
#include "layers/onnx/import_walk.hpp"
#include "layers/onnx/onnx.hpp"
#include "layers/onnx/onnx_proto.hpp"
#include "layers/pooling.hpp"
#include "layers/residual.hpp"

namespace tg {
namespace {

using onnx_detail::float_attribute;
using onnx_detail::Graph;
using onnx_detail::int_attribute;
using onnx_detail::ints_attribute;
using onnx_detail::string_attribute;

const char* const kSupported =
    "Conv, BatchNormalization, Relu, Clip (0 to 6), LeakyRelu, Sigmoid, Tanh, Softmax and LogSoftmax (last "
    "axis), MaxPool, AveragePool, Pad (before Conv or AveragePool), GlobalAveragePool + Flatten, Flatten, "
    "Gemm, "
    "MatMul (+ Add), Add (joining a residual block), Dropout, Identity";

// Spatial padding waiting for the Conv or AveragePool after a Pad node: top, left, bottom, right.
using Pads = std::array<std::int64_t, 4>;

class Walker {
 public:
  Walker(const Graph& g, std::string file, std::int64_t opset)
      : g_(g), file_(std::move(file)), opset_(opset) {}

  // Maps the nodes from tensor `cur` (of per-example shape `shape`) up to tensor `stop` into `seq`; returns
  // the shape of `stop`.
  Shape chain(std::string cur, const std::string& stop, Shape shape, Sequential& seq) {
    while (cur != stop) {
      std::vector<std::size_t> next;
      for (const std::size_t c : g_.consumers(cur))
        if (g_.reaches(c, stop)) next.push_back(c);
      if (next.size() == 1) {
        cur = layer(next[0], cur, shape, seq, Pads{});
      } else if (next.size() == 2) {
        cur = block(cur, next, shape, seq);
      } else {
        fail(file_, ": the tensor '", cur, "' feeds ", next.size(),
             " branches; tapegrad imports chains of layers and residual blocks of two branches joined by an "
             "Add");
      }
    }
    return shape;
  }

  std::vector<std::string> notes;

 private:
  const Graph& g_;
  std::string file_;
  std::int64_t opset_;
  std::size_t dropped_ = 0;

  [[noreturn]] void node_fail(std::size_t i, const std::string& what) const {
    fail(file_, ": ", g_.describe(i), ": ", what);
  }

  // The per-example shape after `m`, with its errors naming node i.
  Shape output_of(std::size_t i, const Module& m, const Shape& shape) const {
    Shape out;
    try {
      out = m.output_shape(shape);
    } catch (const Error& e) {
      node_fail(i, std::string("cannot take its input of shape ") + shape_str(shape) + ": " + e.what());
    }
    double elements = 1;
    for (const std::size_t d : out) elements *= static_cast<double>(d);
    if (elements > static_cast<double>(kMaxLayerOutputElements))
      node_fail(i, "its output " + shape_str(out) + " has more elements per example than tapegrad allows");
    return out;
  }

  template <class M>
  std::string add(std::size_t i, M&& m, Shape& shape, Sequential& seq) {
    shape = output_of(i, m, shape);
    seq.add(std::forward<M>(m));
    return g_.node(i).output(0);
  }

  // The only consumer of node i's output on the way on (for Pad, GlobalAveragePool, MatMul).
  std::optional<std::size_t> sole_next(std::size_t i) const {
    const std::vector<std::size_t>& c = g_.consumers(g_.node(i).output(0));
    if (c.size() != 1) return std::nullopt;
    return c[0];
  }

  void expect_spatial(std::size_t i, const Shape& shape) const {
    if (shape.size() != 3)
      node_fail(i, "expects an image batch [N, C, H, W], but its input is " + shape_str(shape));
  }

  // pads [top, left, bottom, right] (+ a Pad node's) as tapegrad's symmetric padding; `same` when the
  // extra pixel of an even kernel goes bottom/right at stride 1, as PyTorch and tapegrad put it.
  std::array<int, 2> symmetric(std::size_t i, const std::vector<std::int64_t>& pads,
                               const Pads& extra) const {
    if (!pads.empty() && pads.size() != 4) node_fail(i, "expects 4 pads, got " + std::to_string(pads.size()));
    Pads p = extra;
    for (std::size_t k = 0; k < pads.size(); ++k) p[k] += pads[k];
    if (p[0] != p[2] || p[1] != p[3])
      node_fail(i, "asymmetric padding (top " + std::to_string(p[0]) + ", left " + std::to_string(p[1]) +
                       ", bottom " + std::to_string(p[2]) + ", right " + std::to_string(p[3]) +
                       ") has no tapegrad layer line");
    if (p[0] < 0 || p[1] < 0) node_fail(i, "negative padding is not supported");
    return {static_cast<int>(p[0]), static_cast<int>(p[1])};
  }

  std::array<int, 2> pair_attribute(std::size_t i, const char* name, int fallback) const {
    const std::vector<std::int64_t> v = ints_attribute(g_.node(i), name);
    if (v.empty()) return {fallback, fallback};
    if (v.size() != 2 || v[0] < 1 || v[1] < 1 || v[0] > 1 << 16 || v[1] > 1 << 16)
      node_fail(i, std::string("attribute '") + name + "' should be two positive sizes");
    return {static_cast<int>(v[0]), static_cast<int>(v[1])};
  }

  void expect_no_auto_pad(std::size_t i) const {
    const std::string auto_pad = string_attribute(g_.node(i), "auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      node_fail(i, "auto_pad=" + auto_pad + " is not supported (explicit pads and VALID are)");
  }

  std::string conv(std::size_t i, Shape& shape, Sequential& seq, const Pads& extra) {
    const onnx::NodeProto& n = g_.node(i);
    expect_spatial(i, shape);
    if (n.input_size() < 2) node_fail(i, "has no weight input");
    Array w = g_.float_constant(i, n.input(1));
    const std::int64_t groups = int_attribute(n, "group", 1);
    if (w.dimension() != 4)
      node_fail(i, "its weight '" + n.input(1) + "' has shape " + shape_str(w.shape()) +
                       " (expected 4 dimensions)");
    if (groups < 1 || w.shape()[1] * static_cast<std::size_t>(groups) != shape[0] ||
        w.shape()[0] % static_cast<std::size_t>(groups) != 0)
      node_fail(i, "its weight '" + n.input(1) + "' of shape " + shape_str(w.shape()) + " with group " +
                       std::to_string(groups) + " does not match its input of " + std::to_string(shape[0]) +
                       " channels (the weight is [out, in / group, kh, kw])");
    const std::array<int, 2> kernel{static_cast<int>(w.shape()[2]), static_cast<int>(w.shape()[3])};
    const std::vector<std::int64_t> ks = ints_attribute(n, "kernel_shape");
    if (!ks.empty() && (ks.size() != 2 || ks[0] != kernel[0] || ks[1] != kernel[1]))
      node_fail(i, "kernel_shape disagrees with its weight " + shape_str(w.shape()));
    Conv2dOptions o;
    o.stride = pair_attribute(i, "strides", 1);
    o.dilation = pair_attribute(i, "dilations", 1);
    o.groups = static_cast<int>(groups);
    const std::string auto_pad = string_attribute(n, "auto_pad", "NOTSET");
    std::vector<std::int64_t> pads = ints_attribute(n, "pads");
    if (auto_pad == "SAME_UPPER" && o.stride == std::array<int, 2>{1, 1}) {
      o.padding = kSame;
    } else {
      expect_no_auto_pad(i);
      if (auto_pad == "VALID") pads.clear();
      const bool stride1 = o.stride == std::array<int, 2>{1, 1};
      Pads p = extra;
      for (std::size_t k = 0; k < pads.size() && k < 4; ++k) p[k] += pads[k];
      const std::int64_t th = o.dilation[0] * (kernel[0] - 1), tw = o.dilation[1] * (kernel[1] - 1);
      if (stride1 && (p[0] != p[2] || p[1] != p[3]) && p == Pads{th / 2, tw / 2, th - th / 2, tw - tw / 2}) {
        o.padding = kSame;
      } else {
        const std::array<int, 2> s = symmetric(i, pads, extra);
        o.padding = Padding2d{s[0], s[1], false};
      }
    }
    const bool has_bias = n.input_size() > 2 && !n.input(2).empty();
    Conv2D c(shape[0], w.shape()[0], KernelSize(kernel[0], kernel[1]), o, has_bias);
    c.weight.value() = std::move(w);
    if (has_bias) c.bias.value() = vector_of(i, n.input(2), c.out_channels);
    return add(i, std::move(c), shape, seq);
  }

  // A constant of `size` values, shaped [size] (a [1, size] bias too).
  Array vector_of(std::size_t i, const std::string& tensor, std::size_t size) const {
    Array a = g_.float_constant(i, tensor);
    if (a.size() != size || (a.dimension() > 1 && a.shape()[a.dimension() - 1] != size))
      node_fail(i, "its input '" + tensor + "' has shape " + shape_str(a.shape()) + " (expected [" +
                       std::to_string(size) + "])");
    return Array(xt::reshape_view(a, {size}));
  }

  std::string batch_norm(std::size_t i, Shape& shape, Sequential& seq) {
    const onnx::NodeProto& n = g_.node(i);
    expect_spatial(i, shape);
    if (n.input_size() != 5) node_fail(i, "expects 5 inputs (X, scale, B, mean, var)");
    if (int_attribute(n, "training_mode", 0) != 0) node_fail(i, "training_mode=1 is not supported");
    for (int k = 1; k < n.output_size(); ++k)
      if (!n.output(k).empty() && !g_.consumers(n.output(k)).empty())
        node_fail(i, "its running-statistics outputs are used");
    BatchNorm2d bn(shape[0], {.eps = float_attribute(n, "epsilon", 1e-5f)});
    bn.weight.value() = vector_of(i, n.input(1), shape[0]);
    bn.bias.value() = vector_of(i, n.input(2), shape[0]);
    bn.running_mean.value() = vector_of(i, n.input(3), shape[0]);
    bn.running_var.value() = vector_of(i, n.input(4), shape[0]);
    return add(i, std::move(bn), shape, seq);
  }

  // A Clip bound: an input (opset 11 on) or an attribute (before); nullopt when absent.
  std::optional<float> clip_bound(std::size_t i, int input, const char* attribute) const {
    const onnx::NodeProto& n = g_.node(i);
    if (n.input_size() > input && !n.input(input).empty()) {
      const Array a = g_.float_constant(i, n.input(input));
      if (a.size() != 1) node_fail(i, std::string(attribute) + " should be one value");
      return a.data()[0];
    }
    for (const onnx::AttributeProto& a : n.attribute())
      if (a.name() == attribute) return a.f();
    return std::nullopt;
  }

  std::string pool(std::size_t i, bool max, Shape& shape, Sequential& seq, const Pads& extra) {
    const onnx::NodeProto& n = g_.node(i);
    expect_spatial(i, shape);
    expect_no_auto_pad(i);
    if (int_attribute(n, "ceil_mode", 0) != 0) node_fail(i, "ceil_mode=1 is not supported");
    if (pair_attribute(i, "dilations", 1) != std::array<int, 2>{1, 1})
      node_fail(i, "dilations are not supported");
    if (n.output_size() > 1 && !n.output(1).empty() && !g_.consumers(n.output(1)).empty())
      node_fail(i, "its Indices output is used");
    const std::vector<std::int64_t> ks = ints_attribute(n, "kernel_shape");
    if (ks.size() != 2) node_fail(i, "needs a kernel_shape of two sizes");
    const std::array<int, 2> kernel = pair_attribute(i, "kernel_shape", 1);
    const std::array<int, 2> stride = pair_attribute(i, "strides", 1);
    const std::vector<std::int64_t> pads = ints_attribute(n, "pads");
    const std::array<int, 2> padding = symmetric(i, pads, extra);
    if (max) return add(i, MaxPool2D({.kernel = kernel, .stride = stride, .padding = padding}), shape, seq);
    const bool own_pads = std::any_of(pads.begin(), pads.end(), [](std::int64_t p) { return p != 0; });
    if (own_pads && int_attribute(n, "count_include_pad", 0) == 0)
      node_fail(i,
                "count_include_pad=0 with padding: tapegrad's avgpool2d counts the padded zeros "
                "(count_include_pad=1, PyTorch's default)");
    return add(i, AvgPool2D({.kernel = kernel, .stride = stride, .padding = padding}), shape, seq);
  }

  // Pad (constant zeros, height and width only) merged into the Conv or AveragePool after it.
  std::string pad(std::size_t i, Shape& shape, Sequential& seq) {
    const onnx::NodeProto& n = g_.node(i);
    if (string_attribute(n, "mode", "constant") != "constant")
      node_fail(i, "only mode=constant is supported");
    std::vector<std::int64_t> pads = n.input_size() > 1 && !n.input(1).empty()
                                         ? g_.int_constant(i, n.input(1))
                                         : ints_attribute(n, "pads");
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Array v = g_.float_constant(i, n.input(2));
      if (v.size() != 1 || v.data()[0] != 0.f) node_fail(i, "only zero padding is supported");
    }
    if (pads.size() != 8 || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0)
      node_fail(i, "only padding of height and width ([0, 0, t, l, 0, 0, b, r]) is supported");
    const std::optional<std::size_t> next = sole_next(i);
    const std::string next_op = next ? g_.node(*next).op_type() : "";
    if (next_op != "Conv" && next_op != "AveragePool")
      node_fail(i, "a Pad must be followed by a Conv or an AveragePool, which take its padding");
    const Pads extra{pads[2], pads[3], pads[6], pads[7]};
    return next_op == "Conv" ? conv(*next, shape, seq, extra) : pool(*next, false, shape, seq, extra);
  }

  std::string linear(std::size_t i, Shape& shape, Sequential& seq) {
    const onnx::NodeProto& n = g_.node(i);
    const bool gemm = n.op_type() == "Gemm";
    if (shape.size() != 1)
      node_fail(
          i, "expects a flat input [N, F], but its input is " + shape_str(shape) + " (a Flatten missing?)");
    if (n.input_size() < 2) node_fail(i, "has no weight input");
    Array w = g_.float_constant(i, n.input(1));
    if (gemm && (int_attribute(n, "transA", 0) != 0 || float_attribute(n, "alpha", 1.f) != 1.f ||
                 float_attribute(n, "beta", 1.f) != 1.f))
      node_fail(i, "only transA=0, alpha=1, beta=1 are supported");
    const bool trans_b = gemm && int_attribute(n, "transB", 0) != 0;
    if (w.dimension() != 2 || w.shape()[trans_b ? 1 : 0] != shape[0])
      node_fail(i, "its weight '" + n.input(1) + "' has shape " + shape_str(w.shape()) +
                       ", which does not take " + std::to_string(shape[0]) + " input features" +
                       (trans_b ? " (transB=1: [out, in])" : " ([in, out])"));
    if (!trans_b) w = Array(xt::transpose(w));
    std::string bias_name = gemm && n.input_size() > 2 ? n.input(2) : "";
    std::size_t last = i;
    if (!gemm) {  // MatMul, then perhaps Add(bias)
      const std::optional<std::size_t> next = sole_next(i);
      if (next && g_.node(*next).op_type() == "Add") {
        const onnx::NodeProto& a = g_.node(*next);
        const std::string other = a.input(0) == n.output(0) ? a.input(1) : a.input(0);
        if (g_.constant(other)) bias_name = other, last = *next;
      }
    }
    Linear l(shape[0], w.shape()[0], !bias_name.empty());
    l.weight.value() = std::move(w);
    if (!bias_name.empty()) l.bias.value() = vector_of(last, bias_name, l.weight.value().shape()[0]);
    add(i, std::move(l), shape, seq);
    return g_.node(last).output(0);
  }

  std::string softmax(std::size_t i, bool log, Shape& shape, Sequential& seq) {
    const std::int64_t rank = static_cast<std::int64_t>(shape.size()) + 1;
    std::int64_t axis = int_attribute(g_.node(i), "axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1) node_fail(i, "only the last axis is supported (tapegrad's softmax and logsoftmax)");
    if (log) return add(i, LogSoftmax(), shape, seq);
    return add(i, Softmax(), shape, seq);
  }

  // One layer (or a short run of nodes) from node i, which reads `cur`; returns the tensor after it.
  std::string layer(std::size_t i, const std::string& cur, Shape& shape, Sequential& seq, const Pads& extra) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string& op = n.op_type();
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      node_fail(i, "the domain '" + n.domain() + "' is not supported");
    if (n.input_size() == 0 || n.input(0) != cur)
      node_fail(i, "should read '" + cur + "' as its first input");
    if (op == "Conv") return conv(i, shape, seq, extra);
    if (op == "BatchNormalization") return batch_norm(i, shape, seq);
    if (op == "Relu") return add(i, ReLU(), shape, seq);
    if (op == "Sigmoid") return add(i, Sigmoid(), shape, seq);
    if (op == "Tanh") return add(i, Tanh(), shape, seq);
    if (op == "LeakyRelu") return add(i, LeakyReLU(float_attribute(n, "alpha", 0.01f)), shape, seq);
    if (op == "Clip") {
      const std::optional<float> lo = clip_bound(i, 1, "min"), hi = clip_bound(i, 2, "max");
      if (lo == 0.f && hi == 6.f) return add(i, ReLU6(), shape, seq);
      if (lo == 0.f && !hi) return add(i, ReLU(), shape, seq);
      node_fail(i, "only Clip(0, 6) (relu6) and Clip(0) (relu) are supported");
    }
    if (op == "Softmax" || op == "LogSoftmax") return softmax(i, op == "LogSoftmax", shape, seq);
    if (op == "MaxPool" || op == "AveragePool") return pool(i, op == "MaxPool", shape, seq, extra);
    if (op == "Pad") return pad(i, shape, seq);
    if (op == "GlobalAveragePool") {
      expect_spatial(i, shape);
      const std::optional<std::size_t> next = sole_next(i);
      if (!next || g_.node(*next).op_type() != "Flatten" || int_attribute(g_.node(*next), "axis", 1) != 1)
        node_fail(i, "must be followed by Flatten (axis 1): tapegrad's globalavgpool2d gives [N, C]");
      add(i, GlobalAvgPool2D(), shape, seq);
      return g_.node(*next).output(0);
    }
    if (op == "Flatten") {
      if (int_attribute(n, "axis", 1) != 1) node_fail(i, "only axis=1 is supported");
      return add(i, Flatten(), shape, seq);
    }
    if (op == "Gemm" || op == "MatMul") return linear(i, shape, seq);
    if (op == "Dropout" || op == "Identity") {
      if (n.output_size() > 1 && !n.output(1).empty() && !g_.consumers(n.output(1)).empty())
        node_fail(i, "its mask output is used");
      ++dropped_;
      if (dropped_ == 1)
        notes.push_back("Dropout and Identity nodes are left out (inference does not use them)");
      return n.output(0);
    }
    if (op == "Add") node_fail(i, "an Add that does not join the two branches of a residual block");
    node_fail(i, "no tapegrad layer for this op; supported: " + std::string(kSupported));
  }

  // Whether the tensor comes out of the branch that starts at node `branch` (`cur` itself when `branch`
  // is the join).
  bool from(std::size_t branch, const std::string& tensor) const { return g_.reaches(branch, tensor); }

  // A fork at `cur` into nodes a and b: the Add that joins them, each branch a Sequential.
  std::string block(const std::string& cur, const std::vector<std::size_t>& next, Shape& shape,
                    Sequential& seq) {
    const std::size_t a = next[0], b = next[1];
    std::optional<std::size_t> join;
    std::string body_end, shortcut_end;   // shortcut_end == cur: the identity
    for (const std::size_t j : {a, b}) {  // the identity: one branch is the Add itself
      const onnx::NodeProto& n = g_.node(j);
      const std::size_t other = j == a ? b : a;
      if (n.op_type() == "Add" && n.input_size() == 2 && (n.input(0) == cur || n.input(1) == cur)) {
        const std::string& t = n.input(0) == cur ? n.input(1) : n.input(0);
        if (from(other, t)) join = j, body_end = t, shortcut_end = cur;
      }
    }
    for (std::size_t j = 0; !join && j < static_cast<std::size_t>(g_.proto().node_size()); ++j) {
      const onnx::NodeProto& n = g_.node(j);
      if (n.op_type() != "Add" || n.input_size() != 2) continue;
      const std::string &t0 = n.input(0), &t1 = n.input(1);
      const bool a0 = from(a, t0), b0 = from(b, t0), a1 = from(a, t1), b1 = from(b, t1);
      if (a0 != b0 && a1 != b1 && a0 != a1) join = j, body_end = t0, shortcut_end = t1;
    }
    if (!join)
      fail(file_, ": the tensor '", cur, "' feeds ", g_.describe(a), " and ", g_.describe(b),
           ", whose branches never join at an Add: not a residual block");
    Sequential body, shortcut;
    const Shape body_shape = chain(cur, body_end, shape, body);
    const Shape shortcut_shape = shortcut_end == cur ? shape : chain(cur, shortcut_end, shape, shortcut);
    if (body.size() == 0) node_fail(*join, "a residual block whose body is empty");
    if (body_shape != shortcut_shape)
      node_fail(*join, "adds " + shape_str(body_shape) + " and " + shape_str(shortcut_shape) +
                           ": a residual block's branches must give the same shape (no broadcasting)");
    if (shortcut_end == cur) {
      seq.add(Residual(std::move(body)));
    } else {
      seq.add(Residual(std::move(body), std::move(shortcut)));
    }
    shape = body_shape;
    return g_.node(*join).output(0);
  }
};

}  // namespace

namespace onnx_detail {

Shape walk_graph(const Graph& g, const std::string& file, std::int64_t opset, const Shape& input,
                 Sequential& seq, std::vector<std::string>& notes) {
  Walker walker(g, file, opset);
  const Shape out = walker.chain(g.input(), g.output(), input, seq);
  notes.insert(notes.end(), walker.notes.begin(), walker.notes.end());
  return out;
}

}  // namespace onnx_detail
}  // namespace tg
