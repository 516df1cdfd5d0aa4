#include "layers/sequential.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/autograd/tape.hpp"
#include "core/base/text.hpp"

namespace tg {
namespace {

// " (lenet.tg:5 conv2d 16 5)" for a layer built from a model file, "" otherwise.
std::string source_suffix(const Module& layer) {
  const std::string source = layer.source();
  return source.empty() ? "" : " (" + source + ")";
}

// `e` prefixed with the layer: "layer 3 Conv2D(6 -> 16, kernel 5x5) (lenet.tg:5 conv2d 16 5): ...".
Error layer_error(const std::string& name, const Module& layer, const Error& e) {
  return Error("layer " + name + " " + layer.describe() + source_suffix(layer) + ": " + e.what());
}

}  // namespace

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
  Tensor out = x;
  for (auto& [name, layer] : children()) {
    const std::string label = name + "." + layer->type_name();
    Tensor next;
    try {
      LayerScope scope(label, layer->shared_source());  // names the layer on the tape; the profiler times it
      next = layer->forward(out);
    } catch (const Error& e) {
      throw layer_error(name, *layer, e);
    }
    if (next.node() != out.node()) next.set_name(label);  // identity layers keep their input's name
    out = next;
  }
  return out;
}

Shape Sequential::output_shape(const Shape& input) const {
  Shape shape = input;
  for (const auto& [name, layer] : children()) {
    try {
      shape = layer->output_shape(shape);
    } catch (const Error& e) {
      throw layer_error(name, *layer, e);
    }
  }
  return shape;
}

std::string Sequential::to_line() const { return ""; }

std::string Sequential::describe() const { return "Sequential(" + std::to_string(size()) + " layers)"; }

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
  bool any_source = false;
  for (const auto& [name, layer] : children()) any_source = any_source || !layer->source_location().empty();

  std::ostringstream table;
  table << std::left << std::setw(4) << "#" << std::setw(46) << "layer" << std::setw(20) << "output shape"
        << std::right << std::setw(12) << "parameters";
  if (any_source) table << "  source";
  table << '\n';
  table << std::left << std::setw(4) << "" << std::setw(46) << "input" << shape_str(input_shape) << '\n';
  Shape shape(input_shape.begin() + 1, input_shape.end());  // per example, as output_shape takes it
  for (const auto& [name, layer] : children()) {
    try {
      shape = layer->output_shape(shape);
    } catch (const Error& e) {
      throw layer_error(name, *layer, e);
    }
    table << std::left << std::setw(4) << name << std::setw(46) << layer->describe() << std::setw(20)
          << shape_str(batched(shape)) << std::right << std::setw(12) << with_commas(layer->num_parameters());
    if (!layer->source_location().empty()) table << "  " << layer->source_location();
    table << '\n';
  }
  table << "total parameters: " << with_commas(num_parameters()) << '\n';
  return table.str();
}

}  // namespace tg
