# The two set-up commands of the README, and a few conveniences. Each target installs what is missing first.
BUILD   ?= build
JOBS    ?= $(shell nproc)
DATA    ?= .cache/mnist
CMAKE_FLAGS ?=

.PHONY: all setup build test train bench debug clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

train: setup
	@bash scripts/setup.sh train
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target train_mnist
	@bash scripts/fetch_mnist.sh $(DATA)
	@$(BUILD)/apps/train_mnist --data $(DATA)

bench: build
	@bash scripts/setup.sh train reference
	@bash scripts/fetch_mnist.sh $(DATA)
	@/usr/bin/python3 scripts/bench.py --data $(DATA) $(BENCH_FLAGS)

debug: setup
	@cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-debug -j $(JOBS)

clean:
	@rm -rf $(BUILD) build-debug
