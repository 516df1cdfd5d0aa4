# Installs the built tapegrad into a fresh prefix, then configures, builds and runs a tiny outside project
# that finds it with find_package(tapegrad CONFIG): a program on the library (consumer), and the command line
# with a layer of its own (custom_cli), which trains MODEL_FILE on DATA_DIR for a few steps and evaluates the
# checkpoint. Run by CTest (tests/CMakeLists.txt).
foreach(var BUILD_DIR CONSUMER_SRC WORK_DIR SOURCE_DIR DATA_DIR MODEL_FILE)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(expect text what)
  string(FIND "${last_output}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected ${what} ('${text}') in:\n${last_output}")
  endif()
endfunction()

set(config_args)
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})

# The installed package stands alone: no path into the source or build tree.
file(GLOB_RECURSE package_files ${prefix}/lib*/cmake/tapegrad/*.cmake)
if(NOT package_files)
  message(FATAL_ERROR "no CMake package files under ${prefix}")
endif()
foreach(f IN LISTS package_files)
  file(READ ${f} content)
  foreach(tree ${SOURCE_DIR} ${BUILD_DIR})
    string(FIND "${content}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${f} refers to ${tree}: the install is not self-contained")
    endif()
  endforeach()
endforeach()

run(${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
expect("tapegrad found at ${prefix}/" "find_package(tapegrad) to use the fresh prefix")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build -j 2)

# The command line with the consumer's own layer: a few training steps, then eval of the checkpoint.
run(${WORK_DIR}/build/custom_cli train --model ${MODEL_FILE} --data ${DATA_DIR} --limit 128 --epochs 1
    --batch-size 32 --threads 1 --out ${WORK_DIR}/run)
expect("Swish(initial beta 1.5)" "the custom layer in the model summary")
expect("test accuracy" "training to finish")
run(${WORK_DIR}/build/custom_cli eval ${WORK_DIR}/run/model.safetensors --data ${DATA_DIR} --threads 1)
expect("accuracy" "eval of the checkpoint")
message("custom_cli: trained and evaluated ${MODEL_FILE} with its own layer")

run(${WORK_DIR}/build/consumer)
message("${last_output}")
