// train --init CHECKPOINT [--new-head]: fine-tuning. The new run takes the checkpoint's model text,
// weights and normalization and starts a fresh optimizer and schedule; --new-head makes the last linear
// layer `linear classes`, freshly initialized, so that the data may have classes of its own.
#include <sstream>

#include "commands.hpp"
#include "run_checkpoint.hpp"
#include "train_steps.hpp"

namespace tg::cli {
namespace {

// The model text with its last top-level `linear OUT ...` line made `linear classes ...`; UsageError when
// there is none. Comments and every other line stay as written.
std::string with_new_head(const std::string& text, const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  for (std::size_t i = lines.size(); i-- > 0;) {
    std::istringstream words(lines[i]);
    std::string first, out;
    words >> first >> out;
    if (first != "linear" || lines[i].rfind("linear", 0) != 0) continue;  // top level: not indented
    std::string rest;
    std::getline(words, rest);
    lines[i] = "linear classes" + rest + (out == "classes" ? "" : "  # --new-head: was linear " + out);
    std::string joined;
    for (const std::string& l : lines) joined += l + "\n";
    return joined;
  }
  fail_usage("--new-head: the model of ", path, " has no top-level linear layer to replace");
}

}  // namespace

void prepare_init(const TrainOptions& o, Run& run) {
  if (!o.resume_path.empty())
    fail_usage("--init starts a new run and --resume continues one: give one of them");
  if (o.given("--model"))
    fail_usage("--init ", o.init_path, " brings its own model; leave out --model ", o.model);
  auto init = std::make_shared<Checkpoint>(open_checkpoint(o.init_path));
  RunInfo& info = run.info;
  info.model_name = init->info.model_name;
  info.model_source = init->info.model_source;
  info.model_text = o.new_head ? with_new_head(init->info.model_text, o.init_path) : init->info.model_text;
  run.init = std::move(init);
  run.init_path = o.init_path;
  run.new_head = o.new_head;
}

void load_init(const Run& run) {
  const Checkpoint& init = *run.init;
  const std::size_t classes = run.info.classes(), theirs = init.info.classes();
  std::map<std::string, const Tensor*> source;
  const auto named = init.model.named_state();
  for (const auto& [name, t] : named) source[name] = &t;
  // --new-head: the last top-level linear layer keeps its fresh initialization.
  std::string head;
  for (std::size_t i = 0; run.new_head && i < run.model.size(); ++i)
    if (dynamic_cast<const Linear*>(&run.model[i])) head = std::to_string(i) + ".";
  std::size_t loaded = 0, fresh = 0;
  for (auto& [name, t] : run.model.named_state()) {
    const auto it = source.find(name);
    if (!head.empty() && name.rfind(head, 0) == 0) {
      ++fresh;
      continue;
    }
    if (it != source.end() && it->second->shape() == t.shape()) {
      Tensor target = t;
      target.value() = it->second->value();
      ++loaded;
      continue;
    }
    fail(run.info.data_dir, " has ", classes, " classes but the model of ", run.init_path,
         " was trained for ", theirs, ": add --new-head to replace its last linear layer for these classes");
  }
  say("init: %zu tensors from the checkpoint%s\n", loaded,
      fresh ? (", " + std::to_string(fresh) + " of the new head initialized afresh").c_str() : "");
}

}  // namespace tg::cli
