// The conv epilogue as a pass of its own, for the kernels that do not apply it as they write (im2col,
// depthwise, grouped): one parallel pass over the output planes, in place.
#include "core/kernels/conv2d_epilogue.hpp"

#include <algorithm>

#include "core/runtime/threads.hpp"

namespace tg {

constexpr std::size_t kEpilogueMinFloatsPerThread = 256 * 1024;

void conv2d_epilogue(float* out, const Conv2dGeometry& g, const ConvEpilogue& e) {
  if (e.none()) return;
  const EpilogueRowFn row = conv2d_epilogue_row_fn(e);
  const std::size_t plane = g.pixels_out();
  parallel_for(
      g.batch * g.c_out,
      [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p)
          row(out + p * plane, plane, 1, plane, 0.f, p % g.c_out, e,
              e.residual ? e.residual + p * plane : nullptr, out + p * plane, plane);
      },
      // at least 256K floats per thread: a smaller pass costs more in moving the planes between cores
      kEpilogueMinFloatsPerThread / std::max<std::size_t>(plane, 1) + 1);
}

}  // namespace tg
