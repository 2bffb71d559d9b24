# SPDX-License-Identifier: MIT
"""The spool across runs and its bound:
 - SIGTERM pushes the last interval (a run shorter than its push interval pushes exactly one
   profile per mode, covering the whole run, totals exact);
 - with the server down, SIGTERM leaves the undelivered pushes in the spool (after at most
   --shutdown-timeout), and the next start sends them first;
 - --spool-max: pushes an earlier run left (written here in the spool's format) make the
   spool full; when the agent spools more, the oldest go first and are counted as dropped,
   and the one that stays is delivered before the new ones."""
import os
import re
import tempfile
import time

from aptest import check, require_bpf, start_workload, wait_all
from push_lib import Server, check_abutting, counters, start_agent, stop_agent, summary

require_bpf()
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")


def spool_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".push"))


def fake_push(d, seq, push_id, file_size):
    """A push as an earlier run spooled it (a valid multipart body), `file_size` bytes."""
    boundary = "aperture-" + "0" * 32
    payload = b""
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"; "
            f"filename=\"profile.pb.gz\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    query = f"push_id={push_id}&from={seq}&until={seq + 1}&label=host%3Dold&label=mode%3Dold"
    head = (f"APERTURE-PUSH 1\nid {push_id}\nmode old\ncontent-type multipart/form-data; "
            f"boundary={boundary}\nquery {query}\n\n").encode()
    payload = b"x" * (file_size - len(head) - len(body))
    body = body.replace(b"\r\n\r\n", b"\r\n\r\n" + payload, 1)
    name = f"{seq:020d}-{push_id}.push"
    with open(os.path.join(d, name), "wb") as f:
        f.write(head + body)
    check(os.path.getsize(os.path.join(d, name)) == file_size, "fake push size")
    return name


with tempfile.TemporaryDirectory() as tmp:
    wl, pid = start_workload("ap_chain", 120)

    # 1. SIGTERM pushes the last (here: the only) interval
    spool = os.path.join(tmp, "spool1")
    srv = Server().start()
    t0 = time.time_ns()
    agent = start_agent("-m", "cpu,syscall", "--server", srv.url, "--push-interval", "1h",
                        "--spool-dir", spool, "-p", pid, env=ENV)
    time.sleep(2)
    err = stop_agent(agent)
    t1 = time.time_ns()
    for mode in ("cpu", "syscall"):
        pushes = srv.stored(mode)
        check(len(pushes) == 1, f"{mode}: {len(pushes)} pushes from one interval ended by SIGTERM")
        check(t0 <= pushes[0].start < pushes[0].until <= t1,
              f"{mode}: range [{pushes[0].start}, {pushes[0].until}) outside the run [{t0}, {t1})")
        _, pushed, recorded = summary(err, mode)
        check(pushes[0].total() == recorded, f"{mode}: {pushes[0].total()} != {recorded}")
    check(srv.stored("cpu")[0].total() > 0, "no cpu samples in the last interval")
    srv.stop()
    print("SIGTERM: last interval pushed")

    # 2. server down at SIGTERM: the spool keeps it, bounded by --shutdown-timeout
    spool = os.path.join(tmp, "spool2")
    srv = Server()  # not started: connection refused
    agent = start_agent("-m", "cpu", "--server", srv.url, "--push-interval", "1s",
                        "--spool-dir", spool, "--shutdown-timeout", "2s", "-p", pid, env=ENV)
    time.sleep(3)
    t = time.time()
    err = stop_agent(agent)
    check(time.time() - t < 20, f"shutdown took {time.time() - t:.1f} s with a 2 s timeout")
    left = spool_files(spool)
    intervals, _, recorded = summary(err, "cpu")
    check(len(left) == intervals, f"{len(left)} files left for {intervals} intervals")
    check(re.search(rf"{len(left)} pushes stay in the spool", err), f"no leftover note:\n{err}")
    check(oct(os.stat(spool).st_mode & 0o777) == "0o700", "spool directory is not 0700")
    left_ids = [f.split("-", 1)[1][:-len(".push")] for f in left]
    # the next start sends them first, then its own
    srv.start()
    agent = start_agent("-m", "cpu", "--server", srv.url, "--push-interval", "1s",
                        "--spool-dir", spool, "-p", pid, env=ENV)
    srv.wait_for(lambda: len(srv.stored()) >= len(left_ids) + 1, 30, "the leftover pushes")
    err2 = stop_agent(agent)
    ids = [p.push_id for p in srv.stored()]
    check(ids[:len(left_ids)] == left_ids, f"leftovers not first, oldest first: {ids} vs {left_ids}")
    old = srv.stored()[:len(left_ids)]
    check_abutting(old, "leftover")
    check(sum(p.total() for p in old) == recorded,
          f"leftovers hold {sum(p.total() for p in old)} samples, the run recorded {recorded}")
    check(not spool_files(spool), f"spool not empty: {spool_files(spool)}")
    srv.stop()
    print("leftover spool sent by the next start")

    # 3. --spool-max: the oldest go first, counted
    spool = os.path.join(tmp, "spool3")
    os.makedirs(spool, mode=0o700)
    # together 100 bytes short of the bound: the next push does not fit
    first = fake_push(spool, 1000, "a" * 32, 600 * 1024)
    second = fake_push(spool, 2000, "b" * 32, (1 << 20) - 100 - 600 * 1024)
    srv = Server()  # down: the new intervals go to the full spool
    agent = start_agent("-m", "cpu", "--server", srv.url, "--push-interval", "1s",
                        "--spool-dir", spool, "--spool-max", "1M", "-p", pid, env=ENV)
    deadline = time.time() + 30
    while first in spool_files(spool) and time.time() < deadline:
        time.sleep(0.2)
    check(first not in spool_files(spool), "the oldest push was not dropped from a full spool")
    check(second in spool_files(spool), "a younger push was dropped before the oldest")
    total = sum(os.path.getsize(os.path.join(spool, f)) for f in spool_files(spool))
    check(total <= 1 << 20, f"spool holds {total} bytes with --spool-max 1M")
    srv.start()
    srv.wait_for(lambda: len(srv.stored()) >= 2, 30, "pushes after the spool was full")
    err = stop_agent(agent)
    ids = [p.push_id for p in srv.stored()]
    check("a" * 32 not in ids, "the dropped push arrived")
    check(ids[0] == "b" * 32, f"the oldest remaining push was not delivered first: {ids[:3]}")
    c = counters(err)
    check(c["dropped"] >= 1, f"dropped push not counted: {c}")
    srv.stop()
    print(f"spool bound: dropped={c['dropped']:.0f}")
    wl.kill()
    wait_all([wl])
print("PASS")
