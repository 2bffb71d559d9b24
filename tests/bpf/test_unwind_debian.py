# SPDX-License-Identifier: MIT
"""A program as Debian ships it: /usr/bin/xz (xz-utils) is built -O2 without frame pointers and
stripped to .dynsym. Compressing with it, >= 99% of its samples must unwind from the leaf
through xz's own (unnamed) frames to glibc's __libc_start_call_main / __libc_start_main, and
the walker must call those stacks complete. Frame pointers alone lose the callers of every
frameless function here."""
import json
import os
import shutil
import subprocess
import tempfile

from aptest import agent, check, require_bpf, skip, wait_all


def main():
    require_bpf()
    xz = shutil.which("xz")
    if not xz:
        skip("xz is not installed (Debian: xz-utils)")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "in.txt")
        with open(data, "wb") as f:
            # compressible but not trivially: xz stays busy in its match finder
            f.write(os.urandom(6 << 20).hex().encode())
        proc = subprocess.Popen([xz, "-9", "-T1", "-c", data], stdout=subprocess.DEVNULL)
        try:
            out = os.path.join(tmp, "p.json")
            agent("--mode", "cpu", "--pid", proc.pid, "--duration", "3s", "--sample-rate",
                  "199", "--format", "json", "-o", out, timeout=120)
            with open(out) as f:
                d = json.load(f)
        finally:
            proc.kill()
            wait_all([proc])
    frames, total, whole = d["frames"], 0, 0
    for s in d["samples"]:
        user = [frames[i]["name"] for i in reversed(d["stacks"][s["stack"]])
                if frames[i]["kind"] == "user"]
        total += s["values"][0]
        if any(n.startswith("__libc_start") for n in user) and len(user) >= 3:
            whole += s["values"][0]
    st = d["stats"]
    print(f"xz: {whole}/{total} samples unwound to __libc_start_main; walker "
          f"{st.get('stacks_complete', 0)}/{st.get('stacks_user_walked', 0)} complete")
    check(total >= 300, f"too few samples ({total})")
    check(whole >= 0.99 * total, f"only {whole}/{total} samples reach __libc_start_main")
    check(st.get("stacks_complete", 0) >= 0.99 * st.get("stacks_user_walked", 1),
          "the walker did not finish xz's stacks")
    print("PASS")


if __name__ == "__main__":
    main()
