# SPDX-License-Identifier: MIT
"""Files of a process in another mount namespace are resolved inside its root.

Two 'containers' (a new mount and PID namespace pivot_root'ed into a tmpfs) run a static
workload whose debug info is split off behind a .gnu_debuglink:

 A. hostile symlinks: the container's /usr/lib/debug, its /tmp, its <binary>.debug and its
    .debug/ directory are symlinks to absolute paths, which on the host hold decoy debug
    files and perf maps (watched with fanotify, which names the opening pid). The agent must
    never open a decoy, and the process must still be symbolized, with source lines from the
    debug file that sits at that same absolute path inside the container (proof that .debug/
    was resolved there).
 B. FIFOs where the debug files and the perf map are expected: the agent must not hang, and
    the process is still named from its own symbol table.

Before the fix (plain open() of /proc/PID/root/...), A reads the host's decoys and B hangs.
"""
import ctypes
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

from aptest import BIN_DIR, check, fail, require_bpf, skip

SRC = r"""
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void apct_leaf(void)
{
	for (int i = 0; i < 2000; i++)
		sink += (i * sink) ^ (unsigned long)i;
}
__attribute__((noinline)) void apct_outer(void) { apct_leaf(); sink += VARIANT; }
int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 10;
	struct timespec t0, t;
	/* anonymous executable memory: the agent then looks for a perf map */
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 100; i++)
			apct_outer();
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
	return p == MAP_FAILED;
}
"""

FAN_CLOEXEC, FAN_NONBLOCK, FAN_MARK_ADD = 0x1, 0x2, 0x1
FAN_ACCESS, FAN_OPEN = 0x1, 0x20
AT_FDCWD = -100


class Watch:
    """fanotify FAN_OPEN/FAN_ACCESS on the host decoys: any open of them shows, with the pid
    that opened it (other agents on this machine may profile our containers too)."""

    def __init__(self, paths):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                            ctypes.c_int, ctypes.c_char_p]
        self.fd = self.libc.fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY)
        if self.fd < 0:
            skip(f"fanotify_init: {os.strerror(ctypes.get_errno())}")
        self.paths = {}
        for p in paths:
            rc = self.libc.fanotify_mark(self.fd, FAN_MARK_ADD, FAN_OPEN | FAN_ACCESS, AT_FDCWD,
                                         p.encode())
            check(rc == 0, f"fanotify_mark({p}): {os.strerror(ctypes.get_errno())}")
            st = os.stat(p)
            self.paths[(st.st_dev, st.st_ino)] = p

    def opened_by(self, pid):
        """The decoys that process pid opened or read."""
        seen = set()
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            off = 0
            while off + 24 <= len(buf):
                ln, _, _, _, mask, fd, who = struct.unpack_from("IBBHQii", buf, off)
                if fd >= 0:
                    st = os.fstat(fd)
                    os.close(fd)
                    if who == pid and mask & (FAN_OPEN | FAN_ACCESS):
                        seen.add(self.paths.get((st.st_dev, st.st_ino), "?"))
                off += ln


def sh(*cmd, cwd=None):
    subprocess.run(cmd, check=True, cwd=cwd)


def build(tmp, name, variant, symbols=None):
    """A static workload, its debug info split off, linked by .gnu_debuglink."""
    d = os.path.join(tmp, name)
    os.mkdir(d)
    src = os.path.join(d, "apct_work.c")
    with open(src, "w") as f:
        f.write(SRC)
    exe = os.path.join(d, "apct_work")
    defs = [f"-D{k}={v}" for k, v in (symbols or {}).items()]
    sh("gcc", "-g", "-O1", "-static", "-fno-omit-frame-pointer", f"-DVARIANT={variant}", *defs,
       "-o", exe, src)
    sh("objcopy", "--only-keep-debug", "apct_work", "apct_work.debug", cwd=d)
    sh("objcopy", "--strip-debug", "--add-gnu-debuglink=apct_work.debug", "apct_work", cwd=d)
    out = subprocess.run(["readelf", "-n", exe], capture_output=True, text=True).stdout
    bid = [ln.split()[-1] for ln in out.splitlines() if "Build ID" in ln]
    check(len(bid) == 1, f"no build-id in {exe}")
    return exe, os.path.join(d, "apct_work.debug"), bid[0]


def place(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy(src, dst)


def start(stage, root):
    """The tree `stage` as the root of a new mount and PID namespace (a tmpfs, pivot_root'ed
    into: the process's paths in maps are then its own, as in a real container)."""
    os.mkdir(root)
    script = (f"mount -t tmpfs tmpfs {root} && cp -a {stage}/. {root}/ && mkdir {root}/.old && "
              f"cd {root} && pivot_root . .old && exec /app/apct_work 12")
    ns = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                           "sh", "-c", script])
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with open(f"/proc/{ns.pid}/task/{ns.pid}/children") as f:
                kids = f.read().split()
            for k in kids:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "apct_work":
                        return ns, int(k)
        except OSError:
            pass
        time.sleep(0.05)
    ns.kill()
    check(False, f"the container in {root} did not start")


def stop(ns):
    try:
        with open(f"/proc/{ns.pid}/task/{ns.pid}/children") as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGKILL)
    except OSError:
        pass
    ns.kill()
    ns.wait()


def main():
    require_bpf()
    for tool in ("unshare", "pivot_root", "gcc", "objcopy", "readelf"):
        if not shutil.which(tool):
            skip(f"{tool} not installed")
    # not under /tmp: the container's /tmp is one of the links to the host
    with tempfile.TemporaryDirectory(prefix="ap_container.", dir="/var/tmp") as tmp:
        exe_a, dbg_a, bid_a = build(tmp, "a", 1)
        exe_b, _, bid_b = build(tmp, "b", 2)
        _, decoy, _ = build(tmp, "decoy", 1, {"apct_leaf": "HOST_DECOY_leaf",
                                              "apct_outer": "HOST_DECOY_outer"})
        host = os.path.join(tmp, "host")  # what the container's links point at
        bid_rel = f".build-id/{bid_a[:2]}/{bid_a[2:]}.debug"
        decoys = [os.path.join(host, "apct_work.debug"), os.path.join(host, "dbg", bid_rel)]
        for p in decoys:
            place(decoy, p)
        os.makedirs(os.path.join(host, "tmp"))
        for n in range(1, 9):
            p = os.path.join(host, "tmp", f"perf-{n}.map")
            with open(p, "w") as f:
                f.write("0 ffffffffffff HOST_DECOY_JIT\n")
            decoys.append(p)

        # A: hostile symlinks to absolute (host) paths
        ra = os.path.join(tmp, "stage_a")
        place(exe_a, os.path.join(ra, "app/apct_work"))
        os.makedirs(os.path.join(ra, "usr/lib"))
        os.symlink(os.path.join(host, "dbg"), os.path.join(ra, "usr/lib/debug"))
        os.symlink(os.path.join(host, "tmp"), os.path.join(ra, "tmp"))
        os.symlink(os.path.join(host, "apct_work.debug"), os.path.join(ra, "app/apct_work.debug"))
        os.symlink(host, os.path.join(ra, "app/.debug"))
        # inside the container, that absolute path holds the real debug file
        place(dbg_a, ra + os.path.join(host, "apct_work.debug"))

        # B: FIFOs where debug files and the perf map are looked for
        rb = os.path.join(tmp, "stage_b")
        place(exe_b, os.path.join(rb, "app/apct_work"))
        fifos = ["app/apct_work.debug", "app/.debug/apct_work.debug", "tmp/perf-1.map",
                 f"usr/lib/debug/.build-id/{bid_b[:2]}/{bid_b[2:]}.debug"]
        for p in fifos:
            os.makedirs(os.path.dirname(os.path.join(rb, p)), exist_ok=True)
            os.mkfifo(os.path.join(rb, p))

        watch = Watch(decoys)
        ns_a, pid_a = start(ra, os.path.join(tmp, "root_a"))
        ns_b, pid_b = start(rb, os.path.join(tmp, "root_b"))
        out = os.path.join(tmp, "out.json")
        try:
            time.sleep(0.5)
            ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "cpu",
                                   "--pid", str(pid_a), "--pid", str(pid_b), "--duration", "4s",
                                   "--sample-rate", "199", "--output", out, "--format", "json",
                                   "--debug-cache", "off"], stderr=subprocess.PIPE, text=True)
            try:
                # a hang on a FIFO shows as a timeout here
                _, err = ag.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                ag.kill()
                ag.wait()
                fail("the agent hung (a FIFO where a debug file or perf map was looked for?)")
            check(ag.returncode == 0, f"agent exited {ag.returncode}: {err}")
        finally:
            stop(ns_a)
            stop(ns_b)
        opened = watch.opened_by(ag.pid)
        with open(out) as f:
            text = f.read()
        d = json.loads(text)

    check(not opened, f"the agent opened host files through container symlinks: {opened}")
    check("HOST_DECOY" not in text, "a host decoy's names reached the profile")
    frames = d["frames"]
    named = {pid_a: 0, pid_b: 0}
    total = {pid_a: 0, pid_b: 0}
    src_lines = 0
    for s in d["samples"]:
        if s["pid"] not in total:
            continue
        st = [frames[i] for i in d["stacks"][s["stack"]]]
        total[s["pid"]] += s["values"][0]
        if any(f["name"] == "apct_leaf" for f in st):
            named[s["pid"]] += s["values"][0]
        if s["pid"] == pid_a and any(f["name"] == "apct_leaf" and
                                     (f.get("file") or "").endswith("apct_work.c") and
                                     f.get("line", 0) > 0 for f in st):
            src_lines += s["values"][0]
    print(f"A (symlinks): {named[pid_a]}/{total[pid_a]} samples in apct_leaf, {src_lines} with "
          f"its source line; B (FIFOs): {named[pid_b]}/{total[pid_b]} in apct_leaf; "
          f"stats: debug_files_found={d['stats'].get('debug_files_found')} "
          f"elf_files_unreadable={d['stats'].get('elf_files_unreadable')}")
    for pid in (pid_a, pid_b):
        check(total[pid] >= 20, f"too few samples of pid {pid}: {total[pid]}")
        check(named[pid] >= 0.8 * total[pid], f"pid {pid}: only {named[pid]}/{total[pid]} "
              "samples named apct_leaf")
    check(src_lines >= 0.8 * named[pid_a], f"only {src_lines}/{named[pid_a]} samples of A have "
          "the source line from the debug file inside the container")
    print("PASS")


if __name__ == "__main__":
    main()
