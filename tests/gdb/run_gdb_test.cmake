# Runs gdb in batch mode on debug_example (an -O0 build) and checks what it prints:
#   conv:  break in tg::Conv2D::forward, print the input tensor and the weight (pretty-printers), step into
#          tg::conv2d and print its output after finishing: not stored (the ReLU after it ran in its pass,
#          docs/fusion.md) until `npy` computes it, then printed with its values
#   tape:  break in tg::conv2d_backward, list the tape with the `tape` command
#   backward: break in tg::relu_backward (every op's backward is a named function), print its d(output)
#   model_file: the model built from "net.tg" (debug_example model_file): print a layer (the Module printer
#          shows its model-file line), then the `tape` in tg::conv2d_backward names each entry's line
#   residual: the model built from "res.tg" (debug_example residual): break in tg::Residual::forward, print the
#          block's input (shape and values), the block (its model-file line) and `layer` (its path, 3.Residual);
#          in the body's first conv `layer` says 3.body.0.Conv2D and res.tg:6; the `tape` names the layers
#          inside the block by their path and line, and the block's add by the block
# Arguments: -DEXAMPLE=<debug_example binary> -DROOT=<repo> -DSCENARIO=conv|tape|backward|model_file|residual
# debug_example and the library copy it links (tapegrad_debug, -O0 -g) are built with the rest (tests/gdb).

get_filename_component(npy_dir "${EXAMPLE}" DIRECTORY)
set(npy_file "${npy_dir}/gdb_${SCENARIO}_conv.npy")
set(common -batch -nx -iex "add-auto-load-safe-path ${ROOT}" -ex "set pagination off" -ex "set confirm off")
if(SCENARIO STREQUAL "conv")
  set(commands -ex "break tg::Conv2D::forward" -ex "run" -ex "print x" -ex "print weight" -ex "print *this"
               -ex "break tg::conv2d" -ex "continue" -ex "finish" -ex "npy $ ${npy_file}" -ex "print $" -ex "kill")
  set(expected "Tensor \"images\" \\[2, 1, 6, 6\\] \\{0\\.[0-9]+, "
               "= tg::Conv2D training = {.*weight = Tensor \"weight\" \\[2, 1, 3, 3\\]"
               "Tensor \"weight\" \\[2, 1, 3, 3\\] requires_grad \\{"
               "Value returned is \\$[0-9]+ = Tensor \"conv2d\" \\[2, 2, 4, 4\\] requires_grad on tape \\(not stored"
               "wrote [^\n]*conv\\.npy: float32 \\[2, 2, 4, 4\\]"
               "= Tensor \"conv2d\" \\[2, 2, 4, 4\\] requires_grad on tape \\{")
elseif(SCENARIO STREQUAL "backward")
  set(commands -ex "break tg::relu_backward" -ex "run" -ex "print dout" -ex "kill")
  set(expected "Breakpoint 1, tg::relu_backward \\("
               "= Array \\[2, 2, 4, 4\\] \\{"
               "core/ops/elementwise\\.cpp:[0-9]+")
elseif(SCENARIO STREQUAL "model_file")
  set(program_args model_file)
  set(commands -ex "break tg::Conv2D::forward" -ex "run" -ex "print *this" -ex "delete"
               -ex "break tg::conv2d_backward" -ex "continue" -ex "tape" -ex "kill")
  set(expected "= tg::Conv2D \\(net\\.tg:2 conv2d 2 3\\) training = {.*weight = Tensor \"weight\""
               "tape: [0-9]+ entries \\(oldest first\\)"
               "#0 \\[0\\.Conv2D net\\.tg:2 conv2d 2 3\\] conv2d\\(\\[2, 1, 6, 6\\] images, \\[2, 1, 3, 3\\] weight, \\[2\\] bias\\) -> \\[2, 2, 4, 4\\] \\(fused: not stored\\)\n"
               "\\[4\\.Linear net\\.tg:6 linear classes\\] linear\\(\\[2, 8\\] 3\\.Flatten, \\[3, 8\\] weight, \\[3\\] bias\\) -> \\[2, 3\\] \\(backward done\\)")
elseif(SCENARIO STREQUAL "residual")
  set(program_args residual)
  set(commands -ex "break tg::Residual::forward" -ex "run" -ex "print x" -ex "print *this" -ex "layer" -ex "delete"
               -ex "break tg::Conv2D::forward" -ex "continue" -ex "layer" -ex "bt" -ex "delete"
               -ex "break tg::conv2d_backward" -ex "continue" -ex "tape" -ex "kill")
  set(expected "Breakpoint 1, tg::Residual::forward \\(this=0x[0-9a-f]+, x=Tensor \"2\\.ReLU\" \\[2, 2, 6, 6\\]"
               "\\$1 = Tensor \"2\\.ReLU\" \\[2, 2, 6, 6\\] requires_grad on tape \\{[0-9]"
               "= tg::Residual \\(res\\.tg:5 residual\\) training, 2 submodules = {"
               "layer 3\\.Residual \\(res\\.tg:5 residual\\)\n"
               "layer 3\\.body\\.0\\.Conv2D \\(res\\.tg:6 conv2d 4 3 stride=2 padding=1 bias=false\\)\n"
               "#[0-9]+ +0x[0-9a-f]+ in tg::Residual::forward \\(this=0x[0-9a-f]+, x=Tensor \"2\\.ReLU\""
               "\\[3\\.body\\.0\\.Conv2D res\\.tg:6 conv2d 4 3 stride=2 padding=1 bias=false\\] conv2d\\(\\[2, 2, 6, 6\\] 2\\.ReLU, \\[4, 2, 3, 3\\] weight\\) -> \\[2, 4, 3, 3\\]"
               "\\[3\\.shortcut\\.0\\.Conv2D res\\.tg:11 conv2d 4 1 stride=2 bias=false\\] conv2d\\(\\[2, 2, 6, 6\\] 2\\.ReLU, \\[4, 2, 1, 1\\] weight\\) -> \\[2, 4, 3, 3\\]"
               "\\[3\\.Residual res\\.tg:5 residual\\] add\\(\\[2, 4, 3, 3\\] 3\\.body\\.3\\.Conv2D, \\[2, 4, 3, 3\\] 3\\.shortcut\\.0\\.Conv2D\\) -> \\[2, 4, 3, 3\\]")
else()
  set(commands -ex "break tg::conv2d_backward" -ex "run" -ex "tape" -ex "kill")
  set(expected "tape: [0-9]+ entries \\(oldest first\\)"
               "#0 \\[0\\.Conv2D\\] conv2d\\(\\[2, 1, 6, 6\\] images, \\[2, 1, 3, 3\\] weight, \\[2\\] bias\\) -> \\[2, 2, 4, 4\\] \\(fused: not stored\\)\n"
               "\\[4\\.Linear\\] linear\\(\\[2, 8\\] 3\\.Flatten, \\[3, 8\\] weight, \\[3\\] bias\\) -> \\[2, 3\\] \\(backward done\\)")
endif()
execute_process(COMMAND gdb ${common} ${commands} --args ${EXAMPLE} ${program_args}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(all "${out}\n${err}")
foreach(pattern IN LISTS expected)
  if(NOT all MATCHES "${pattern}")
    message(FATAL_ERROR "gdb output lacks /${pattern}/:\n${all}")
  endif()
endforeach()
message("${all}\ngdb ${SCENARIO}: ok")
