// The layer registry (layers/registry.hpp): built-ins registered like a user's layer, a user's layer usable
// from a model file, LayerArgs' getters and their errors, unread keys, duplicate names.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad.hpp"

namespace {

// A user's layer: multiplies by a trained scalar. It overrides neither output_shape (the default runs a
// forward on zeros) nor to_line (the default is the line it was built from).
class Scale : public tg::Module {
 public:
  explicit Scale(float factor) : factor(tg::Array{factor}) { register_parameter("factor", this->factor); }
  tg::Tensor forward(const tg::Tensor& x) override { return x * factor; }
  tg::Tensor factor;
};

void register_scale_once() {
  if (tg::find_layer("test_scale")) return;
  tg::register_layer("test_scale", [](tg::LayerArgs& args) -> std::unique_ptr<tg::Module> {
    return std::make_unique<Scale>(args.number("factor", 1.f));
  });
}

tg::LayerArgs make_args(std::vector<std::string> positional,
                        std::vector<std::pair<std::string, std::string>> options) {
  return tg::LayerArgs("thing", std::move(positional), std::move(options), tg::Shape{3, 8, 8}, 10,
                       "net.tg:4");
}

}  // namespace

TEST_CASE("registry: every built-in layer of the model-file table is registered") {
  const std::vector<std::string> names = tg::registered_layers();
  for (const char* name : {"conv2d", "maxpool2d", "flatten", "linear", "relu", "sigmoid", "tanh", "softmax",
                           "logsoftmax", "leakyrelu", "dropout"}) {
    INFO(name);
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
    CHECK(tg::find_layer(name) != nullptr);
  }
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(tg::find_layer("nosuchlayer") == nullptr);
}

TEST_CASE("registry: a user's layer is usable from a model file and round-trips") {
  register_scale_once();
  tg::Sequential m =
      tg::model_from_text("flatten\ntest_scale factor=2.5\nlinear classes\n", {1, 2, 2}, 3, "n.tg");
  CHECK(m.named_parameters()[0].first == "1.factor");
  CHECK(m.at<Scale>(1).factor.value()(0) == 2.5f);
  CHECK(m[1].source() == "n.tg:2 test_scale factor=2.5");
  CHECK(m[1].output_shape({4}) == tg::Shape{4});  // the default: a forward on zeros of batch 1
  const std::string text = tg::model_to_text(m);
  CHECK(text == "flatten\ntest_scale factor=2.5\nlinear 3\n");
  CHECK(tg::model_from_text(text, {1, 2, 2}, 3).num_parameters() == m.num_parameters());
}

TEST_CASE("registry: a key a user's factory never reads is an error naming the keys it reads") {
  register_scale_once();
  CHECK_THROWS_WITH_AS(tg::model_from_text("flatten\ntest_scale factr=2\nlinear 3\n", {4}, 3, "net.tg"),
                       "net.tg:2: test_scale: unknown key 'factr' (did you mean 'factor'? allowed: factor)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::model_from_text("test_scale 2\nlinear 3\n", {4}, 3, "net.tg"),
                       "net.tg:1: test_scale: unexpected argument '2' (usage: test_scale)", tg::Error);
}

TEST_CASE("registry: registering a name twice, a bad name or an empty factory is an error") {
  register_scale_once();
  auto factory = [](tg::LayerArgs&) -> std::unique_ptr<tg::Module> { return std::make_unique<tg::ReLU>(); };
  CHECK_THROWS_WITH_AS(tg::register_layer("test_scale", factory),
                       "register_layer: a layer named 'test_scale' is already registered", tg::Error);
  CHECK_THROWS_WITH_AS(tg::register_layer("relu", factory),
                       "register_layer: a layer named 'relu' is already registered", tg::Error);
  CHECK_THROWS_WITH_AS(tg::register_layer("My Layer", factory),
                       "register_layer: 'My Layer' is not a layer name (lowercase letters, digits and '_', "
                       "starting with a letter, at most 64)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::register_layer("empty_factory", nullptr),
                       "register_layer: 'empty_factory': the factory is empty", tg::Error);
}

TEST_CASE("registry: a factory's own tg::Error is prefixed with the file, line and layer") {
  if (!tg::find_layer("test_picky")) {
    tg::register_layer("test_picky", [](tg::LayerArgs& args) -> std::unique_ptr<tg::Module> {
      if (args.input().size() != 1) tg::fail("wants flat input, got ", tg::shape_str(args.input()));
      return std::make_unique<tg::ReLU>();
    });
  }
  CHECK_THROWS_WITH_AS(tg::model_from_text("test_picky\n", {1, 2, 2}, 3, "net.tg"),
                       "net.tg:1: test_picky: wants flat input, got [1, 2, 2]", tg::Error);
}

TEST_CASE("LayerArgs: typed getters with defaults, sizes 5 or 3x5, 'classes' for counts") {
  tg::LayerArgs args =
      make_args({"classes", "3x5"},
                {{"slope", "0.25"}, {"bias", "false"}, {"stride", "2"}, {"padding", "1x0"}, {"groups", "4"}});
  CHECK(args.positional_int(0, "OUT") == 10);
  CHECK(args.positional_size2(1, "KERNEL") == std::array<int, 2>{3, 5});
  CHECK(args.number("slope", 0.01f) == 0.25f);
  CHECK(args.number("absent", 0.5f) == 0.5f);
  CHECK(args.boolean("bias", true) == false);
  CHECK(args.size2("stride", {1, 1}) == std::array<int, 2>{2, 2});
  CHECK(args.size2("padding", {0, 0}, 0) == std::array<int, 2>{1, 0});
  CHECK(args.integer("groups", 1, 1) == 4);
  CHECK(args.integer("absent_int", 7) == 7);
  CHECK(args.input() == tg::Shape{3, 8, 8});
  CHECK(args.classes() == 10);
  CHECK(args.line() == "thing classes 3x5 slope=0.25 bias=false stride=2 padding=1x0 groups=4");
  CHECK_NOTHROW(args.check_all_read());
}

TEST_CASE("LayerArgs: getter errors name the location and the line") {
  tg::LayerArgs args = make_args({"0"}, {{"p", "x"}});
  CHECK_THROWS_WITH_AS(args.positional_int(0, "OUT"), "net.tg:4: thing 0 p=x: OUT must be >= 1, got 0",
                       tg::ModelFileError);
  CHECK_THROWS_WITH_AS(args.number("p", 0.5f), "net.tg:4: thing 0 p=x: p must be a finite number, got 'x'",
                       tg::Error);
  CHECK_THROWS_WITH_AS(args.positional_int(1, "SIZE"),
                       "net.tg:4: thing 0 p=x: missing SIZE (usage: thing OUT SIZE)", tg::Error);
}

TEST_CASE("edit distance and the nearest name") {
  CHECK(tg::edit_distance("strid", "stride") == 1);
  CHECK(tg::edit_distance("", "abc") == 3);
  CHECK(tg::edit_distance("kitten", "sitting") == 3);
  CHECK(tg::nearest_name("strid", {"padding", "stride"}) == "stride");
  CHECK(tg::nearest_name("zzzzzz", {"padding", "stride"}).empty());
}
