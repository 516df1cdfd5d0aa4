// Built against an installed tapegrad: the whole `tapegrad` command line with one more model-file layer,
// `swish [beta=1]` (x * sigmoid(beta * x), beta learned), registered before tg::cli::main runs.
#include <memory>
#include <string>

#include "tapegrad.hpp"
#include "tapegrad/cli.hpp"

namespace {

class Swish : public tg::Module {
 public:
  explicit Swish(float beta) : beta(tg::Array(tg::Shape{1}, beta)), initial_beta_(beta) {
    register_parameter("beta", this->beta);
  }
  tg::Tensor forward(const tg::Tensor& x) override { return x * tg::sigmoid(beta * x); }
  std::string to_line() const override { return "swish beta=" + tg::format_number(initial_beta_); }
  std::string describe() const override {
    return "Swish(initial beta " + tg::format_number(initial_beta_) + ")";
  }

  tg::Tensor beta;

 private:
  float initial_beta_;
};

}  // namespace

int main(int argc, char** argv) {
  tg::register_layer("swish", [](tg::LayerArgs& args) -> std::unique_ptr<tg::Module> {
    return std::make_unique<Swish>(args.number("beta", 1.f));
  });
  return tg::cli::main(argc, argv);
}
