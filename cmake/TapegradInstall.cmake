# `cmake --install` puts headers under include/tapegrad (so consumers `#include "tapegrad.hpp"`), the
# library under lib, and an exported package so that find_package(tapegrad CONFIG) gives tapegrad::tapegrad.
include(CMakePackageConfigHelpers)

foreach(dir core layers optim data)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad/${dir}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/tapegrad.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad)

# The command line as a library (tapegrad::cli, header tapegrad/cli.hpp) and the built-in model files.
if(TARGET tapegrad_cli)
  install(FILES ${PROJECT_SOURCE_DIR}/apps/cli/tapegrad/cli.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tapegrad)
  install(TARGETS tapegrad_cli EXPORT tapegradTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(TARGETS tapegrad_bin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/apps/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/tapegrad/models
          FILES_MATCHING PATTERN "*.tg")
endif()

install(TARGETS tapegrad tapegrad_onnx EXPORT tapegradTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/tapegrad)
install(EXPORT tapegradTargets NAMESPACE tapegrad:: DESTINATION ${config_dir})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tapegradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tapegradConfig.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tapegradConfig.cmake ${PROJECT_BINARY_DIR}/tapegradConfigVersion.cmake
        ${PROJECT_SOURCE_DIR}/cmake/TapegradDependencies.cmake
        DESTINATION ${config_dir})
