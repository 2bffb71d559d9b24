# SPDX-License-Identifier: MIT
"""Compiled unwind tables are cached on disk by build-id and reused by the next run.

With APERTURE_CACHE_DIR pointing at a fresh directory, the agent profiles nofp_chain (no frame
pointers, a shared library) three times:
1. nothing cached: every table is compiled, and written to <dir>/unwind/<build-id>.uwt;
2. every table comes from the cache, and the stacks are exactly as complete as when compiled;
3. with one cache file cut short and another overwritten by garbage: both are refused,
   compiled again and rewritten, and the stacks stay complete."""
import glob
import json
import os
import subprocess
import tempfile

from aptest import BIN_DIR, STACK_ROOTS, check, fail, require_bpf, start_workload, wait_all

CHAIN = ["main", "nf_outer"]


def run(cache, tmp, tag):
    work, pid = start_workload("nofp_chain", "-n", "4000", "both")
    out = os.path.join(tmp, f"{tag}.json")
    env = dict(os.environ, APERTURE_CACHE_DIR=cache)
    try:
        res = subprocess.run([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "cpu",
                              "--pid", str(pid), "--duration", "2s", "--sample-rate", "199",
                              "--format", "json", "-o", out],
                             capture_output=True, text=True, timeout=120, env=env)
    finally:
        work.kill()
        wait_all([work])
    if res.returncode:
        fail(f"{tag}: agent exited {res.returncode}: {res.stderr}")
    with open(out) as f:
        d = json.load(f)
    frames, total, whole = d["frames"], 0, 0
    for s in d["samples"]:
        user = [frames[i]["name"] for i in reversed(d["stacks"][s["stack"]])
                if frames[i]["kind"] == "user"]
        total += s["values"][0]
        whole += s["values"][0] if user and user[0] in STACK_ROOTS else 0
    st = d["stats"]
    print(f"{tag}: {whole}/{total} whole stacks; compiled {st['unwind_files_compiled']}, "
          f"from cache {st.get('unwind_files_from_cache')}")
    check(total >= 200, f"{tag}: too few samples ({total})")
    check(whole >= 0.99 * total, f"{tag}: only {whole}/{total} stacks are whole")
    return st


def main():
    require_bpf()
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        st = run(cache, tmp, "cold")
        files = sorted(glob.glob(os.path.join(cache, "unwind", "*.uwt")))
        check(st["unwind_files_compiled"] > 0 and st["unwind_files_from_cache"] == 0,
              f"cold run: {st}")
        check(len(files) >= 2, f"cold run cached {len(files)} tables")

        st = run(cache, tmp, "warm")
        check(st["unwind_files_from_cache"] == st["unwind_files_compiled"],
              "warm run compiled tables the cache held")

        # Which file sorts first depends on the build-ids, so compare each with its own original.
        originals = [open(p, "rb").read() for p in files[:2]]
        with open(files[0], "r+b") as f:
            f.truncate(len(originals[0]) // 2)
        with open(files[1], "r+b") as f:
            f.write(os.urandom(len(originals[1])))
        st = run(cache, tmp, "damaged")
        check(st["unwind_files_from_cache"] == st["unwind_files_compiled"] - 2,
              f"damaged entries were not refused and recompiled: {st}")
        for path, orig in zip(files[:2], originals):
            now = open(path, "rb").read()
            check(now[:8] == b"APUWTB01" and len(now) == len(orig),
                  f"damaged entry {os.path.basename(path)} was not rewritten: "
                  f"{len(now)} bytes now, {len(orig)} before, header {now[:8]!r}")
    print("PASS")


if __name__ == "__main__":
    main()
