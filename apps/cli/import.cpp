// `tapegrad import`: being written.
#include "commands.hpp"

namespace tg::cli {
int import_model(const ImportOptions&) { fail("import: not written yet"); }
}  // namespace tg::cli
