# Optional MPI for data-parallel training (core/distributed/distributed.cpp, tg::distributed). TAPEGRAD_MPI defaults to ON
# when find_package(MPI) finds an MPI (Debian: libopenmpi-dev openmpi-bin); OFF builds a stub in which the
# world is one process (rank 0, world size 1, broadcast and all-reduce do nothing).
# We call MPI's C API from C++: the CXX component is that API for a C++ compiler (the project enables no C
# compiler, which the C component would need), without MPI's long-removed C++ bindings.
set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI COMPONENTS CXX QUIET)
option(TAPEGRAD_MPI "Data-parallel training over MPI (tg::distributed)" ${MPI_CXX_FOUND})
if(TAPEGRAD_MPI AND NOT MPI_CXX_FOUND)
  message(FATAL_ERROR "TAPEGRAD_MPI is ON but no MPI was found; install libopenmpi-dev openmpi-bin "
                      "(scripts/setup.sh does) or configure with -DTAPEGRAD_MPI=OFF")
endif()

target_sources(tapegrad PRIVATE core/distributed/distributed.cpp)
if(TAPEGRAD_MPI)
  # PRIVATE, and mpi.h is included by distributed.cpp only: the public headers do not need MPI. (A static
  # library still passes MPI::MPI_CXX on to its consumers' link; tapegradConfig.cmake finds it for them.)
  target_link_libraries(tapegrad PRIVATE MPI::MPI_CXX)
  set_property(SOURCE core/distributed/distributed.cpp APPEND PROPERTY COMPILE_DEFINITIONS TAPEGRAD_HAS_MPI)
  message(STATUS "tapegrad: MPI data-parallel training ON (MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "tapegrad: MPI data-parallel training OFF (tg::distributed is a one-process stub)")
endif()
