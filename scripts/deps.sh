#!/bin/sh
# Install the Debian packages listed in scripts/debian-packages.txt that are missing.
# Called by the Makefile before building; a no-op when everything is present.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list="$here/debian-packages.txt"
missing=""
for pkg in $(grep -v '^#' "$list" | grep -v '^$'); do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $pkg" ;;
	esac
done
npm_deps() {
	# npm packages of the tests (tests/js/package.json): a real Pyroscope client and
	# playwright-core; no install scripts run (none of them needs one)
	js="$here/../tests/js"
	[ -d "$js/node_modules/playwright-core" ] && [ -d "$js/node_modules/@pyroscope/nodejs" ] && return 0
	command -v npm >/dev/null 2>&1 || { echo "deps: npm not found; the web UI and Pyroscope client tests will skip" >&2; return 0; }
	echo "deps: npm install in tests/js" >&2
	(cd "$js" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
		echo "deps: npm install failed; the web UI and Pyroscope client tests will skip" >&2
}
if [ -z "$missing" ]; then
	npm_deps
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run 'sudo $0' (or install them with apt-get) and retry" >&2
	exit 1
fi
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
npm_deps
