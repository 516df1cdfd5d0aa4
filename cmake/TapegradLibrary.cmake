# tapegrad_add_library(NAME): the library from TAPEGRAD_SOURCES (absolute paths), with its include path,
# dependencies, MPI and the gdb-script entry. Called for `tapegrad` (CMakeLists.txt) and for the -O0 copy
# that the gdb tests step through (tests/gdb), so the two cannot drift apart.
#
# Compile time: every source includes xtensor (through core/xt.hpp) or the standard library, and parsing
# them is most of a file's compile time, so both are precompiled once per target.
function(tapegrad_add_library name)
  add_library(${name} STATIC ${TAPEGRAD_SOURCES})
  target_compile_features(${name} PUBLIC cxx_std_20)
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/tapegrad>)
  target_link_libraries(${name} PUBLIC xtensor tapegrad::openblas ZLIB::ZLIB tapegrad::stb
                                PRIVATE nlohmann_json::nlohmann_json)
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  if(TAPEGRAD_NATIVE)
    target_compile_options(${name} PUBLIC $<BUILD_INTERFACE:-march=native>)
  endif()
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_precompile_headers(${name} PRIVATE
    <algorithm> <cmath> <cstddef> <cstdint> <cstring> <functional> <memory> <sstream> <string> <vector>
    ${PROJECT_SOURCE_DIR}/core/xt.hpp)

  set(distributed ${PROJECT_SOURCE_DIR}/core/distributed/distributed.cpp)
  if(TAPEGRAD_MPI)
    # PRIVATE, and mpi.h is included by distributed.cpp only: the public headers do not need MPI. (A static
    # library still passes MPI::MPI_CXX on to its consumers' link; tapegradConfig.cmake finds it for them.)
    target_link_libraries(${name} PRIVATE MPI::MPI_CXX)
    set_property(SOURCE ${distributed} TARGET_DIRECTORY ${name} APPEND PROPERTY COMPILE_DEFINITIONS
                 TAPEGRAD_HAS_MPI)
  endif()
  # gdb finds the pretty-printers through a .debug_gdb_scripts entry (core/autograd/tensor.cpp)
  set_property(SOURCE ${PROJECT_SOURCE_DIR}/core/autograd/tensor.cpp TARGET_DIRECTORY ${name} APPEND PROPERTY
               COMPILE_DEFINITIONS "TAPEGRAD_GDB_SCRIPT=\"${PROJECT_SOURCE_DIR}/scripts/gdb/tapegrad_gdb.py\"")
endfunction()
