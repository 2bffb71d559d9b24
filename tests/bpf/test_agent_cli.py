# SPDX-License-Identifier: MIT
"""Usage errors exit 2 with a clear message; runtime failures (not root) exit 1; SIGINT
stops a run cleanly and still writes the output."""
import json
import os
import signal
import subprocess
import tempfile
import time

from aptest import (BIN_DIR, agent, check, cli, read_folded, require_bpf, start_recording,
                    start_workload, wait_all)

AGENT = os.path.join(BIN_DIR, "aperture-agent")


def expect(args, rc, needle):
    r = agent(*args, check_rc=False)
    check(r.returncode == rc, f"{args}: exit {r.returncode}, want {rc}: {r.stderr}")
    check(needle in r.stderr, f"{args}: message lacks {needle!r}: {r.stderr}")


expect(["--mode", "cpu", "--bogus"], 2, "unknown option '--bogus'")
expect(["--mode", "cpu", "--duration", "10x"], 2, "invalid duration '10x'")
expect(["--mode", "cpu", "--duration", "0s"], 2, "invalid duration")
expect(["--mode", "cpu", "--sample-rate", "abc"], 2, "invalid sample rate")
# a deadline that would wrap (2^64 ns is 18446744073.7 s), and merely absurd ones
expect(["--mode", "cpu", "--duration", "18446744073s"], 2, "invalid duration '18446744073s': at most")
expect(["--mode", "cpu", "--duration", "100000h"], 2, "at most 8784h")
expect(["--mode", "cpu", "--duration", "99999999999999999999s"], 2, "invalid duration")
expect(["--mode", "cpu", "--sample-rate", "100000"], 2, "expected 1..10000 (Hz)")
# a format that contradicts a known extension; an unknown extension is the user's business
expect(["--mode", "cpu", "--format", "svg", "-o", "x.pb.gz"], 2,
       "--format svg contradicts the extension of 'x.pb.gz' (pprof)")
expect(["--mode", "cpu", "--format", "json", "-o", "x.folded"], 2, "(folded)")
# limits in messages come from the constants
expect(["--mode", "cpu", "--filter-call-depth", "501"], 2, "expected 1..500")
expect(["--mode", "cpu", "--comm", "a" * 16], 2, "1 to 15 characters")
expect(["--mode", "cpu", *sum((["--comm", f"c{i}"] for i in range(17)), [])], 2,
       "too many --comm (at most 16)")
expect(["--mode", "gpuz"], 2, "unknown mode 'gpuz'")
expect(["--mode", "cpu", "--pid", "999999999"], 2, "no such process")
expect(["--mode", "cpu", "--pid", "-4"], 2, "invalid pid")
expect(["--mode", "cpu", "-o", "/nonexistent-dir/x.svg", "-d", "1s"], 2, "cannot write output")
expect(["--mode", "cpu", "-o", "x.unknownext"], 2, "--format")
expect(["--mode", "cpu", "--format", "png"], 2, "unknown format 'png'")
# the Chrome trace is the GPU mode's timeline (docs/gpu.md): other modes refuse it
expect(["--mode", "cpu", "--format", "trace"], 2, "written only by --mode gpu")
expect(["--mode", "lock", "-o", "x.trace.json"], 2, "written only by --mode gpu")
expect([], 2, "no --mode")
# the CLI's report shares the check
r = cli("report", "in.pb.gz", "--format", "svg", "-o", "x.pb.gz")
check(r.returncode == 2 and "--format svg contradicts the extension of 'x.pb.gz'" in r.stderr,
      f"report --format svg -o x.pb.gz: exit {r.returncode}: {r.stderr}")
r = cli("report", "in.pb.gz", "--format", "trace")
check(r.returncode == 2 and "written only by 'aperture-agent --mode gpu'" in r.stderr,
      f"report --format trace: exit {r.returncode}: {r.stderr}")
r = agent("--help")
check("--sample-rate" in r.stdout, "help lacks flags")

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    os.chmod(tmp, 0o777)
    # not root: a clear runtime failure, exit 1, and no file left behind
    out = os.path.join(tmp, "x.folded")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", AGENT,
                        "--mode", "cpu", "-d", "1s", "-o", out], capture_output=True, text=True)
    check(r.returncode == 1, f"non-root run exited {r.returncode}: {r.stderr}")
    # the permission error, first and alone: no warning about what it then could not set up
    first = r.stderr.splitlines()[0] if r.stderr else ""
    check(("permission denied" in first or "missing CAP_" in first) and "root" in first,
          f"non-root run does not say why first: {r.stderr}")
    check("unwind" not in r.stderr, f"non-root run warns about the unwinder: {r.stderr}")
    check(not os.listdir(tmp), f"failed run left files: {os.listdir(tmp)}")

    # no --duration: runs until SIGINT, then writes its output
    out = os.path.join(tmp, "int.folded")
    # a busy process, so that an idle machine still yields samples in 2 s
    spin, _ = start_workload("ap_spin", 60)
    p, err = start_recording("--mode", "cpu", "-o", out)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    rest, more = p.communicate(timeout=30)
    err += more
    spin.kill()
    wait_all([spin])
    check(p.returncode == 0, f"SIGINT run exited {p.returncode}: {err}")
    check(sum(c for _, c in read_folded(out)) > 0, "SIGINT run wrote no samples")

    # above the kernel's perf_event_max_sample_rate the rate is clamped to it, and said so
    kmax = int(open("/proc/sys/kernel/perf_event_max_sample_rate").read())
    if kmax < 10000:
        out = os.path.join(tmp, "rate.json")
        r = agent("--mode", "cpu", "-d", "1s", "--sample-rate", kmax + 1, "-o", out)
        check(f"sampling at {kmax} Hz" in r.stderr, f"no clamp message: {r.stderr}")
        meta = json.load(open(out))["meta"]
        check(meta.get("sample_rate_hz") == str(kmax), f"rate not clamped: {meta}")
    else:
        print(f"note: perf_event_max_sample_rate is {kmax}: the clamp is not reachable here")
print("PASS")
