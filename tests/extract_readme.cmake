# Extracts the ```cpp code blocks of README.md into one C++ header that tests/test_readme.cpp compiles and runs,
# so a README whose code no longer compiles (or throws) fails the build (or the test).
#
#   cmake -DREADME=README.md -DOUT=build/tests/readme_blocks.hpp -P tests/extract_readme.cmake
#
# The convention, for whoever edits README.md:
#   - Every block opened with ```cpp is extracted; ```cpp no-test leaves one out. Other blocks (```sh, ```cmake,
#     output) are ignored.
#   - The blocks under one "## " heading form one program, in README order: they share the namespace
#     readme::<heading as an identifier> (e.g. readme::write_your_own_layer) and may use each other's names.
#   - A block's top-level lines are sorted: #include lines go to the top of the header; declarations and
#     definitions (a line starting with class, struct, namespace, using, template or enum, or a top-level line
#     ending in "{" that is not if/for/while/do/switch, i.e. a function definition whose signature is on one
#     line) go to namespace scope, with everything up to their closing brace; every other top-level line is a
#     statement and goes, in order, into the body of readme::<section>::run(), which a test calls.
#   - Comments just above a top-level line go with it.
# So a block may mix a class, a function and the statements that use them, as a reader would read it; every
# name a statement uses must be defined in the README (in that section) or by tapegrad.hpp.
cmake_minimum_required(VERSION 3.20)

if(NOT README OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DREADME=<README.md> -DOUT=<header> -P extract_readme.cmake")
endif()

file(READ "${README}" text)
# CMake lists split on ";" and treat "[" "]" specially: hide them while the text is a list of lines.
string(REPLACE ";" "@TG_SEMICOLON@" text "${text}")
string(REPLACE "[" "@TG_LBRACKET@" text "${text}")
string(REPLACE "]" "@TG_RBRACKET@" text "${text}")
string(REPLACE "\n" ";" lines "${text}")

set(section "")
set(sections "")  # identifiers, in README order
set(in_block FALSE)
set(skip_block FALSE)
set(includes "")
set(depth 0)
set(target "")    # where the current top-level chunk goes: decl or body
set(pending "")   # comment lines waiting for the next top-level line
set(block_count 0)

foreach(line IN LISTS lines)
  if(NOT in_block)
    if(line MATCHES "^## +(.*)$")
      set(section_title "${CMAKE_MATCH_1}")
      string(TOLOWER "${section_title}" id)
      string(REGEX REPLACE "[^a-z0-9]+" "_" id "${id}")
      string(REGEX REPLACE "^_+|_+$" "" id "${id}")
      if(id MATCHES "^[0-9]")
        set(id "s_${id}")
      endif()
      set(section "${id}")
      set(title_${id} "${section_title}")
    elseif(line MATCHES "^```cpp( .*)?$")
      set(in_block TRUE)
      set(skip_block FALSE)
      if(line MATCHES "no-test")
        set(skip_block TRUE)
      else()
        math(EXPR block_count "${block_count} + 1")
        if(section STREQUAL "")
          set(section "top")
          set(title_top "(before the first heading)")
        endif()
        if(NOT section IN_LIST sections)
          list(APPEND sections "${section}")
          set(decl_${section} "")
          set(body_${section} "")
        endif()
        set(depth 0)
        set(pending "")
      endif()
    endif()
    continue()
  endif()

  if(line MATCHES "^```")
    set(in_block FALSE)
    if(NOT pending STREQUAL "" AND NOT skip_block)
      string(REGEX REPLACE "([^\n]*\n)" "  \\1" pending "${pending}")
      string(APPEND body_${section} "${pending}")
      set(pending "")
    endif()
    continue()
  endif()
  if(skip_block)
    continue()
  endif()

  if(depth EQUAL 0)
    string(STRIP "${line}" stripped)
    if(stripped STREQUAL "" OR stripped MATCHES "^//")
      string(APPEND pending "${line}\n")
      continue()
    endif()
    if(stripped MATCHES "^#include")
      string(FIND "${includes}" "${stripped}\n" seen)
      if(seen EQUAL -1 AND NOT stripped MATCHES "\"tapegrad.hpp\"")
        string(APPEND includes "${stripped}\n")
      endif()
      continue()
    endif()
    if(stripped MATCHES "^(class|struct|namespace|using|template|enum)[ <]"
       OR (stripped MATCHES "{$" AND NOT stripped MATCHES "^(if|for|while|do|switch|else)[ ({]"))
      set(target decl)
    else()
      set(target body)
    endif()
    if(target STREQUAL "body")
      string(REGEX REPLACE "([^\n]*\n)" "  \\1" pending "${pending}")
    endif()
    string(APPEND ${target}_${section} "${pending}")
    set(pending "")
  endif()

  if(target STREQUAL "decl")
    string(APPEND decl_${section} "${line}\n")
  else()
    string(APPEND body_${section} "  ${line}\n")
  endif()
  # Brace depth after this line (the README's braces are balanced outside strings and comments).
  string(REGEX REPLACE "//.*$" "" code "${line}")
  string(REGEX REPLACE "[^{]" "" opens "${code}")
  string(REGEX REPLACE "[^}]" "" closes "${code}")
  string(LENGTH "${opens}" n_open)
  string(LENGTH "${closes}" n_close)
  math(EXPR depth "${depth} + ${n_open} - ${n_close}")
endforeach()

if(block_count EQUAL 0)
  message(FATAL_ERROR "${README}: no ```cpp block found")
endif()

set(header "// Generated from README.md by tests/extract_readme.cmake at build time: do not edit. The README's ```cpp
// blocks, by section: declarations at namespace scope, statements in run().
#pragma once

#include \"tapegrad.hpp\"
${includes}
")
set(table "")
foreach(id IN LISTS sections)
  string(APPEND header "namespace readme::${id} {  // ## ${title_${id}}\n\n${decl_${id}}\ninline void run() {\n${body_${id}}}\n\n}  // namespace readme::${id}\n\n")
  string(APPEND table "    {\"${title_${id}}\", &readme::${id}::run},\n")
endforeach()
string(APPEND header "namespace readme {

// Every section with C++ in the README, with the function that runs its statements.
struct Program {
  const char* section;
  void (*run)();
};
inline const std::vector<Program>& programs() {
  static const std::vector<Program> all = {
${table}  };
  return all;
}

}  // namespace readme
")
string(REPLACE "@TG_SEMICOLON@" ";" header "${header}")
string(REPLACE "@TG_LBRACKET@" "[" header "${header}")
string(REPLACE "@TG_RBRACKET@" "]" header "${header}")

# Rewrite only on change, so an unrelated README edit does not recompile the test.
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL header)
  file(WRITE "${OUT}" "${header}")
endif()
