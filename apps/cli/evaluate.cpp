// tapegrad eval: a checkpoint's accuracy and loss on the test split, a per-class table (precision, recall,
// count) and the confusion matrix, in the terminal and as CSV files, and the confusion matrix as a PNG.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "charts.hpp"
#include "commands.hpp"
#include "evaluation.hpp"
#include "int8.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

int evaluate(const EvalOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  Checkpoint ckpt = open_checkpoint(o.checkpoint);
  const RunInfo& info = ckpt.info;
  const std::string data_dir = o.data_dir.empty() ? info.data_dir : o.data_dir;
  if (data_dir.empty())  // an imported model that was given no --data
    fail_usage(o.checkpoint, " records no data set (an imported model): give the test data with --data DIR");
  // A folder is labelled by the model's classes (a class it does not know is an error).
  const std::unique_ptr<ImageDataset> test_set =
      open_checkpoint_data(info, o.checkpoint, data_dir, !o.data_dir.empty(), Split::Test, info.class_names);
  const ImageDataset& test = *test_set;
  const std::size_t k = info.classes();
  for (std::size_t i = 0; i < test.size(); ++i) {
    if (test.label(i) < 0 || static_cast<std::size_t>(test.label(i)) >= k)
      fail(data_dir, ": a test label is ", test.label(i), " but ", o.checkpoint, " knows ", k, " classes");
  }
  if (!o.int8 && !o.calibrate_dir.empty())
    fail_usage("--calibrate is for --int8; add --int8 or leave it out");
  std::unique_ptr<Int8Model> int8 =
      o.int8 ? quantize_checkpoint(ckpt, o.checkpoint, o.calibrate_dir, o.data_dir) : nullptr;
  std::optional<Int8Model::Scope> int8_scope;
  if (int8) int8_scope.emplace(*int8);
  const Evaluation result = evaluate_model(ckpt.model, test, k, o.batch_size);
  if (int8) warn_saturated(*int8);
  const std::vector<std::vector<std::size_t>>& confusion = result.confusion;  // [true][predicted]
  const double n = static_cast<double>(test.size());

  const std::string trained = info.epoch == 0 && info.history.empty()
                                  ? "imported (not trained here)"
                                  : "trained " + std::to_string(info.epoch) + " epoch(s) on " + info.dataset;
  std::printf("%s: %s (%s), input %s, %zu classes, %s%s\n", o.checkpoint.c_str(), info.model_name.c_str(),
              info.model_source.c_str(), info.input_text().c_str(), k, trained.c_str(),
              int8 ? "; run in int8" : "");
  std::printf("test set %s: %s images\n\naccuracy %.2f%%   loss %.4f\n\n", data_dir.c_str(),
              with_commas(test.size()).c_str(), 100.0 * static_cast<double>(result.correct) / n, result.loss);

  // Per class: precision = right / predicted as c, recall = right / truly c.
  std::size_t name_width = 5;
  for (const std::string& name : info.class_names) name_width = std::max(name_width, name.size());
  const int w = static_cast<int>(name_width);
  std::ostringstream per_class_csv;
  per_class_csv << "class,name,precision,recall,count,predicted\n";
  std::printf("%-*s  precision  recall   count\n", w, "class");
  for (std::size_t c = 0; c < k; ++c) {
    std::size_t predicted = 0, count = 0;
    for (std::size_t t = 0; t < k; ++t) predicted += confusion[t][c];
    for (std::size_t p = 0; p < k; ++p) count += confusion[c][p];
    const double precision =
        predicted ? static_cast<double>(confusion[c][c]) / static_cast<double>(predicted) : 0.0;
    const double recall = count ? static_cast<double>(confusion[c][c]) / static_cast<double>(count) : 0.0;
    std::printf("%-*s  %8.2f%%  %6.2f%%  %6zu%s\n", w, info.class_names[c].c_str(), 100 * precision,
                100 * recall, count, predicted == 0 && count > 0 ? "   (never predicted)" : "");
    per_class_csv << c << ',' << info.class_names[c] << ',' << precision << ',' << recall << ',' << count
                  << ',' << predicted << '\n';
  }

  // The confusion matrix: rows are the true classes, columns the predicted ones.
  std::size_t cell = 4;
  for (const auto& row : confusion)
    for (std::size_t v : row) cell = std::max(cell, std::to_string(v).size() + 1);
  for (const std::string& name : info.class_names)
    cell = std::max(cell, std::min<std::size_t>(name.size(), 8) + 1);
  const int cw = static_cast<int>(cell);
  std::ostringstream confusion_csv;
  confusion_csv << "true\\predicted";
  std::printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%-*s", w, "");
  for (std::size_t p = 0; p < k; ++p) {
    std::printf("%*s", cw, info.class_names[p].substr(0, 8).c_str());
    confusion_csv << ',' << info.class_names[p];
  }
  std::printf("\n");
  confusion_csv << '\n';
  for (std::size_t t = 0; t < k; ++t) {
    std::printf("%-*s", w, info.class_names[t].c_str());
    confusion_csv << info.class_names[t];
    for (std::size_t p = 0; p < k; ++p) {
      std::printf("%*zu", cw, confusion[t][p]);
      confusion_csv << ',' << confusion[t][p];
    }
    std::printf("\n");
    confusion_csv << '\n';
  }

  std::filesystem::path out = o.out_dir;
  if (out.empty()) out = std::filesystem::path(o.checkpoint).parent_path();
  if (!out.empty()) std::filesystem::create_directories(out);
  const std::string per_class_path = (out / "eval_per_class.csv").string();
  const std::string confusion_path = (out / "eval_confusion.csv").string();
  const std::string a = per_class_csv.str(), b = confusion_csv.str();
  write_file_atomically(per_class_path, {{a.data(), a.size()}});
  write_file_atomically(confusion_path, {{b.data(), b.size()}});
  const std::string confusion_png = (out / "eval_confusion.png").string();
  write_confusion_png(confusion, info.class_names, confusion_png);
  std::printf("\nwrote %s, %s and %s\n", per_class_path.c_str(), confusion_path.c_str(),
              confusion_png.c_str());
  return 0;
}

}  // namespace tg::cli
