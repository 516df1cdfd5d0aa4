# Extracts the code of README.md and docs/*.md into one C++ header that tests/test_docs.cpp compiles and runs,
# so a page whose C++ no longer compiles fails the build, and one whose C++ throws or whose model file no
# longer parses fails the test, naming the page and the line.
#
#   cmake -DROOT=<repository> -DPAGES="README.md|docs/cli.md|..." -DOUT=build/tests/docs_blocks.hpp
#         -P tests/extract_docs.cmake
#
# The convention, for whoever edits README.md or a page of docs/:
#   - Fenced blocks are told apart by their info string. ```cpp and ```tg blocks are tested; every other
#     block (```sh, ```text, ```python, ```cmake, output) is left alone. A fence of four backticks may hold
#     a fenced example without it being tested.
#   - ```cpp: every block is extracted; ```cpp no-test leaves one out. The blocks under one "## " heading of
#     one page form one program, in page order: they share the namespace docs::<page>::<heading> (README.md
#     -> docs::readme, docs/model-files.md -> docs::model_files; the heading as an identifier, e.g.
#     docs::extending::a_primitive_op) and may use each other's names.
#     A block's top-level lines are sorted: #include lines go to the top of the header; declarations and
#     definitions (a line starting with class, struct, namespace, using, template or enum, or a top-level
#     line ending in "{" that is not if/for/while/do/switch/else, not a lambda and not an assignment, i.e. a
#     function definition whose signature is on one line) go to namespace scope, with everything up to their
#     closing brace; every other top-level line is a statement and goes, in order, into the body of
#     docs::<page>::<heading>::run(), which a test calls once. A top-level line that does not end in ";",
#     "{" or "}" continues on the next line. Comments just above a top-level line go with it. Braces must
#     balance outside strings, character literals and // comments; no raw strings.
#     Every chunk carries a #line directive: a compiler error names the page and its line.
#   - ```tg: a model file. The test builds it with tg::model_from_text(text, input, classes,
#     "<page>:<line of the opening fence>") for input 1x28x28 and 10 classes, unless the info string says
#     otherwise (```tg input=3x32x32 classes=100). ```tg no-test leaves one out. ```tg error asserts that
#     building it throws tg::Error (an example of a mistake); a comment "# error: TEXT" in such a block
#     also asserts that the message contains TEXT and, when the comment follows a layer line, that it names
#     that line ("<page>:<fence line>:<line in the block>: "). Model blocks are built after every page's
#     C++ has run, so a layer a ```cpp block registers may be used.
# So a block may mix a class, a function and the statements that use them, as a reader would read it; every
# name a statement uses must be defined on the page (in that section) or by tapegrad.hpp.
cmake_minimum_required(VERSION 3.20)

if(NOT ROOT OR NOT PAGES OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DROOT=<repo> -DPAGES=<a.md|b.md> -DOUT=<header> -P extract_docs.cmake")
endif()

# An identifier from a title or file name: "Write your own layer" -> write_your_own_layer.
function(tg_identifier text out)
  string(TOLOWER "${text}" id)
  string(REGEX REPLACE "[^a-z0-9]+" "_" id "${id}")
  string(REGEX REPLACE "^_+|_+$" "" id "${id}")
  if(id STREQUAL "" OR id MATCHES "^[0-9]")
    set(id "s_${id}")
  endif()
  # A C++ keyword ("## Export") is no namespace name: export_
  if(id MATCHES "^(export|import|module|class|namespace|template|operator|default|delete|new|using|return)$")
    set(id "${id}_")
  endif()
  set(${out} "${id}" PARENT_SCOPE)
endfunction()

# A line of C++ without its string and character literals (emptied) and its // comment, stripped.
function(tg_code line out)
  string(REGEX REPLACE "\"([^\"\\\\]|\\\\.)*\"" "\"\"" code "${line}")
  string(REGEX REPLACE "'([^'\\\\]|\\\\.)'" "' '" code "${code}")
  string(REGEX REPLACE "//.*$" "" code "${code}")
  string(STRIP "${code}" code)
  set(${out} "${code}" PARENT_SCOPE)
endfunction()

# Hidden while the text is a CMake list of lines: ";" splits lists, "[" "]" are special in them.
function(tg_unhide var)
  set(text "${${var}}")
  string(REPLACE "@TG_SEMICOLON@" ";" text "${text}")
  string(REPLACE "@TG_LBRACKET@" "[" text "${text}")
  string(REPLACE "@TG_RBRACKET@" "]" text "${text}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

string(REPLACE "|" ";" page_list "${PAGES}")
set(includes "")
set(sections "")       # keys <page id>__<heading id>, in page order
set(page_ids "")       # page ids that have C++ (two pages may not share one)
set(pages_cpp "")      # every page, for the test's list
set(models "")         # C++ initializers of docs::ModelBlock
set(cpp_count 0)
set(model_count 0)

foreach(page IN LISTS page_list)
  file(RELATIVE_PATH rel "${ROOT}" "${page}")
  get_filename_component(stem "${page}" NAME_WE)
  tg_identifier("${stem}" page_id)
  string(APPEND pages_cpp "    \"${rel}\",\n")

  file(READ "${page}" text)
  string(REPLACE ";" "@TG_SEMICOLON@" text "${text}")
  string(REPLACE "[" "@TG_LBRACKET@" text "${text}")
  string(REPLACE "]" "@TG_RBRACKET@" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")

  set(heading_id "top")
  set(heading "(before the first heading)")
  set(fence 0)         # backticks of the open fence; 0: outside any block
  set(kind "")         # of the open block: cpp, tg or other
  set(skip FALSE)
  set(line_no 0)
  set(depth 0)
  set(target "")
  set(pending "")
  set(pending_line 0)
  set(continuing FALSE)

  foreach(line IN LISTS lines)
    math(EXPR line_no "${line_no} + 1")
    if(fence EQUAL 0)
      if(line MATCHES "^## +(.*)$")
        set(heading "${CMAKE_MATCH_1}")
        string(STRIP "${heading}" heading)
        tg_identifier("${heading}" heading_id)
      elseif(line MATCHES "^(```+)(.*)$")
        string(LENGTH "${CMAKE_MATCH_1}" fence)
        string(STRIP "${CMAKE_MATCH_2}" info)
        set(kind other)
        set(skip FALSE)
        if(fence EQUAL 3 AND info MATCHES "^(cpp|tg)( |$)")
          set(kind "${CMAKE_MATCH_1}")
          if(info MATCHES "(^| )no-test( |$)")
            set(skip TRUE)
          endif()
        endif()
        if(kind STREQUAL "cpp" AND NOT skip)
          math(EXPR cpp_count "${cpp_count} + 1")
          set(key "${page_id}__${heading_id}")
          if(NOT key IN_LIST sections)
            if(NOT page_id IN_LIST page_ids)
              if(DEFINED page_of_${page_id})
                message(FATAL_ERROR "${rel} and ${page_of_${page_id}} both give namespace docs::${page_id}")
              endif()
              list(APPEND page_ids "${page_id}")
              set(page_of_${page_id} "${rel}")
            endif()
            list(APPEND sections "${key}")
            set(ns_${key} "docs::${page_id}::${heading_id}")
            set(title_${key} "${heading}")
            set(page_${key} "${rel}")
            set(line_${key} "${line_no}")
            set(decl_${key} "")
            set(body_${key} "")
          endif()
          set(depth 0)
          set(continuing FALSE)
          set(pending "")
        elseif(kind STREQUAL "tg" AND NOT skip)
          math(EXPR model_count "${model_count} + 1")
          set(model_fence "${line_no}")
          set(model_text "")
          set(model_input "1, 28, 28")
          set(model_classes 10)
          set(model_error false)
          set(model_expect "")
          set(model_line 0)
          string(REPLACE " " ";" info_words "${info}")
          foreach(word IN LISTS info_words)
            if(word MATCHES "^input=([0-9]+(x[0-9]+)*)$")
              string(REPLACE "x" ", " model_input "${CMAKE_MATCH_1}")
            elseif(word MATCHES "^classes=([0-9]+)$")
              set(model_classes "${CMAKE_MATCH_1}")
            elseif(word STREQUAL "error")
              set(model_error true)
            elseif(NOT word STREQUAL "tg" AND NOT word STREQUAL "")
              message(FATAL_ERROR "${rel}:${line_no}: unknown word '${word}' in the info string of a ```tg "
                                  "block (known: input=CxHxW, classes=N, error, no-test)")
            endif()
          endforeach()
        endif()
      endif()
      continue()
    endif()

    # Inside a block: the fence that closes it?
    if(line MATCHES "^(```+) *$")
      string(LENGTH "${CMAKE_MATCH_1}" closing)
      if(NOT closing LESS fence)
        if(kind STREQUAL "tg" AND NOT skip)
          tg_unhide(model_text)
          tg_unhide(model_expect)
          string(APPEND models "    {\"${rel}\", ${model_fence}, R\"tgdoc(${model_text})tgdoc\", {${model_input}}, "
                               "${model_classes}, ${model_error}, {${model_expect}}},\n")
        endif()
        set(fence 0)
        continue()
      endif()
    endif()
    if(skip OR kind STREQUAL "other")
      continue()
    endif()

    if(kind STREQUAL "tg")
      math(EXPR model_line "${model_line} + 1")
      string(APPEND model_text "${line}\n")
      if(line MATCHES "# *error: *(.*)$")
        set(expected "${CMAKE_MATCH_1}")
        string(STRIP "${expected}" expected)
        set(at 0)
        if(line MATCHES "^[ \t]*[^ \t#]")
          set(at "${model_line}")
        endif()
        string(APPEND model_expect "{${at}, R\"tgdoc(${expected})tgdoc\"}, ")
      endif()
      continue()
    endif()

    # A ```cpp block's line.
    if(depth EQUAL 0 AND NOT continuing)
      string(STRIP "${line}" stripped)
      if(stripped STREQUAL "" OR stripped MATCHES "^//")
        if(pending STREQUAL "")
          set(pending_line "${line_no}")
        endif()
        string(APPEND pending "${line}\n")
        continue()
      endif()
      if(stripped MATCHES "^#include")
        string(FIND "${includes}" "${stripped}\n" seen)
        if(seen EQUAL -1 AND NOT stripped MATCHES "\"tapegrad.hpp\"")
          string(APPEND includes "${stripped}\n")
        endif()
        set(pending "")
        continue()
      endif()
      # A definition at namespace scope, or a statement for run()? (Judged on the code without its strings
      # and comment; "]" is hidden as @TG_RBRACKET@.)
      tg_code("${stripped}" head)
      set(target body)
      if(head MATCHES "^(class|struct|namespace|using|template|enum)[ <]")
        set(target decl)
      elseif(head MATCHES "{$" AND NOT head MATCHES "^({|(if|for|while|do|switch|else|try|return)[ ({])")
        string(REGEX REPLACE "\\(.*$" "" before_paren "${head}")
        if(NOT head MATCHES "@TG_RBRACKET@ *[({]" AND NOT before_paren MATCHES "=")
          set(target decl)
        endif()
      endif()
      set(start "${line_no}")
      if(NOT pending STREQUAL "")
        set(start "${pending_line}")
      endif()
      if(target STREQUAL "body")
        string(REGEX REPLACE "([^\n]*\n)" "  \\1" pending "${pending}")
      endif()
      string(APPEND ${target}_${key} "#line ${start} \"${rel}\"\n${pending}")
      set(pending "")
    endif()

    if(target STREQUAL "decl")
      string(APPEND decl_${key} "${line}\n")
    else()
      string(APPEND body_${key} "  ${line}\n")
    endif()
    # Brace depth after this line, outside strings, character literals and // comments.
    tg_code("${line}" code)
    string(REGEX REPLACE "[^{]" "" opens "${code}")
    string(REGEX REPLACE "[^}]" "" closes "${code}")
    string(LENGTH "${opens}" n_open)
    string(LENGTH "${closes}" n_close)
    math(EXPR depth "${depth} + ${n_open} - ${n_close}")
    # A top-level line that ends neither a statement nor a block is continued by the next line.
    if(NOT code STREQUAL "")
      set(continuing FALSE)
      if(depth EQUAL 0 AND NOT code MATCHES "(@TG_SEMICOLON@|})$")
        set(continuing TRUE)
      endif()
    endif()
  endforeach()
  if(NOT fence EQUAL 0)
    message(FATAL_ERROR "${rel}: a fenced block is never closed")
  endif()
endforeach()

if(cpp_count EQUAL 0 OR model_count EQUAL 0)
  message(FATAL_ERROR "${PAGES}: expected ```cpp and ```tg blocks, found ${cpp_count} and ${model_count}")
endif()

set(header "// Generated from README.md and docs/*.md by tests/extract_docs.cmake at build time: do not edit.
// The pages' ```cpp blocks by page and section (declarations at namespace scope, statements in run()), and
// their ```tg model files.
#pragma once

#include <vector>

#include \"tapegrad.hpp\"
${includes}
")
set(table "")
foreach(key IN LISTS sections)
  string(APPEND header "namespace ${ns_${key}} {  // ${page_${key}}: ## ${title_${key}}\n\n${decl_${key}}\n"
                       "inline void run() {\n${body_${key}}}\n\n}  // namespace ${ns_${key}}\n\n")
  string(REPLACE "\"" "\\\"" title "${title_${key}}")
  string(APPEND table "    {\"${page_${key}}\", ${line_${key}}, \"${title}\", &${ns_${key}}::run},\n")
endforeach()
tg_unhide(header)
tg_unhide(table)
string(APPEND header "namespace docs {

// Every section with C++: its page, the line of its first block, its heading, the function that runs it.
struct Program {
  const char* page;
  int line;
  const char* section;
  void (*run)();
};
inline const std::vector<Program>& programs() {
  static const std::vector<Program> all = {
${table}  };
  return all;
}

// A ```tg block: its page and the line of its opening fence, the model file, the input and classes it is
// built for, whether it must fail, and what its \"# error:\" comments expect (line 0: any line).
struct Expected {
  int line;
  const char* text;
};
struct ModelBlock {
  const char* page;
  int line;
  const char* text;
  tg::Shape input;
  int classes;
  bool error;
  std::vector<Expected> expected;
};
inline const std::vector<ModelBlock>& model_blocks() {
  static const std::vector<ModelBlock> all = {
${models}  };
  return all;
}

// Every page the blocks were extracted from.
inline const std::vector<const char*>& pages() {
  static const std::vector<const char*> all = {
${pages_cpp}  };
  return all;
}

}  // namespace docs
")

# Rewrite only on change, so an edit of prose alone does not recompile the test.
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL header)
  file(WRITE "${OUT}" "${header}")
endif()
