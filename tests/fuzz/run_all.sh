#!/bin/sh
# `make fuzz`: every target in BUILD/fuzz for FUZZ_SECONDS each (default 60). Stops at the
# first target that finds a crash; its input is in BUILD/fuzz-work/artifacts.
set -eu
build=$1
secs=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "$0")" && pwd)
for bin in "$build"/fuzz/fuzz_*; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	sh "$here/run_fuzz.sh" "$bin" "$name" "$secs" "$build/fuzz-work"
done
