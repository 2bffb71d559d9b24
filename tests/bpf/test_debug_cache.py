# SPDX-License-Identifier: MIT
"""Compressed debug files are read through their uncompressed copy in the debug cache.

libc6-dbg ships libc's DWARF zlib-compressed. Profiling a workload that lives in libc must
(1) write <build-id>.debug, uncompressed, into --debug-cache DIR and count it in the stats,
(2) give libc frames the same source lines as inflating in memory (--debug-cache off), and
(3) cost the agent less memory than inflating in memory: libdw holds ~10 MiB of inflated
    sections then (peak RSS compared between the two runs on the same machine).
"""
import json
import os
import re
import resource
import subprocess
import sys
import tempfile

from aptest import BIN_DIR, check, fail, require_bpf, skip, start_workload

AGENT = os.path.join(BIN_DIR, "aperture-agent")


def libc_build_id(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if "libc.so.6" in line and " r-xp " in line:
                path = line.split()[-1]
                break
        else:
            return None, None
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return path, m.group(1) if m else None


def compressed(path):
    out = subprocess.run(["readelf", "-t", "-W", path], capture_output=True, text=True).stdout
    return "COMPRESSED" in out


def run(pid, cache, out):
    ag = subprocess.Popen([AGENT, "--mode", "cpu", "--pid", str(pid), "--duration", "3s",
                           "--sample-rate", "199", "--debug-cache", cache,
                           "--format", "json", "--output", out],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(ag.pid, 0)
    err = ag.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        fail(f"agent exited {status}: {err}")
    with open(out) as f:
        return json.load(f), ru.ru_maxrss / 1024.0


def libc_lines(d):
    """(function, file, line) of every libc frame with source, weighted by samples."""
    frames, got = d["frames"], {}
    for s in d["samples"]:
        for fi in d["stacks"][s["stack"]]:
            f = frames[fi]
            if f.get("module", "").startswith("libc.so") and f.get("file"):
                k = (f["name"], f["file"], f.get("line", 0))
                got[k] = got.get(k, 0) + s["values"][0]
    return got


def main():
    require_bpf()
    work, pid = start_workload("ap_libc", 12)
    try:
        libc, bid = libc_build_id(pid)
        if not bid:
            skip("libc has no build-id")
        dbg = f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
        if not os.path.exists(dbg):
            skip(f"no debug file for {libc} ({dbg}): install libc6-dbg")
        if not compressed(dbg):
            skip(f"{dbg} has no compressed sections: nothing to inflate")
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            d_on, rss_on = run(pid, cache, os.path.join(tmp, "on.json"))
            d_off, rss_off = run(pid, "off", os.path.join(tmp, "off.json"))
            copy = os.path.join(cache, bid + ".debug")
            check(os.path.exists(copy), f"no uncompressed copy at {copy}")
            check(not compressed(copy), f"{copy} still has compressed sections")
            check(d_on["stats"].get("debug_files_inflated", 0) >= 1,
                  f"stats do not count the copy: {d_on['stats']}")
            check(d_off["stats"].get("debug_files_inflated", 0) == 0,
                  "--debug-cache off still used a copy")
            on, off = libc_lines(d_on), libc_lines(d_off)
            print(f"libc frames with source: {sum(on.values())} samples through the copy, "
                  f"{sum(off.values())} inflating in memory; "
                  f"peak RSS {rss_on:.1f} vs {rss_off:.1f} MiB")
            check(on and off, "no libc frame got a source line")
            # the same code, symbolized from the same DWARF: the same lines
            common = set(on) & set(off)
            check(len(common) * 2 >= min(len(on), len(off)),
                  f"lines differ: {sorted(on)[:5]} vs {sorted(off)[:5]}")
            check(rss_on + 3.0 < rss_off,
                  f"reading the copy should save libdw's inflated sections: "
                  f"{rss_on:.1f} MiB vs {rss_off:.1f} MiB in memory")
    finally:
        work.kill()
        work.wait()
    print("PASS")


if __name__ == "__main__":
    main()
