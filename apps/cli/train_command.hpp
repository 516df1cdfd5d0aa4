// The `train` subcommand's flags on CLI11, and the TrainOptions a parsed command line gives train().
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

#include "commands.hpp"

namespace tg::cli {

class TrainCommand {
 public:
  // Adds the subcommand "train" and its flags to `app`; CLI11 writes the flags' values into this object
  // while parsing, so it must stay where it is (no copies) until options() is called.
  explicit TrainCommand(CLI::App& app);
  TrainCommand(const TrainCommand&) = delete;
  TrainCommand& operator=(const TrainCommand&) = delete;

  // The subcommand: more flags may be added to it before parsing (they are recorded and checked like the
  // others).
  CLI::App* app() const { return app_; }

  // After a parse that chose `train`: the options, with the defaults that depend on other flags filled in
  // (--data by --dataset, --out by --model or --resume, --save by --out), and every flag of the subcommand in
  // TrainOptions::flags. UsageError for a bad --image-size.
  TrainOptions options() const;

 private:
  CLI::App* app_;
  TrainOptions t_;
  std::string image_size_;
  std::vector<float> betas_;
  std::map<std::string, std::string> defaults_;  // "--lr" -> "0.05": read just before parsing
};

}  // namespace tg::cli
