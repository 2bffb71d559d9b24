# Thin wrapper over CMake. `make profile` and `make check` are the two commands README.md opens with.
BUILD ?= build
JOBS ?= $(shell nproc)
DURATION ?= 10s
# clang build with ASan+UBSan and the libFuzzer targets (tests/fuzz)
ASAN_BUILD ?= build-asan
FUZZ_SECONDS ?= 60

.PHONY: all deps build profile check bench clean fuzz fuzz-build

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# A 10-second whole-system CPU profile of this machine: flamegraph + top functions.
profile: build
	$(BUILD)/bin/aperture-agent --mode cpu --duration $(DURATION) --output aperture-profile.svg --top 20

check: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300 -j1

$(ASAN_BUILD)/CMakeCache.txt: | deps
	CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAP_FUZZ=ON

fuzz-build: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target fuzz_targets

# Every fuzz target for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=3600).
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run_all.sh $(ASAN_BUILD)

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
