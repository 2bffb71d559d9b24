# Thin wrapper over CMake. `make profile` and `make check` are the two commands README.md opens with.
BUILD ?= build
JOBS ?= $(shell nproc)
DURATION ?= 10s
FUZZ_SECONDS ?= 60

.PHONY: all deps build profile check check-asan check-tsan bench clean fuzz fuzz-build

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# A 10-second whole-system CPU profile of this machine, pushed by the agent to the aggregator's
# embedded store (SQLite under ./aperture-data) and read back from it: flamegraph + top functions.
profile: build
	DURATION=$(DURATION) sh scripts/profile.sh $(BUILD)/bin

# The aggregator on SQLite under ./aperture-data with its web UI and API on SERVE_LISTEN
# (docs/api.md), and a local agent pushing this machine's cpu, lock and syscall profiles to it
# every 10 s (docs/continuous.md). Prints the UI's URL; Ctrl-C stops both.
SERVE_LISTEN ?= 127.0.0.1:7070
.PHONY: serve
serve: build
	APERTURE_LISTEN=$(SERVE_LISTEN) sh scripts/serve.sh $(BUILD)/bin

# The whole suite, then the sanitizer build with the subset below (docs/testing.md);
# `make check SANITIZE=0` skips the latter, `make check-asan` runs the whole suite there.
# Tests that load BPF programs, start agents or aggregators (bpf.*, server.*, web.*,
# gpu.cupti_activity_bpf) are RUN_SERIAL: they run alone; the unit and fuzz tests run
# CHECK_JOBS at a time, which keeps the suite near 15 minutes on 2 cores.
SANITIZE ?= 1
CHECK_JOBS ?= 2
check: build
	cd $(BUILD) && ctest --output-on-failure --timeout 300 -j$(CHECK_JOBS)
ifneq ($(SANITIZE),0)
	$(MAKE) check-asan ASAN_TESTS='$(ASAN_SUBSET)'
endif

# The whole suite again on an AddressSanitizer + UBSan (+ LeakSanitizer) build of the agent,
# the CLI and the tests, built with clang into build-asan (docs/testing.md), which also holds
# the libFuzzer targets (tests/fuzz, docs/fuzzing.md). The BPF programs are the same;
# sanitizer options come from CTest (tests/CMakeLists.txt).
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
SAN_CC ?= clang
SAN_CXX ?= clang++

$(ASAN_BUILD)/CMakeCache.txt: | deps
	CC=$(SAN_CC) CXX=$(SAN_CXX) cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAP_SANITIZE=ON \
		-DAP_FUZZ=ON

# What `make check` runs under the sanitizers: every unit test (each parser: CFI, DWARF/ELF,
# JSON, pprof, folded, perf maps, WebAssembly, flags), every fuzz target for a few seconds
# (tests/fuzz: its kept crash inputs, then fuzzing from the seeds), and the end-to-end tests that drive the
# agent through its hostile-input, fault and output paths, and the aggregator's (network input:
# auth, limits, malformed bodies; queries; a SIGKILL). ASAN_TESTS='' is the whole suite.
ASAN_SUBSET = ^unit\.|^fuzz\.|^bpf\.test_(faults|cpu_outputs|agent_cli|filter_hostile|unwind_cache|lock_spill|syscall_mode|push_basic|push_refused)$$|^server\.test_aggregator_(auth|limits|queries|durability|hostile)$$
ASAN_TESTS ?=

check-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure --timeout 600 -j$(CHECK_JOBS) $(if $(ASAN_TESTS),-R '$(ASAN_TESTS)')

# ThreadSanitizer on the agent's threads (process events, unwind-table compile and install
# workers, debuginfod fetches) under a process-churn workload: bench/tsan_churn.sh.
$(TSAN_BUILD)/CMakeCache.txt: | deps
	CC=$(SAN_CC) CXX=$(SAN_CXX) cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAP_TSAN=ON

check-tsan: deps $(TSAN_BUILD)/CMakeCache.txt
	cmake --build $(TSAN_BUILD) -j$(JOBS) --target aperture-agent
	bench/tsan_churn.sh $(TSAN_BUILD)

fuzz-build: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target fuzz_targets

# Every fuzz target for FUZZ_SECONDS each (make fuzz FUZZ_SECONDS=3600).
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run_all.sh $(ASAN_BUILD)

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
