# Every op declared in core/ops/*.hpp (a line `Tensor <name>(...)`) has a public named backward,
# tg::<name>_backward(...), defined in the library, so that `break tg::<name>_backward` works for every op.
# Operators map to names: a + b -> add, a - b -> sub, a * b -> mul, a / b -> div; with a float on the right
# (or on either side for the commutative + and *) -> add_scalar, sub_scalar, mul_scalar, div_scalar; with a
# float on the left -> rsub_scalar, rdiv_scalar; unary minus -> neg.
#
#   cmake -DLIBRARY=<libtapegrad.a> -DOPS_DIR=<source>/core/ops [-DNM=<nm>] -P test_named_backwards.cmake
cmake_minimum_required(VERSION 3.25)

if(NOT LIBRARY OR NOT OPS_DIR)
  message(FATAL_ERROR "named_backwards: pass -DLIBRARY=<libtapegrad.a> and -DOPS_DIR=<source>/core/ops")
endif()
if(NOT NM)
  set(NM nm)
endif()

# ---- the op names, from the headers ----
file(GLOB headers "${OPS_DIR}/*.hpp")
list(FILTER headers EXCLUDE REGEX "/fused\\.hpp$")  # inference passes: no backward (core/ops/fused.hpp)
set(ops "")
foreach(header IN LISTS headers)
  file(STRINGS "${header}" declarations REGEX "^Tensor [A-Za-z_0-9]+[-+*/]?\\(")
  foreach(declaration IN LISTS declarations)
    string(REGEX MATCH "^Tensor ([A-Za-z_0-9]+[-+*/]?)\\(([^)]*)\\)" _ "${declaration}")
    set(name "${CMAKE_MATCH_1}")
    set(arguments "${CMAKE_MATCH_2}")
    if(name MATCHES "^operator([-+*/])$")
      set(symbol "${CMAKE_MATCH_1}")
      if(symbol STREQUAL "+")
        set(base add)
      elseif(symbol STREQUAL "-")
        set(base sub)
      elseif(symbol STREQUAL "*")
        set(base mul)
      else()
        set(base div)
      endif()
      if(NOT arguments MATCHES ",")  # one operand: unary minus
        set(name neg)
      elseif(arguments MATCHES "^float")  # s (op) x
        if(base STREQUAL "sub" OR base STREQUAL "div")
          set(name "r${base}_scalar")
        else()
          set(name "${base}_scalar")
        endif()
      elseif(arguments MATCHES "float")  # x (op) s
        set(name "${base}_scalar")
      else()  # x (op) y
        set(name "${base}")
      endif()
    endif()
    list(APPEND ops "${name}")
  endforeach()
endforeach()
list(REMOVE_DUPLICATES ops)
list(LENGTH ops count)
if(count LESS 20)
  message(FATAL_ERROR "named_backwards: found only ${count} ops in ${OPS_DIR}/*.hpp (${ops}): is the parser stale?")
endif()

# ---- the named backwards the library defines ----
execute_process(COMMAND "${NM}" -C --defined-only "${LIBRARY}"
  OUTPUT_VARIABLE symbols ERROR_VARIABLE nm_errors RESULT_VARIABLE nm_result)
if(NOT nm_result EQUAL 0)
  message(FATAL_ERROR "named_backwards: ${NM} -C ${LIBRARY} failed (${nm_result}): ${nm_errors}")
endif()
string(REGEX MATCHALL "tg::[A-Za-z_0-9]+_backward\\(" defined "${symbols}")
list(REMOVE_DUPLICATES defined)

set(missing "")
foreach(op IN LISTS ops)
  if(NOT "tg::${op}_backward(" IN_LIST defined)
    list(APPEND missing "tg::${op}_backward")
  endif()
endforeach()
if(missing)
  list(LENGTH missing missing_count)
  list(JOIN missing ", " missing_text)
  message(FATAL_ERROR "named_backwards: ${missing_count} of ${count} ops in core/ops/*.hpp have no named backward "
                      "defined in ${LIBRARY}: ${missing_text}")
endif()
message(STATUS "named_backwards: ok, ${count} ops, each with tg::<op>_backward")
