// The one place tapegrad includes xtensor. A future xtensor that moves its headers touches only this file.
#pragma once

#include <cstddef>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

namespace tg {

// The storage type of every tensor: a dense, row-major, evaluated float32 array.
using Array = xt::xarray<float>;
// A shape as xtensor stores it ([N, C, H, W] for images).
using Shape = Array::shape_type;

}  // namespace tg
