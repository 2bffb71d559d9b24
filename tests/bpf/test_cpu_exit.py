# SPDX-License-Identifier: MIT
"""Processes that start and exit during a whole-system run are still symbolized, including
one whose binary was deleted after it started (map_files)."""
import os
import shutil
import subprocess
import tempfile
import time

from aptest import (BIN_DIR, TEST_BIN_DIR, check, fail, has_chain, read_folded, require_bpf,
                    start_workload, wait_all)

CHAIN = ["chain_outer", "chain_middle", "chain_inner"]

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "sys.folded")
    deleted = os.path.join(tmp, "ap_chain_del")
    shutil.copy(os.path.join(TEST_BIN_DIR, "ap_chain"), deleted)
    ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "cpu",
                           "--duration", "4s", "--sample-rate", "199", "-o", out],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    # short-lived: runs 1 s and exits well before the agent stops
    short, short_pid = start_workload("ap_chain", 1)
    # deleted: its binary is unlinked while it runs
    gone, gone_pid = start_workload(deleted, 1)
    os.unlink(deleted)
    wait_all([short, gone])
    so, se = ag.communicate(timeout=60)
    if ag.returncode != 0:
        fail(f"agent exited {ag.returncode}: {se}")
    stacks = read_folded(out)
    for comm in ("ap_chain", "ap_chain_del"):
        mine = [(f, c) for f, c in stacks if f[0] == comm]
        total = sum(c for _, c in mine)
        ok = sum(c for f, c in mine if has_chain(f, CHAIN))
        print(f"{comm}: {ok}/{total} samples symbolized with the chain")
        check(total >= 50, f"{comm}: too few samples ({total})")
        check(ok >= 0.9 * total, f"{comm}: chain symbolized in only {ok}/{total}")
        # frames of the workload's own binary are all resolved (libc's local
        # __libc_start_call_main has no symbol in Debian's stripped libc: "[unknown] (libc.so.6)")
        own = sum(c for f, c in mine if any(x == f"[unknown] ({comm})" for x in f))
        check(own == 0, f"{comm}: {own}/{total} samples have unresolved frames in {comm}")
        check(all("main" in f for f, _ in mine if has_chain(f, CHAIN)), f"{comm}: main missing")
print("PASS")
