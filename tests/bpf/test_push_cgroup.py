# SPDX-License-Identifier: MIT
"""Per-sample labels from cgroup v2 paths: the test makes a systemd-like service cgroup and a
docker-like container scope in the cgroup v2 hierarchy, moves a workload into each, and the
pushed samples carry unit=aptest-foo.service and container_id=<64 hex> respectively (a
workload left where it was carries neither)."""
import os
import re
import secrets
import tempfile
import time

from aptest import check, require_bpf, skip, start_workload, wait_all
from push_lib import Server, start_agent, stop_agent

require_bpf()


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    return None


root = cgroup2_root()
if not root:
    skip("no cgroup v2 hierarchy mounted")
with open("/proc/self/cgroup") as f:
    own = next((l.strip()[3:] for l in f if l.startswith("0::")), None)
if own is None:
    skip("this process has no cgroup v2 path")
CID = secrets.token_hex(32)
slice_dir = os.path.join(root, f"aptest-{os.getpid()}.slice")
service = os.path.join(slice_dir, "aptest-foo.service")
scope = os.path.join(slice_dir, f"docker-{CID}.scope")
home = os.path.join(root, own.lstrip("/"))
procs = []
try:
    os.makedirs(service)
    os.makedirs(scope)
    svc_wl, svc_pid = start_workload("ap_chain", 60)
    ctr_wl, ctr_pid = start_workload("ap_chain", 60)
    plain_wl, plain_pid = start_workload("ap_chain", 60)
    procs = [svc_wl, ctr_wl, plain_wl]
    for d, pid in ((service, svc_pid), (scope, ctr_pid)):
        try:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        except OSError as e:
            skip(f"cannot move a process into {d}: {e}")
    srv = Server().start()
    with tempfile.TemporaryDirectory() as tmp:
        agent = start_agent("-m", "cpu", "--server", srv.url, "--push-interval", "1s",
                            "--spool-dir", os.path.join(tmp, "spool"),
                            "-p", svc_pid, "-p", ctr_pid, "-p", plain_pid)
        time.sleep(3.5)
        err = stop_agent(agent)
    srv.stop()
    samples = [s for p in srv.stored("cpu") for s in p.samples]
    by_pid = {}
    for s in samples:
        by_pid.setdefault(s["labels"].get("pid"), []).append(s["labels"])
    for pid in (svc_pid, ctr_pid, plain_pid):
        check(by_pid.get(pid), f"no samples of pid {pid}:\n{err[-1500:]}")
    check(all(l.get("unit") == "aptest-foo.service" and "container_id" not in l
              for l in by_pid[svc_pid]), f"service labels: {by_pid[svc_pid][:2]}")
    check(all(l.get("container_id") == CID and "unit" not in l for l in by_pid[ctr_pid]),
          f"container labels: {by_pid[ctr_pid][:2]} (want {CID})")
    # the test's own cgroup may be a unit (a systemd service running the tests): the same
    want_unit = None
    for comp in own.split("/"):
        if comp.endswith(".service") or comp.endswith(".scope"):
            want_unit = comp
    if not re.search(r"[0-9a-f]{64}", own):  # the tests themselves not in a container
        check(all(l.get("unit") == want_unit and "container_id" not in l
                  for l in by_pid[plain_pid]), f"plain labels: {by_pid[plain_pid][:2]}")
    print(f"unit and container_id labels on {len(samples)} samples")
finally:
    for p in procs:
        p.kill()
    wait_all(procs)
    for d in (service, scope, slice_dir):
        for _ in range(50):
            try:
                if os.path.isdir(d):
                    os.rmdir(d)
                break
            except OSError:
                time.sleep(0.1)  # the killed workload leaves its cgroup a moment later
print("PASS")
