# SPDX-License-Identifier: MIT
"""The agent works as an unprivileged user holding only the capabilities of docs/security.md
(what dist/aperture-agent.service grants), as ambient capabilities set by capsh:

- cpu: ap_chain (run by root, so reading it takes CAP_SYS_PTRACE) is sampled with its known
  chain symbolized in >= 90% of the samples, as in test_cpu_chain.py;
- lock: ap_locks's g_hog_mutex is reported by name with its waiters' function, and the kernel
  frames of the waits are named (CAP_SYSLOG);
- syscall: ap_syscalls's exact getppid/openat counts;
- while recording, the agent holds only what its run loop needs (/proc/PID/status: CapEff and
  CapPrm without CAP_PERFMON and CAP_SYSLOG, no ambient set, NoNewPrivs); run as root, it
  trims root's full set (bounding set included) the same way;
- without CAP_BPF or CAP_PERFMON it exits 1 before loading, naming the missing capability;
  without a recommended one (CAP_SYS_PTRACE) it records and warns, naming it."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from aptest import (BIN_DIR, TEST_BIN_DIR, check, fail, has_chain, read_folded, read_until,
                    require_bpf, skip)

USER = "aperture-test"
GRANTED = ["cap_bpf", "cap_perfmon", "cap_sys_ptrace", "cap_dac_read_search",
           "cap_checkpoint_restore", "cap_syslog"]
# kernel numbers (include/uapi/linux/capability.h)
NUM = {"cap_dac_read_search": 2, "cap_sys_ptrace": 19, "cap_syslog": 34, "cap_perfmon": 38,
       "cap_bpf": 39, "cap_checkpoint_restore": 40}
KEPT = {"cap_bpf", "cap_sys_ptrace", "cap_dac_read_search", "cap_checkpoint_restore"}
CHAIN = ["main", "chain_outer", "chain_middle", "chain_inner"]
RUNNING = []


def mask(caps):
    return sum(1 << NUM[c] for c in caps)


def ensure_user():
    """The unprivileged user the agent runs as: created (a system user without a home or a
    shell) when missing."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if not shutil.which("useradd"):
        skip("no useradd to create the unprivileged user")
    r = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", USER],
                       capture_output=True, text=True)
    if r.returncode not in (0, 9):  # 9: created meanwhile by a concurrent run
        skip(f"cannot create user {USER}: {r.stderr.strip()}")
    return pwd.getpwnam(USER)


def agent_cmd(caps, *args):
    """The agent as USER with exactly `caps` ambient (inheritable, permitted, effective)."""
    c = ",".join(caps)
    cmd = ["capsh"]
    if c:
        cmd.append(f"--inh={c}")
    cmd.append(f"--user={USER}")
    if c:
        cmd.append(f"--addamb={c}")
    return cmd + [f"--shell={os.path.join(BIN_DIR, 'aperture-agent')}", "--", *map(str, args)]


def start_agent(caps, *args):
    """Start the agent; returns (Popen, stderr so far) once it records. capsh execs the
    agent, so the Popen's pid is the agent's."""
    proc = subprocess.Popen(agent_cmd(caps, "-v", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    RUNNING.append(proc)
    started, err = read_until(proc, "recording", 60)
    if started:
        return proc, err
    proc.kill()
    out, rest = proc.communicate()
    fail(f"agent did not start recording (rc {proc.returncode}):\n{err}{rest}{out}")


def finish(proc, err):
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=120)
    err += rest
    check(proc.returncode == 0, f"agent exited {proc.returncode}:\n{err}{out}")
    check("no CAP_" not in err, f"a capability of the granted set was reported missing:\n{err}")
    return err


def status_caps(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            fields[key] = val.strip()
    return fields


def check_dropped(proc):
    """After attaching, the run loop's set only: CAP_PERFMON and CAP_SYSLOG are gone."""
    st = status_caps(proc.pid)
    eff, prm, amb = (int(st[k], 16) for k in ("CapEff", "CapPrm", "CapAmb"))
    print(f"agent {proc.pid} while recording: CapEff {eff:#x} CapPrm {prm:#x} CapAmb {amb:#x} "
          f"NoNewPrivs {st.get('NoNewPrivs')}")
    check(eff == mask(KEPT) and prm == mask(KEPT),
          f"CapEff {eff:#x} / CapPrm {prm:#x}, expected {mask(KEPT):#x} ({sorted(KEPT)})")
    check(amb == 0, f"ambient capabilities left: {amb:#x}")
    check(st.get("NoNewPrivs") == "1", "no_new_privs not set")


def root_drop(tmp):
    """As root: the same trim, of root's full set, also from the bounding set (root holds
    CAP_SETPCAP); CAP_DAC_OVERRIDE stays (the profile is renamed into a directory that may be
    another user's at the end)."""
    proc = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "-v", "--mode", "cpu",
                             "-d", "90s", "-o", os.path.join(tmp, "root.folded")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    RUNNING.append(proc)
    err = ""
    while "recording" not in err:
        line = proc.stderr.readline()
        check(line, f"the agent did not start as root: {err}")
        err += line
    st = status_caps(proc.pid)
    want = mask(KEPT) | 1 << 1  # CAP_DAC_OVERRIDE
    for key in ("CapEff", "CapPrm", "CapBnd"):
        check(int(st[key], 16) == want, f"as root: {key} {st[key]}, expected {want:#x}")
    check(st.get("NoNewPrivs") == "1", "as root: no_new_privs not set")
    print(f"as root while recording: CapEff/CapPrm/CapBnd {want:#x}")
    finish(proc, err)


def record_cpu(tmp):
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_chain"), "60"],
                          stdout=subprocess.PIPE, text=True)
    RUNNING.append(wl)
    pid = int(wl.stdout.readline())
    out = os.path.join(tmp, "cpu.folded")
    proc, err = start_agent(GRANTED, "--mode", "cpu", "--pid", pid, "--sample-rate", 199,
                            "-d", "90s", "-o", out)
    check_dropped(proc)
    time.sleep(4)
    finish(proc, err)
    wl.kill()
    wl.wait()
    stacks = read_folded(out)
    total = sum(c for _, c in stacks)
    ok = sum(c for frames, c in stacks if has_chain(frames, CHAIN))
    print(f"cpu: {ok}/{total} samples carry {';'.join(CHAIN)}")
    # 199 Hz for 4 s is ~800 samples on an idle machine; one loaded by parallel builds gave
    # 40-300: the floor only rules out a profile that is not the workload's
    check(total >= 20, f"too few samples: {total}")
    check(ok >= 0.9 * total, f"chain found in only {ok}/{total} samples")


def record_lock(tmp):
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_locks"), "3", "--wait"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    RUNNING.append(wl)
    pid = int(wl.stdout.readline())
    out = os.path.join(tmp, "lock.json")
    proc, err = start_agent(GRANTED, "--mode", "lock", "--pid", pid, "-d", "90s", "-o", out)
    wl.stdin.write("go\n")
    wl.stdin.close()
    json.loads(wl.stdout.read())
    wl.wait()
    finish(proc, err)
    rep = json.load(open(out))
    hog = [l for l in rep["locks"] if l.get("name") == "g_hog_mutex"]
    check(hog and hog[0]["contentions"] > 0, f"g_hog_mutex not reported: "
          f"{[l.get('name') for l in rep['locks']]}")
    frames = [f for s in hog[0]["stacks"] for f in s["frames"]]
    check("mutex_waiter_loop" in frames, "the waiters' function is in no g_hog_mutex stack")
    kernel = [f for f in frames if f.endswith("_[k]")]
    check(kernel, "no kernel frames in the waits' stacks")
    check(not any("[unknown]" in f for f in kernel), f"unnamed kernel frames: {kernel[:5]}")
    print(f"lock: g_hog_mutex {hog[0]['contentions']} waits, {len(kernel)} kernel frames "
          "all named")


def record_syscall(tmp):
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-w", "-n", "1000",
                           "-e", "37"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    RUNNING.append(wl)
    pid = int(wl.stdout.readline())
    out = os.path.join(tmp, "syscall.json")
    proc, err = start_agent(GRANTED, "--mode", "syscall", "--pid", pid, "-d", "90s",
                            "-o", out)
    wl.stdin.write("go\n")
    wl.stdin.flush()
    check(wl.stdout.readline().startswith("done"), "workload did not finish its round")
    wl.stdin.close()
    wl.wait(timeout=30)
    finish(proc, err)
    ents = {e["name"]: e for e in json.load(open(out))["entries"] if e["pid"] == pid}
    counts = {n: ents[n]["count"] if n in ents else 0 for n in ("getppid", "openat")}
    print(f"syscall: {counts}")
    check(counts == {"getppid": 1000, "openat": 37}, f"counts {counts}, expected 1000 / 37")


def missing(tmp):
    """One capability taken away at a time."""
    out = os.path.join(tmp, "missing.folded")
    for cap in ("cap_bpf", "cap_perfmon"):
        caps = [c for c in GRANTED if c != cap]
        r = subprocess.run(agent_cmd(caps, "--mode", "cpu", "-d", "1s", "-o", out),
                           capture_output=True, text=True, timeout=120)
        print(f"without {cap}: exit {r.returncode}: {r.stderr.strip()}")
        check(r.returncode == 1, f"without {cap}: exit {r.returncode}, expected 1")
        check(f"missing {cap.upper()} (needed to" in r.stderr,
              f"without {cap}: the error does not name it: {r.stderr}")
        check("libbpf" not in r.stderr and "permission denied" not in r.stderr,
              f"without {cap}: it tried to load first: {r.stderr}")
        check(not os.path.exists(out), "a failed run left an output file")
    caps = [c for c in GRANTED if c != "cap_sys_ptrace"]
    r = subprocess.run(agent_cmd(caps, "--mode", "cpu", "-d", "1s", "-o", out),
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"without cap_sys_ptrace: exit {r.returncode}: {r.stderr}")
    check("no CAP_SYS_PTRACE, needed to read other users' processes" in r.stderr,
          f"without cap_sys_ptrace: no warning naming it: {r.stderr}")
    print("without cap_sys_ptrace: records, and warns")


def main():
    require_bpf()
    if not shutil.which("capsh"):
        skip("capsh (libcap2-bin) is not installed")
    if subprocess.run(["capsh", "--has-ambient"]).returncode != 0:
        skip("the kernel has no ambient capabilities")
    user = ensure_user()
    tmp = tempfile.mkdtemp(prefix="ap_privs_")
    try:
        os.chown(tmp, user.pw_uid, user.pw_gid)  # the agent writes its profiles there
        missing(tmp)
        root_drop(tmp)
        record_cpu(tmp)
        record_lock(tmp)
        record_syscall(tmp)
    finally:
        for p in RUNNING:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
    sys.exit(0)
