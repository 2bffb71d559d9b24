#!/bin/sh
# ThreadSanitizer run of the agent's threads (process-event handling, the unwind-table compile
# and install workers, debuginfod fetches) under process churn: many short-lived processes
# started and exited every second while the agent records in every mode, then in cpu mode
# with --per-event. `make check-tsan` builds BUILD (default build-tsan, -DAP_TSAN=ON) and runs
# this. Exit 0 when TSan reported nothing; the reports are in $OUT/tsan.* otherwise.
#   bench/tsan_churn.sh [BUILD] ; env: SECONDS_PER_RUN (default 20), CHURN_RATE (default 300)
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
secs=${SECONDS_PER_RUN:-20}
rate=${CHURN_RATE:-300}
out=$(mktemp -d /tmp/aperture-tsan.XXXXXX)
agent="$build/bin/aperture-agent"
churn="$build/tests/bin/ap_churn"
[ -x "$agent" ] || { echo "tsan: $agent not built (make check-tsan)" >&2; exit 1; }
if [ ! -x "$churn" ]; then
	cmake --build "$build" --target ap_churn >/dev/null
fi
# halt_on_error=0: collect every race of the run, not only the first; exitcode 23 marks them.
export TSAN_OPTIONS="halt_on_error=0:exitcode=23:second_deadlock_stack=1:history_size=4:suppressions=$PWD/tests/sanitizers/tsan.supp:log_path=$out/tsan"
# TSan's shadow memory needs a fixed address-space layout: without ASLR (clang 14's runtime
# aborts on the kernel's 32-bit mmap randomization otherwise).
norand="setarch $(uname -m) -R"

status=0
run() {
	name=$1
	shift
	"$churn" -r "$rate" -d 0 -l 2000 -j 64 >/dev/null 2>"$out/churn.$name.log" &
	cpid=$!
	echo "tsan: $name: $agent $* (churn $rate/s, $secs s)"
	rc=0
	$norand "$agent" "$@" -d "${secs}s" -o "$out/$name.json" --format json \
		>/dev/null 2>"$out/agent.$name.log" || rc=$?
	kill "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
	echo "tsan: $name: agent exit $rc; $(cat "$out/churn.$name.log")"
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 23 ]; then
		tail -20 "$out/agent.$name.log" >&2
		status=1
	fi
}
run all --mode cpu,lock,syscall -s 499
run cpu_events --mode cpu -s 999 --per-event

reports=$(cat "$out"/tsan.* 2>/dev/null | grep -c "WARNING: ThreadSanitizer" || true)
if [ "$reports" -gt 0 ]; then
	echo "tsan: $reports reports:" >&2
	cat "$out"/tsan.* >&2
	status=1
else
	echo "tsan: no ThreadSanitizer report ($out)"
fi
exit $status
