# The two set-up commands of the README, and a few conveniences. Each target installs what is missing first.
BUILD   ?= build
JOBS    ?= $(shell nproc)
DATA    ?= .cache/mnist
CMAKE_FLAGS ?=

# A new build folder uses Ninja (it schedules the two cores better than make's recursion: a fresh `make test`
# builds about 25 s sooner); one configured earlier keeps its generator.
generator = $(if $(wildcard $(1)/CMakeCache.txt),,-G Ninja)

.PHONY: all setup build test test-fast test-sanitize fuzz train bench bench-build debug format format-check clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) $(call generator,$(BUILD)) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Every test: the unit suites, the command line's (label cli), gdb, mpi and the slow ones (docs/contributing.md).
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The unit suites only (CTest label unit): builds the library and tapegrad_tests, not the binaries; seconds to run.
test-fast: setup
	@cmake -S . -B $(BUILD) $(call generator,$(BUILD)) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target tapegrad_tests
	@cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

# The whole suite with AddressSanitizer + UndefinedBehaviorSanitizer, built without MPI (TAPEGRAD_MPI=OFF):
# Open MPI keeps start-up allocations it never frees, which LeakSanitizer would report as leaks in every MPI
# test, and the reports would be Open MPI's, not ours. The sharding and one-process tg::distributed tests run.
# File by file (CMAKE_UNITY_BUILD=OFF), so that a file that compiles only inside its unity batch fails here.
# The gdb tests are left out (TAPEGRAD_GDB_TESTS=OFF): they check what gdb prints, which the sanitizers do not change.
test-sanitize: setup
	@cmake -S . -B build-sanitize $(call generator,build-sanitize) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPEGRAD_NATIVE=OFF -DTAPEGRAD_MPI=OFF \
	  -DCMAKE_UNITY_BUILD=OFF \
	  -DTAPEGRAD_GDB_TESTS=OFF \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
	@cmake --build build-sanitize -j $(JOBS)
	@cd build-sanitize && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -E install_and_consume

# libFuzzer harnesses (tests/fuzz), each run for FUZZ_SECONDS on a copy of its seed corpus.
FUZZ_SECONDS ?= 30
fuzz: setup
	@bash scripts/setup.sh fuzz
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

train: setup
	@bash scripts/setup.sh train
	@cmake -S . -B $(BUILD) $(call generator,$(BUILD)) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target tapegrad_bin
	@bash scripts/fetch_mnist.sh $(DATA)
	@$(BUILD)/apps/tapegrad train --model lenet --data $(DATA)

bench: build
	@bash scripts/setup.sh train reference
	@cmake -S . -B $(BUILD) >/dev/null  # finds libtorch-dev once installed
	@cmake --build $(BUILD) -j $(JOBS) --target bench_train bench_int8 bench_layers bench_libtorch bench_peak
	@bash scripts/fetch_mnist.sh $(DATA)
	@/usr/bin/python3 scripts/bench.py --data $(DATA) $(BENCH_FLAGS)

# The benchmark programs compile (they are not part of `all`); .ci/run checks this after `make test`.
bench-build: build
	@cmake --build $(BUILD) -j $(JOBS) --target bench_train bench_int8 bench_layers bench_peak

debug: setup
	@cmake -S . -B build-debug $(call generator,build-debug) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-debug -j $(JOBS)

# clang-format (.clang-format: Google base, 110 columns) over every C++ file in git; format-check changes nothing
# and fails on the first file that differs (.ci/run runs it).
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.hpp')
format:
	@bash scripts/setup.sh format
	@clang-format -i $(FORMAT_FILES)

format-check:
	@bash scripts/setup.sh format
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: $(words $(FORMAT_FILES)) files formatted"

clean:
	@rm -rf $(BUILD) build-debug build-sanitize build-fuzz
