#!/bin/sh
# `make serve`: the aggregator on SQLite under ./aperture-data and a local agent pushing this
# machine's CPU, lock and syscall profiles to it every 10 s. Ctrl-C stops both (the agent
# pushes its last interval first).
set -eu
bin=${1:-build/bin}
listen=${APERTURE_LISTEN:-127.0.0.1:7070}
data=${APERTURE_DATA:-./aperture-data}
modes=${APERTURE_MODES:-cpu,lock,syscall}
mkdir -p "$data"
setsid "$bin/aperture-aggregator" --listen "$listen" --storage "sqlite:$data/aperture.db" \
	--retention 7d >"$data/aggregator.log" 2>&1 &
agg=$!
agent=
cleanup() {
	[ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
	kill -TERM "$agg" 2>/dev/null && wait "$agg" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
i=0
until curl -fsS "http://$listen/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$agg" 2>/dev/null; then
		echo "serve: the aggregator did not start; its log:" >&2
		cat "$data/aggregator.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "Aperture UI: http://$listen/   (data in $data; Ctrl-C stops the agent and the aggregator)"
setsid "$bin/aperture-agent" --mode "$modes" --server "http://$listen" --push-interval 10s \
	--spool-dir "$data/spool" &
agent=$!
wait "$agent" || true
agent=
