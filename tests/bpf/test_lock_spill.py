# SPDX-License-Identifier: MIT
"""Lock mode with aggregation maps too small for the workload (docs/lock-mode.md, spills): the
waits map shrunk to 8 entries (a dozen threads wait, each under a key or more) and the holders
map to 2, with the test knobs APERTURE_LOCK_WAITS_ENTRIES and APERTURE_LOCK_HOLDERS_ENTRIES.
What does not fit goes to the agent on the lock_events ring buffer and is recorded as the
drain would have: the report passes test_lock_mode's checks against the workload's accounting
(waits, wait time, holders, stacks), every blocked wait the kernel saw is in it, and nothing
is lost."""
import json
import os
import subprocess
import tempfile

from aptest import BIN_DIR, check, require_bpf
from test_lock_mode import check_locks, record

TINY = {"APERTURE_LOCK_WAITS_ENTRIES": "8", "APERTURE_LOCK_HOLDERS_ENTRIES": "2"}

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    js = os.path.join(tmp, "locks.json")
    acct, _ = record(tmp, js, seconds=2, env=TINY)
    rep = json.load(open(js))
    st = check_locks(acct, rep)  # also: waits_lost == holders_lost == 0
    print(f"spilled: {st['waits_spilled']} waits, {st['holders_spilled']} holders; lost: "
          f"{st['waits_lost']} waits, {st['holders_lost']} holders")
    check(st["waits_spilled"] > 0, "the 8-entry waits map never spilled")
    check(st["holders_spilled"] > 0, "the 2-entry holders map never spilled")
    # every wait that slept, in the map, spilled or deferred, is in the report exactly once
    user = sum(l["contentions"] for g in ("locks", "condvars", "other_waits")
               for l in rep[g] if not l["kernel"])
    check(user == st["futex_waits_blocked"],
          f"{user} user waits reported, {st['futex_waits_blocked']} blocked in the kernel")

    # the knob is checked like any number
    r = subprocess.run([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "lock", "-d", "1",
                        "--output", os.path.join(tmp, "x.json")], capture_output=True,
                       text=True, timeout=60,
                       env={**os.environ, "APERTURE_LOCK_WAITS_ENTRIES": "64k"})
    check(r.returncode != 0 and "APERTURE_LOCK_WAITS_ENTRIES" in r.stderr,
          f"a bad APERTURE_LOCK_WAITS_ENTRIES was accepted: {r.returncode} {r.stderr}")
print("PASS")
