# SPDX-License-Identifier: MIT
"""The known call chain of a frame-pointer workload appears, in order and symbolized, in at
least 90% of its samples; --pid keeps only that process (all of it)."""
import os
import tempfile

from aptest import (agent, check, has_chain, read_folded, require_bpf, start_workload,
                    wait_all)

CHAIN = ["main", "chain_outer", "chain_middle", "chain_inner"]

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    chain, chain_pid = start_workload("ap_chain", 6)
    spin, spin_pid = start_workload("ap_spin", 6)
    out = os.path.join(tmp, "chain.folded")
    agent("--mode", "cpu", "--pid", chain_pid, "--duration", "3s", "--sample-rate", "199",
          "--output", out)
    stacks = read_folded(out)
    wait_all([chain, spin])

    total = sum(c for _, c in stacks)
    check(total > 0, "no samples recorded")
    comms = {frames[0] for frames, _ in stacks}
    check(comms == {"ap_chain"}, f"--pid {chain_pid} leaked other processes: {comms}")
    ok = sum(c for frames, c in stacks if has_chain(frames, CHAIN))
    print(f"{ok}/{total} samples carry {';'.join(CHAIN)}")
    # at 199 Hz for 3 s on one busy thread we expect ~600 samples
    check(total >= 200, f"too few samples: {total}")
    check(ok >= 0.9 * total, f"chain found in only {ok}/{total} samples")
    check(not any("spin_other_work" in f for f, _ in stacks), "bystander process sampled")
print("PASS")
