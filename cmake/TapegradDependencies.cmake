# Finds tapegrad's Debian-packaged dependencies and gives OpenBLAS an imported target.
# Shared by the build tree and, through tapegradConfig.cmake, by projects that find_package(tapegrad).
include(CMakeFindDependencyMacro)
find_dependency(xtl)
find_dependency(xtensor)
find_dependency(ZLIB)
find_dependency(nlohmann_json)
find_dependency(CLI11)  # tapegrad::cli (the command line as a library)
# ONNX export and import (tapegrad::onnx): Debian's libonnx-dev, whose targets need protobuf's.
find_dependency(Protobuf)
find_dependency(ONNX)
find_dependency(OpenBLAS)  # Debian's OpenBLASConfig.cmake: OpenBLAS_INCLUDE_DIRS, OpenBLAS_LIBRARIES

if(NOT TARGET tapegrad::openblas)
  add_library(tapegrad::openblas INTERFACE IMPORTED)
  set_target_properties(tapegrad::openblas PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${OpenBLAS_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${OpenBLAS_LIBRARIES}")
endif()

# Debian's libstb-dev: headers under <stb/...> and one shared library with the implementations.
if(NOT TARGET tapegrad::stb)
  find_library(TAPEGRAD_STB_LIBRARY NAMES stb REQUIRED)
  find_path(TAPEGRAD_STB_INCLUDE_DIR NAMES stb/stb_image.h REQUIRED)
  add_library(tapegrad::stb INTERFACE IMPORTED)
  set_target_properties(tapegrad::stb PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${TAPEGRAD_STB_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${TAPEGRAD_STB_LIBRARY}")
endif()
