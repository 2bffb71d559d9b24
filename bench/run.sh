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
# Soak: all modes under process churn, RSS/CPU every interval (CSV + SVG in soak-results/).
# Short here; the long run: bench/soak.py --duration 30m (the script's default).
python3 bench/soak.py --build "${BUILD:-build}" --duration "${SOAK_DURATION:-3m}" \
	--interval "${SOAK_INTERVAL:-20s}" --out "${SOAK_OUT:-soak-results}"
# The aggregator (ingest per core, bytes per sample, query latency; docs/aggregator-bench.md)
# and the agent in continuous mode. Short here (AGG_SCALE shrinks the pushed time ranges);
# the full run: bench/aggregator_bench.py (scale 1).
python3 bench/aggregator_bench.py --build "${BUILD:-build}" --scale "${AGG_SCALE:-0.05}" \
	--csv "${AGG_CSV:-aggregator-bench.csv}"
python3 bench/agent_continuous.py --build "${BUILD:-build}" --rss-minutes "${RSS_MINUTES:-1}"
# SQLite and ClickHouse behind the aggregator, side by side (docs/deploy.md#sizing; starts its
# own clickhouse-server from dist/clickhouse). Short here; the figures: --fleet-interval 120
# --week-interval 3600 --reps 10 --concurrency 16 at scale 1.
python3 bench/storage_compare.py --build "${BUILD:-build}" --scale "${CMP_SCALE:-0.02}" \
	--concurrency 16 --csv "${CMP_CSV:-storage-compare.csv}"
