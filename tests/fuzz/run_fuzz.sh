#!/bin/sh
# Run one libFuzzer target: replay its kept regression inputs, then fuzz for SECONDS from the
# seed corpus. New corpus entries and crash artifacts go under WORK, never into the tree.
# usage: run_fuzz.sh BINARY NAME SECONDS WORK
set -eu
bin=$1 name=$2 secs=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
corpus="$work/corpus/$name"
mkdir -p "$corpus" "$work/artifacts"
dict=""
[ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
# leaks inside libraries that are not ours (each explained in the file); set here even when
# CTest passes the test suite's own options, which do not know the fuzzers' inputs
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
# Limits every run shares: a slow input (>10 s) is a hang, >2 GiB RSS or a single >1 GiB
# malloc is a memory bomb; both are bugs in the parser's bounds, not in the fuzzer.
# libFuzzer reports a finding with exit code 77 by default, which CTest takes for "skipped"
# (SKIP_RETURN_CODE 77): a crash would pass as a skip. Any finding exits 1: a failure.
limits="-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -error_exitcode=1 -timeout_exitcode=1"
# UBSan only prints and goes on by default: a finding nobody sees. Make it a crash, with the
# input kept like any other.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
if [ -d "$here/regressions/$name" ] && [ -n "$(ls -A "$here/regressions/$name")" ]; then
	echo "fuzz.$name: replaying $(ls "$here/regressions/$name" | wc -l) regression inputs"
	# shellcheck disable=SC2086
	"$bin" $limits "$here/regressions/$name"/*
fi
seeds=""
[ -d "$here/corpus/$name" ] && seeds="$here/corpus/$name"
echo "fuzz.$name: fuzzing for ${secs}s"
# shellcheck disable=SC2086
exec "$bin" $limits $dict -max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/$name-" "$corpus" $seeds
