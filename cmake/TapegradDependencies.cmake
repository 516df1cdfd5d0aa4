# Finds tapegrad's Debian-packaged dependencies and gives OpenBLAS an imported target.
# Shared by the build tree and, through tapegradConfig.cmake, by projects that find_package(tapegrad).
include(CMakeFindDependencyMacro)
find_dependency(xtl)
find_dependency(xtensor)
find_dependency(ZLIB)
find_dependency(nlohmann_json)
find_dependency(OpenBLAS)  # Debian's OpenBLASConfig.cmake: OpenBLAS_INCLUDE_DIRS, OpenBLAS_LIBRARIES

# tapegrad runs OpenBLAS on one thread and parallelizes around it itself, so it links Debian's single-threaded
# build (libopenblas-serial-dev) when it is there: the default pthread build starts a thread per core when it
# loads, and that thread spins (sched_yield) beside tapegrad's workers even when told to use one thread.
if(NOT TARGET tapegrad::openblas)
  find_library(TAPEGRAD_OPENBLAS_SERIAL NAMES openblas
    PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-serial NO_DEFAULT_PATH)
  set(_tapegrad_openblas "${OpenBLAS_LIBRARIES}")
  if(TAPEGRAD_OPENBLAS_SERIAL)
    set(_tapegrad_openblas "${TAPEGRAD_OPENBLAS_SERIAL}")
  endif()
  add_library(tapegrad::openblas INTERFACE IMPORTED)
  set_target_properties(tapegrad::openblas PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${OpenBLAS_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${_tapegrad_openblas}")
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
