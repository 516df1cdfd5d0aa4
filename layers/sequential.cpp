#include "layers/sequential.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/autograd/tape.hpp"
#include "core/base/text.hpp"
#include "layers/fusion.hpp"
#include "layers/residual.hpp"

namespace tg {

Module& Sequential::add(std::unique_ptr<Module> layer) {
  if (!layer) fail("Sequential::add: null layer");
  return register_module(std::to_string(size()), std::move(layer));
}

Module& Sequential::operator[](std::size_t i) {
  if (i >= size())
    fail("Sequential: layer index ", i, " is out of range (the model has ", size(), " layers)");
  return *children()[i].second;
}

const Module& Sequential::operator[](std::size_t i) const {
  if (i >= size())
    fail("Sequential: layer index ", i, " is out of range (the model has ", size(), " layers)");
  return *children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
  bool applied = false;
  return run_layers(x, nullptr, applied);
}

Tensor Sequential::forward_tail(const Tensor& x, const fusion::Tail& tail, bool& applied) {
  return run_layers(x, &tail, applied);
}

Tensor Sequential::run_layers(const Tensor& x, const fusion::Tail* tail, bool& applied) {
  Tensor out = x;
  auto& layers = children();
  const bool fuse = fusion::allowed();  // eval/predict: conv + batch norm + ReLU as one pass
  for (std::size_t i = 0; i < layers.size();) {
    if (const ConvActivation act = fuse ? ConvActivation::None : fusion::training_activation(layers, i);
        act != ConvActivation::None) {  // training: the layer computes the activation after it in its pass
      ActivationAhead ahead;
      ahead.act = act;
      {
        fusion::AheadScope offered(ahead);
        out = call_child(layers[i].first, *layers[i].second, out);
      }
      out = call_child(layers[i + 1].first, *layers[i + 1].second, out,
                       [&](const Tensor& in) { return fused_activation(in, ahead); });
      i += 2;
      continue;
    }
    const std::size_t n = fuse ? fusion::span(layers, i) : 1;
    const fusion::Tail* last =
        tail && fuse && i + n == layers.size() && fusion::takes_tail(layers, i, n) ? tail : nullptr;
    if (n > 1 || last) {
      out = call_child(layers[i].first, *layers[i].second, out,
                       [&](const Tensor& in) { return fusion::run(layers, i, n, in, last); });
      applied = last != nullptr;
    } else {
      out = call_child(layers[i].first, *layers[i].second, out);
    }
    i += n;
  }
  return out;
}

Shape Sequential::output_shape(const Shape& input) const {
  Shape shape = input;
  for (const auto& [name, layer] : children()) shape = child_output_shape(name, *layer, shape);
  return shape;
}

std::string Sequential::to_line() const { return ""; }

std::string Sequential::describe() const { return "Sequential(" + std::to_string(size()) + " layers)"; }

void Sequential::summary_rows(const std::string& prefix, std::size_t depth, Shape& shape,
                              std::vector<SummaryRowData>& rows) const {
  for (const auto& [name, layer] : children()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    const Shape input = shape;
    shape = child_output_shape(name, *layer, shape);
    rows.push_back(
        {path, depth, layer->describe(), shape, layer->num_parameters(), layer->source_location()});
    if (const auto* residual = dynamic_cast<const Residual*>(layer.get())) {
      Shape inner = input;
      residual->body().summary_rows(path + ".body", depth + 1, inner, rows);
      if (residual->has_shortcut()) {
        inner = input;
        residual->shortcut().summary_rows(path + ".shortcut", depth + 1, inner, rows);
      }
    } else if (const auto* nested = dynamic_cast<const Sequential*>(layer.get())) {
      Shape inner = input;
      nested->summary_rows(path, depth + 1, inner, rows);
    }
  }
}

std::string Sequential::summary(const Shape& input_shape) const {
  if (input_shape.size() < 2) {
    fail("Sequential::summary: the input shape ", shape_str(input_shape),
         " needs a batch axis and at least one more, e.g. [1, 1, 28, 28]");
  }
  const std::size_t batch = input_shape[0];
  const auto batched = [batch](const Shape& example) {  // [C, H, W] -> [N, C, H, W]
    Shape out(example.size() + 1);
    out[0] = batch;
    std::copy(example.begin(), example.end(), out.begin() + 1);
    return out;
  };
  Shape shape(input_shape.begin() + 1, input_shape.end());  // per example, as output_shape takes it
  std::vector<SummaryRowData> rows;
  summary_rows("", 0, shape, rows);
  bool any_source = false;
  std::size_t path_width = 4, layer_width = 46;
  for (const SummaryRowData& r : rows) {
    any_source = any_source || !r.source.empty();
    path_width = std::max(path_width, r.path.size() + 2);
    layer_width = std::max(layer_width, 2 * r.depth + r.layer.size() + 2);
  }

  std::ostringstream table;
  table << std::left << std::setw(static_cast<int>(path_width)) << "#"
        << std::setw(static_cast<int>(layer_width)) << "layer" << std::setw(20) << "output shape"
        << std::right << std::setw(12) << "parameters";
  if (any_source) table << "  source";
  table << '\n';
  table << std::left << std::setw(static_cast<int>(path_width)) << ""
        << std::setw(static_cast<int>(layer_width)) << "input" << shape_str(input_shape) << '\n';
  for (const SummaryRowData& r : rows) {
    table << std::left << std::setw(static_cast<int>(path_width)) << r.path
          << std::setw(static_cast<int>(layer_width)) << std::string(2 * r.depth, ' ') + r.layer
          << std::setw(20) << shape_str(batched(r.shape)) << std::right << std::setw(12)
          << with_commas(r.parameters);
    if (!r.source.empty()) table << "  " << r.source;
    table << '\n';
  }
  table << "total parameters: " << with_commas(num_parameters()) << '\n';
  return table.str();
}

}  // namespace tg
