# Thin wrapper over CMake. `make profile` and `make check` are the two commands README.md opens with.
BUILD ?= build
JOBS ?= $(shell nproc)
DURATION ?= 10s

.PHONY: all deps build profile check bench clean

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

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD)
