#!/bin/sh
# Run every benchmark (root). Figures are ratios against an unprofiled baseline in the same run.
set -eu
cd "$(dirname "$0")/.."
python3 bench/cpu_overhead.py "$@"
python3 bench/unwind_vs_perf.py "$@"
python3 bench/whole_system_build.py --build "${BUILD:-build}"
python3 bench/lock_overhead.py "$@"
python3 bench/syscall_overhead.py "$@"
"${BUILD:-build}/tests/bin/bench_filter_cost" --filters "${BUILD:-build}/filters" --bench-filters "${BUILD:-build}/bench"
"${BUILD:-build}/tests/bin/bench_map_drain"
