#!/bin/sh
# Cost of the CUPTI injection library (src/gpu/inject) against the mock CUPTI: per launch
# (the CUPTI callback -> token bucket -> correlation probe) and per activity record (buffer
# completion -> batches -> activity probe -> BPF -> ring buffer), without the library, with
# it but no tracer, and with the agent's loader attached (root). Needs the test build:
#   sh bench/cupti_overhead.sh [BUILD_DIR]     (default ./build)
# Each line is one run of tests/bin/cupti_harness; run it a few times on a quiet machine.
set -eu
B=${1:-build}
T=$B/tests/bin/test_activity_bpf
H=$B/tests/bin/cupti_harness
L=$(cd "$B/lib" && pwd)/libaperture_cupti.so
N=${N:-200000}
NA=${NA:-20000}
for f in "$T" "$H" "$L"; do
	[ -e "$f" ] || { echo "missing $f: build the tests first (make build)" >&2; exit 1; }
done
run() { printf '%-52s ' "$1"; shift; "$@" 2>/dev/null | tail -1; }
echo "== per launch (the mock's launch path with the CUPTI callback around it)"
run "no injection library" "$T" --bench launch "$N" none "$H" -
run "library, no tracer, no rate limit" env APERTURE_CUPTI_RATE=0 "$T" --bench launch "$N" none "$H" "$L"
run "library, no tracer, default rate limit" "$T" --bench launch "$N" none "$H" "$L"
run "library + loader attached, every launch probed" env APERTURE_CUPTI_RATE=0 "$T" --bench launch "$NA" attach "$H" "$L"
run "library + loader attached, default rate limit" "$T" --bench launch "$N" attach "$H" "$L"
echo "== per activity record (buffer completion on CUPTI's thread)"
run "library, no tracer" "$T" --bench records 50000 none "$H" "$L"
for b in 1 8 32; do
	run "library + loader attached, $b record(s) per probe" env APERTURE_CUPTI_BATCH=$b "$T" --bench records 50000 attach "$H" "$L"
done
