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

list(APPEND TAPEGRAD_SOURCES ${PROJECT_SOURCE_DIR}/core/distributed/distributed.cpp)
if(TAPEGRAD_MPI)
  message(STATUS "tapegrad: MPI data-parallel training ON (MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "tapegrad: MPI data-parallel training OFF (tg::distributed is a one-process stub)")
endif()
