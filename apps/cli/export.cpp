// `tapegrad export`: being written.
#include "commands.hpp"

namespace tg::cli {
int export_model(const ExportOptions&) { fail("export: not written yet"); }
}  // namespace tg::cli
