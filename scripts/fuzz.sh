#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz in build-fuzz (clang-14, ASan + UBSan, the library instrumented too)
# and runs each for SECONDS (default 30) on a temporary copy of its seed corpus; tests/fuzz/corpus is never
# modified. Prints one summary line per fuzzer and exits 1 if any reports a crash, leak, timeout or
# out-of-memory, naming the reproducer kept under build-fuzz/artifacts/<fuzzer>/.
#   usage: bash scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: bash scripts/fuzz.sh [SECONDS]   (a positive whole number of seconds per fuzzer, default 30)" >&2
  exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
build="build-fuzz"
fuzzers=(idx safetensors image model_file checkpoint cifar10 onnx)

for tool in clang-14 clang++-14 cmake; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fuzz.sh: '$tool' not found; install clang-14 and libclang-rt-14-dev (bash scripts/setup.sh fuzz)" >&2
    exit 1
  fi
done

# --- build ---------------------------------------------------------------------------------------------------
mkdir -p "$build"
echo "fuzz: configuring $build"
if ! CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPEGRAD_FUZZ=ON \
  -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_APPS=OFF -DTAPEGRAD_NATIVE=OFF -DTAPEGRAD_MPI=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
  >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "fuzz.sh: configuring $build failed (if it was configured with another compiler, delete it)" >&2
  exit 1
fi
echo "fuzz: building ${fuzzers[*]/#/fuzz_}"
cmake --build "$build" -j 2 --target "${fuzzers[@]/#/fuzz_}"

# --- run -----------------------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer-14 >/dev/null 2>&1; then
  export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-14)"
fi

failed=()
summaries=()
for name in "${fuzzers[@]}"; do
  binary="$build/tests/fuzz/fuzz_$name"
  artifacts="$build/artifacts/$name"
  log="$build/logs/fuzz_$name.log"
  rm -rf "$artifacts"  # a reproducer found now must not be confused with an old one
  mkdir -p "$artifacts" "$(dirname "$log")" "$work/$name"
  if [ "$name" = onnx ]; then  # the ONNX fixtures of the import tests, the small ones
    find tests/fixtures/onnx -name '*.onnx' -size -300k -exec cp {} "$work/$name/" \;
  else
    cp -R "tests/fuzz/corpus/$name/." "$work/$name/"
  fi
  # -keep_seed: the image decoder (Debian's libstb) is not instrumented, so seeds of different formats look
  # alike to libFuzzer; keep them all as starting points instead of dropping those without new coverage
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -keep_seed=1
        -artifact_prefix="$root/$artifacts/")
  [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")

  echo "fuzz: running fuzz_$name for ${seconds}s (log: $log)"
  status=0
  "$binary" "${args[@]}" "$work/$name" >"$log" 2>&1 || status=$?

  runs="$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)"
  [ -n "$runs" ] || runs="$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -n 1 || true)"
  reproducer="$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | head -n 1)"
  if [ "$status" -eq 0 ] && [ -z "$reproducer" ]; then
    summaries+=("fuzz_$name: ${runs:-?} executions in ${seconds}s, ok")
    continue
  fi
  if [ -n "$reproducer" ]; then
    kind="$(basename "$reproducer")"
    kind="${kind%%-*}"
    result="${kind^^} (exit $status), reproducer: $reproducer"
  else
    result="FAILED (exit $status, no reproducer written)"
  fi
  summaries+=("fuzz_$name: ${runs:-?} executions, $result")
  failed+=("fuzz_$name")
  # the report: from the sanitizer's or libFuzzer's first ERROR line (the stack), else the end of the log
  first="$(grep -nE 'ERROR: |runtime error: |terminate called|deadly signal' "$log" | head -n 1 | cut -d: -f1 || true)"
  echo "---- fuzz_$name: report from $log ----" >&2
  if [ -n "$first" ]; then sed -n "${first},$((first + 60))p" "$log" >&2; else tail -n 60 "$log" >&2; fi
  if [ -n "$reproducer" ]; then
    echo "---- fuzz_$name: reproducer $reproducer ($(wc -c <"$reproducer") bytes; first 256 shown) ----" >&2
    od -A x -t x1z -N 256 -v "$reproducer" >&2
    echo "---- rerun it with: $binary $reproducer ----" >&2
  fi
done

echo
echo "fuzz summary:"
printf '  %s\n' "${summaries[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#fuzzers[@]} fuzzers ran ${seconds}s each without a finding"
