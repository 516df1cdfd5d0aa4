// --resume's rule: a resumed run is the checkpoint's run continued, so every flag of `train` keeps the value
// the run had, except the few that kResumeMayChange lists. A checkpoint records the value of every flag of
// its run (RunInfo::flags); the check walks every flag of the train command, so that a flag added later is
// checked without being listed anywhere.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "commands.hpp"
#include "run_checkpoint.hpp"

namespace tg::cli {

// The flags of `train` whose value may differ from the checkpoint's run on --resume, because they change
// neither the model nor the batches nor the updates: how far to train (--epochs), where the data and the
// files are (--data: the same images moved, still checked for their shape and steps per epoch; --out,
// --save), and how the run is executed and observed (--threads; --profile prints timings; --detect-anomaly
// checks values and changes none).
inline const std::vector<std::string> kResumeMayChange{
    "--epochs", "--data", "--out", "--save", "--threads", "--precision", "--profile", "--detect-anomaly"};

// "--epochs, --data, --out, --save, --threads, --precision, --profile and --detect-anomaly": for help and
// messages. --precision may change: the checkpoint's weights and optimizer state are float32 either way.
std::string resume_may_change_text();

// A new run's record: every flag of the command line but --resume and kResumeMayChange's, at the value the
// run uses (the run's own where the flag's default depends on others or on the data: --lr of adam without
// --lr is 0.001, --image-size the size the images were read at, --model the model's name; else the value
// given, else the default), as canonical text (see check_resume_flags).
std::map<std::string, std::string> record_flags(const TrainOptions& o, const RunInfo& info);

// The values a run description fixes, as flag text ("--lr" -> "0.05", "--image-size" -> "28x28", ...): the
// record of a checkpoint written before flags were recorded, and the run's part of record_flags.
std::map<std::string, std::string> flags_of_run(const RunInfo& info);

// UsageError (exit 2) naming the first flag given on `o`'s command line, other than --resume and
// kResumeMayChange's, whose value differs from the checkpoint's record (info.flags, or flags_of_run(info)
// for a checkpoint without one). A flag the record lacks (the checkpoint predates it) must equal its
// default, the behaviour the run had. Values compare as canonical text: numbers by value (non-integers at
// float precision: 5e-2 is 0.05), lists item by item, --model by the model's name, --image-size N as NxN,
// --augment in any order, --dataset auto as the kind it finds.
void check_resume_flags(const TrainOptions& o, const RunInfo& info);

}  // namespace tg::cli
