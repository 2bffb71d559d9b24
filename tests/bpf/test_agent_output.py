# SPDX-License-Identifier: MIT
"""Output files are written safely by a root agent (issue #9): a link planted at the old
predictable temporary name does not redirect the write, devices and FIFOs are written in
place (never replaced by a regular file), another user's symlink as -o is refused, a killed
run leaves no temporary and keeps the older output, a full device reports ENOSPC, and a
second SIGINT quits a stopping run at once."""
import os
import signal
import stat
import subprocess
import tempfile
import threading
import time

from aptest import (BIN_DIR, agent, check, read_folded, require_bpf, start_recording,
                    start_workload, wait_all)

AGENT = os.path.join(BIN_DIR, "aperture-agent")
NOBODY = 65534

require_bpf()
spin, _ = start_workload("ap_spin", 60)  # samples on an idle machine too
try:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o1777)  # a shared, sticky directory like /tmp
        victim = os.path.join(tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")

        # 1. links planted at the names the agent used to open (<out>.tmp.<pid>), made in
        # the child between fork and exec, when its pid (the agent's) is known
        out = os.path.join(tmp, "a.folded")

        def plant():
            os.symlink(victim, f"{out}.tmp.{os.getpid()}")

        r = subprocess.run([AGENT, "-m", "cpu", "-d", "1s", "-o", out], capture_output=True,
                           text=True, preexec_fn=plant, timeout=60)
        check(r.returncode == 0, f"planted-link run exited {r.returncode}: {r.stderr}")
        check(open(victim).read() == "precious\n", "the write went through the planted link")
        check(os.path.isfile(out) and not os.path.islink(out), "output is not a regular file")
        check(sum(c for _, c in read_folded(out)) > 0, "output has no samples")
        left = sorted(set(os.listdir(tmp)) - {"victim", "a.folded"})
        check(len(left) == 1 and left[0].startswith("a.folded.tmp."),
              f"unexpected files after a normal run: {left}")
        os.unlink(os.path.join(tmp, left[0]))

        # 2. -o /dev/null is written in place, and stays the character device it was
        st0 = os.stat("/dev/null")
        agent("-m", "cpu", "-d", "1s", "--format", "folded", "-o", "/dev/null")
        st1 = os.lstat("/dev/null")
        check(stat.S_ISCHR(st1.st_mode) and st1.st_rdev == st0.st_rdev and st1.st_ino == st0.st_ino,
              "/dev/null was replaced")

        # 3. a FIFO is written in place and its reader gets the profile
        fifo = os.path.join(tmp, "pipe")
        os.mkfifo(fifo)
        got = []
        reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
        reader.start()
        agent("-m", "cpu", "-d", "1s", "--format", "folded", "-o", fifo)
        reader.join(30)
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced")
        check(got and any(line.rsplit(" ", 1)[-1].isdigit() for line in got[0].splitlines()),
              f"FIFO reader got no folded stacks: {got[:1]!r:.200}")

        # 4. -o as a symlink: another user's is refused (exit 2), root's is followed
        trap = os.path.join(tmp, "trap.folded")
        os.symlink(victim, trap)
        os.lchown(trap, NOBODY, NOBODY)
        r = agent("-m", "cpu", "-d", "1s", "-o", trap, check_rc=False)
        check(r.returncode == 2 and "symbolic link owned by uid 65534" in r.stderr,
              f"another user's link as -o: exit {r.returncode}: {r.stderr}")
        check(open(victim).read() == "precious\n", "the write went through a foreign link")
        mine = os.path.join(tmp, "mine.folded")
        target = os.path.join(tmp, "target.folded")
        os.symlink(target, mine)
        agent("-m", "cpu", "-d", "1s", "-o", mine)
        check(os.path.islink(mine) and sum(c for _, c in read_folded(target)) > 0,
              "root's own link was not written through to its target")

        # 5. SIGKILL while recording: no temporary left, the older output untouched
        before = open(out).read()
        names = set(os.listdir(tmp))
        p = subprocess.Popen([AGENT, "-m", "cpu", "-o", out], stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        p.kill()
        p.wait()
        check(set(os.listdir(tmp)) == names,
              f"SIGKILL left files: {sorted(set(os.listdir(tmp)) - names)}")
        check(open(out).read() == before, "SIGKILL changed the older output")

        # 6. a full device: the real errno, not a generic I/O error
        r = agent("-m", "cpu", "-d", "1s", "--format", "folded", "-o", "/dev/full",
                  check_rc=False)
        check(r.returncode == 1 and "No space left on device" in r.stderr,
              f"/dev/full: exit {r.returncode}: {r.stderr}")

        # 7. two signals in a row: the second quits the stopping run at once, non-zero, with
        # a message, leaving no temporary and the older output as it was. Two different
        # signals: two pending SIGINTs would merge into one delivery.
        p, _ = start_recording("-m", "cpu", "-o", out)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        check(p.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM),
              f"second signal: exit {p.returncode}, want 128 + the signal: {err}")
        check("second signal" in err, f"second SIGINT: no message: {err}")
        check(set(os.listdir(tmp)) == names,
              f"forced quit left files: {sorted(set(os.listdir(tmp)) - names)}")
        check(open(out).read() == before, "forced quit changed the older output")
finally:
    spin.kill()
    wait_all([spin])
print("PASS")
