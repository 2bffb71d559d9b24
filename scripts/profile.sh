#!/bin/sh
# `make profile`: a real profile of this machine through the whole path. The agent records
# DURATION of whole-system CPU samples and pushes them to an aggregator on the embedded store
# (SQLite under ./aperture-data); the flamegraph and the top functions are then read back from
# that store. A running `make serve` is used when it is up; else one is started for the run.
set -eu
bin=${1:-build/bin}
duration=${DURATION:-10s}
listen=${APERTURE_LISTEN:-127.0.0.1:7070}
data=${APERTURE_DATA:-./aperture-data}
out=${OUTPUT:-aperture-profile.svg}
url="http://$listen"
agg=
cleanup() {
	if [ -n "$agg" ]; then
		kill -TERM "$agg" 2>/dev/null || true
		wait "$agg" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! curl -fsS "$url/healthz" >/dev/null 2>&1; then
	mkdir -p "$data"
	setsid "$bin/aperture-aggregator" --listen "$listen" --storage "sqlite:$data/aperture.db" \
		--retention 7d >"$data/aggregator.log" 2>&1 &
	agg=$!
	i=0
	until curl -fsS "$url/healthz" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$agg" 2>/dev/null; then
			echo "profile: the aggregator did not start on $listen; its log ($data/aggregator.log):" >&2
			cat "$data/aggregator.log" >&2
			exit 1
		fi
		sleep 0.1
	done
fi
from=$(date +%s)
host=$(hostname)
"$bin/aperture-agent" --mode cpu --duration "$duration" --server "$url" --push-interval 10s \
	--spool-dir "$data/spool"
query="{mode=\"cpu\",host=\"$host\"}"
"$bin/aperture" query --server "$url" "$query" --from "$from" --until now -o "$out"
"$bin/aperture" query --server "$url" "$query" --from "$from" --until now --top 20
echo "flamegraph: $out; stored in $data (browse it with 'make serve')"
