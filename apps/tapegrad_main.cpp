// The `tapegrad` program: the whole command line is the library call tg::cli::main (apps/cli/).
#include "tapegrad/cli.hpp"

int main(int argc, char** argv) { return tg::cli::main(argc, argv); }
