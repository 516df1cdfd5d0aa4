// Running exported ONNX models in onnxruntime from a doctest suite: the npm package onnxruntime-node under
// Node.js, through tests/onnx/ort_run.js (paths from tests/CMakeLists.txt: TG_NODE, TG_ORT_RUNNER and
// TG_ORT_MODULES, which the environment variable TG_ORT_MODULES overrides when set). When Node.js or
// onnxruntime-node is missing the calling test FAILS, saying how to install them (scripts/setup.sh): a
// comparison with onnxruntime is never skipped silently.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace test_util {

// A float32 C-order .npy file (what ort_run.js writes); REQUIREs a well-formed one.
inline tg::Array read_npy(const std::string& path) {
  const std::string bytes = read_text(path);
  REQUIRE_MESSAGE((bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0), path, ": not a .npy file");
  const bool v1 = bytes[6] == 1;
  const std::size_t start = v1 ? 10 : 12;
  std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  if (!v1) header_len |= (static_cast<std::size_t>(static_cast<unsigned char>(bytes[10])) << 16);
  REQUIRE(bytes.size() >= start + header_len);
  const std::string header = bytes.substr(start, header_len);
  REQUIRE_MESSAGE(header.find("'<f4'") != std::string::npos, path, ": not float32: ", header);
  const std::size_t open = header.find("'shape': (");
  REQUIRE(open != std::string::npos);
  const std::size_t close = header.find(')', open);
  tg::Shape shape;
  std::string dims = header.substr(open + 10, close - open - 10);
  for (std::size_t pos = 0; pos < dims.size();) {
    const std::size_t comma = std::min(dims.find(',', pos), dims.size());
    const std::string dim = dims.substr(pos, comma - pos);
    if (dim.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoul(dim));
    pos = comma + 1;
  }
  tg::Array a = tg::Array::from_shape(shape);
  REQUIRE_MESSAGE(bytes.size() - start - header_len == a.size() * sizeof(float), path, ": ",
                  bytes.size() - start - header_len, " data bytes for ", tg::shape_str(shape));
  std::memcpy(a.data(), bytes.data() + start + header_len, a.size() * sizeof(float));
  return a;
}

// Runs each (model.onnx, input) in onnxruntime, in one Node.js process, and returns the outputs "logits".
inline std::vector<tg::Array> run_onnxruntime_all(const std::vector<std::pair<std::string, tg::Array>>& cases,
                                                  int threads = 1) {
  TempDir dir;
  std::string list;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string in = dir.file("in" + std::to_string(i) + ".npy");
    tg::dump_npy(cases[i].second, in);
    list += cases[i].first + "\t" + in + "\t" + dir.file("out" + std::to_string(i) + ".npy") + "\n";
  }
  write_text(dir.file("list.txt"), list);
  // $TG_ORT_MODULES, when set, overrides the repository's .cache/onnxruntime/node_modules
  const char* env = std::getenv("TG_ORT_MODULES");
  const std::string modules = env && *env ? env : TG_ORT_MODULES;
  const RunResult r = run("TG_ORT_MODULES='" + modules + "' '" TG_NODE "' '" TG_ORT_RUNNER "' --list '" +
                          dir.file("list.txt") + "' --threads " + std::to_string(threads));
  if (r.code == 127 || r.code == 126) {
    FAIL("onnxruntime is absent: Node.js ('" TG_NODE "') does not run (", r.output.substr(0, 300),
         "); install it and onnxruntime-node with scripts/setup.sh (as root: Debian's nodejs and npm, then "
         "npm's onnxruntime-node into .cache/onnxruntime)");
  }
  if (r.code == 3) {
    FAIL("onnxruntime is absent: ", r.output);  // ort_run.js says where it looked and to run scripts/setup.sh
  }
  REQUIRE_MESSAGE(r.code == 0, "onnxruntime (tests/onnx/ort_run.js) failed: ", r.output);
  std::vector<tg::Array> outputs;
  for (std::size_t i = 0; i < cases.size(); ++i)
    outputs.push_back(read_npy(dir.file("out" + std::to_string(i) + ".npy")));
  return outputs;
}

// One model on one input in onnxruntime: its output "logits".
inline tg::Array run_onnxruntime(const std::string& onnx_path, const tg::Array& input, int threads = 1) {
  return run_onnxruntime_all({{onnx_path, input}}, threads).front();
}

// How far `got` is from `want` against the tolerance |got - want| <= atol + rtol * |want| (numpy's allclose):
// the largest |got - want| / (atol + rtol * |want|) over the elements (<= 1: within), and the largest
// |got - want|. Infinity when the shapes differ or a value is not finite.
struct Closeness {
  double worst_ratio = 0, max_abs_diff = 0;
  bool ok() const { return worst_ratio <= 1.0; }
};
inline Closeness closeness(const tg::Array& got, const tg::Array& want, double atol = 1e-5,
                           double rtol = 1e-5) {
  Closeness c;
  if (got.shape() != want.shape()) return {INFINITY, INFINITY};
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got.data()[i], w = want.data()[i];
    if (!std::isfinite(g) || !std::isfinite(w)) return {INFINITY, INFINITY};
    const double d = std::abs(g - w);
    c.max_abs_diff = std::max(c.max_abs_diff, d);
    c.worst_ratio = std::max(c.worst_ratio, d / (atol + rtol * std::abs(w)));
  }
  return c;
}

}  // namespace test_util
