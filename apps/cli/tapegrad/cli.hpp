// The `tapegrad` command line (train, eval, predict, summary; docs/cli.md) as one library call, so that
// a program can register its own layers first and then offer the whole command line with them:
//
//   int main(int argc, char** argv) {
//     tg::register_layer("prelu", make_prelu);  // now usable in model files: "prelu slope=0.1"
//     return tg::cli::main(argc, argv);
//   }
//
// CMake: target_link_libraries(app PRIVATE tapegrad::cli). apps/custom_layer.cpp is a complete example.
#pragma once

namespace tg::cli {

// Parses argv ("tapegrad train --model net.tg --data DIR ...") and runs the subcommand. Returns the exit
// code: 0 success, 1 data or file errors, 2 usage errors (a bad model file included), 130 when Ctrl-C stopped
// training (after writing a checkpoint that resumes where it stopped).
int main(int argc, char** argv);

}  // namespace tg::cli
