#!/bin/sh
# SPDX-License-Identifier: MIT
# The one-shot GPU check (bench/gpu_check.py): on a host WITH a GPU, builds the CUDA test
# programs, runs real kernels with known shapes and launch counts under the agent, compares
# GPU time from the CUPTI injection library with the kernels' own cudaEvent timing, finds a
# real leak, times the injection's and the agent's overhead; prints PASS/FAIL per check and a
# summary, writes artifacts under $OUT (if set). Fails at once, without hanging, without a GPU.
#
#   scripts/gpu-check.sh [--agent PATH] [--inject PATH] [--work DIR] [--arch ARCH]
#   scripts/gpu-check.sh --bundle DIR [--build DIR]
#
# --bundle (run on the build host): copies build/bin/aperture-agent, the shared libraries it
# needs beyond glibc, and libaperture_cupti.so into DIR, for a GPU host that lacks the build
# dependencies; there: scripts/gpu-check.sh --agent DIR/aperture-agent (DIR is put on
# LD_LIBRARY_PATH for the agent by the wrapper it writes, DIR/run-agent).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "--bundle" ]; then
	dir=${2:?--bundle needs a directory}
	build=$here/build
	[ "${3:-}" = "--build" ] && build=${4:?--build needs a directory}
	mkdir -p "$dir/lib"
	cp "$build/bin/aperture-agent" "$dir/aperture-agent.bin"
	# every library the agent loads except the C library's own (the GPU host has those)
	ldd "$build/bin/aperture-agent" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
		case $(basename "$lib") in
		libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
		*) cp -L "$lib" "$dir/lib/" ;;
		esac
	done
	inject=$(find "$build" -name libaperture_cupti.so -print -quit 2>/dev/null || true)
	[ -n "$inject" ] && cp "$inject" "$dir/"
	cat > "$dir/aperture-agent" <<'EOS'
#!/bin/sh
d=$(cd "$(dirname "$0")" && pwd)
LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/aperture-agent.bin" "$@"
EOS
	chmod +x "$dir/aperture-agent"
	echo "bundled into $dir: $(ls "$dir" "$dir/lib" | tr '\n' ' ')"
	exit 0
fi

py=$(command -v python3 || true)
if [ -z "$py" ]; then
	echo "FAIL: python3 is needed for the GPU check" >&2
	exit 1
fi
exec "$py" "$here/bench/gpu_check.py" "$@"
