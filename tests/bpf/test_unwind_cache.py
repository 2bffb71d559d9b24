# SPDX-License-Identifier: MIT
"""Compiled unwind tables are cached on disk by build-id and reused by the next run.

With APERTURE_CACHE_DIR pointing at a fresh directory, the agent profiles nofp_chain (no frame
pointers, a shared library) three times:
1. nothing cached: every table is compiled, and written to <dir>/unwind/<build-id>.uwt;
2. every table comes from the cache, and the stacks are exactly as complete as when compiled;
3. with one cache file cut short and another overwritten by garbage: both are refused,
   compiled again and rewritten, and the stacks stay complete;
4. with entries planted by someone else (a valid table chowned to nobody, a symlink to a valid
   table, a FIFO): none is read (the FIFO would block), each is counted in
   unwind_cache_untrusted, compiled again and replaced by our own file."""
import glob
import json
import os
import stat
import subprocess
import tempfile

from aptest import BIN_DIR, STACK_ROOTS, check, fail, require_bpf, start_workload, wait_all

CHAIN = ["main", "nf_outer"]


def run(cache, tmp, tag):
    # outlives the recording even when the agent starts slowly (sanitizer builds)
    work, pid = start_workload("nofp_chain", "20", "both")
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

        planted = files[:3]
        os.chown(planted[0], 65534, 65534)
        decoy = os.path.join(tmp, "decoy.uwt")
        os.rename(planted[1], decoy)
        os.symlink(decoy, planted[1])
        if len(planted) == 3:
            os.unlink(planted[2])
            os.mkfifo(planted[2])
        st = run(cache, tmp, "planted")
        n = len(planted)
        check(st["unwind_cache_untrusted"] == n,
              f"planted entries not counted as untrusted: {st['unwind_cache_untrusted']} of {n}")
        check(st["unwind_files_from_cache"] == st["unwind_files_compiled"] - n,
              f"planted entries were read: {st}")
        for path in planted:
            ls = os.lstat(path)
            check(stat.S_ISREG(ls.st_mode) and ls.st_uid == os.geteuid(),
                  f"planted {os.path.basename(path)} was not replaced by our own file")
    print("PASS")


if __name__ == "__main__":
    main()
