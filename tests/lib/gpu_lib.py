# SPDX-License-Identifier: MIT
"""Helpers for the GPU mode's end-to-end tests (tests/bpf/test_gpu_*.py).

The CUDA test programs (tests/gpu/) print their pid, wait for a line on stdin when
AP_GPU_WAIT=ctor|main, make known CUDA calls and end with 'RESULT {json}': their own counts,
which the tests compare with what `aperture-agent --mode gpu` reports. Without a GPU every call
fails (35 cudaErrorInsufficientDriver; 34 with the stub driver) but is made.
"""
import atexit
import json
import os
import select
import signal
import subprocess
import time

from aptest import (BIN_DIR, SANITIZER, TEST_BIN_DIR, check, check_sanitizer, fail, read_until,
                    skip)

RUNNING = []

# Error names of docs/gpu.md
ERR_NODRIVER = "cudaErrorInsufficientDriver"  # 35: no libcuda.so.1
ERR_STUB = "cudaErrorStubLibrary"  # 34: the runtime against the stub driver
ERR_DRV_STUB = "CUDA_ERROR_STUB_LIBRARY"  # 34: a driver call into the stub

# frames that may come before main in a complete stack (root first)
START_FRAMES = {"_start", "__libc_start_main", "__libc_start_main_impl",
                "__libc_start_call_main", "__libc_start_main_alias_2"}


@atexit.register
def _kill_leftovers():
    """A failed check exits early: no agent or program may outlive the test."""
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def toolkit():
    """{nvcc, lib, stub} of the toolkit the test build used; skips without one."""
    info = os.path.join(TEST_BIN_DIR, "gpu_toolkit.txt")
    if not os.path.exists(info):
        skip("CUDA toolkit not found (no nvcc at configure time: tests/gpu not built)")
    with open(info) as f:
        kv = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    for prog in ("ap_gpu_static", "ap_gpu_shared", "ap_gpu_drv"):
        check(os.path.exists(os.path.join(TEST_BIN_DIR, prog)),
              f"{prog} is not built though the toolkit was found ({kv})")
    return kv


def require_no_gpu():
    """The exact error codes the tests expect hold only without a driver."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64"):
        if os.path.exists(os.path.join(d, "libcuda.so.1")):
            skip(f"a CUDA driver is installed ({d}/libcuda.so.1): these tests expect every "
                 "call to fail; run scripts/gpu-check.sh on GPU hosts")


def prog_path(name):
    return os.path.join(TEST_BIN_DIR, name)


def stub_env(tmp):
    """Environment that runs driver-API programs against the toolkit's stub libcuda.so: a
    test-made libcuda.so.1 -> stubs/libcuda.so on LD_LIBRARY_PATH."""
    tk = toolkit()
    d = os.path.join(tmp, "stubdrv")
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "libcuda.so.1")
    if not os.path.lexists(link):
        os.symlink(tk["stub"], link)
    return {**os.environ, "LD_LIBRARY_PATH": d}


class Prog:
    """One run of a CUDA test program, started now and waiting (wait="ctor": before cudart
    registers its kernels; "main": after) until go()."""

    def __init__(self, name, iters, *args, wait="ctor", hold=False, env=None):
        self.name = name
        self.path = prog_path(name)
        self.result = None
        e = dict(env or os.environ)
        if wait:
            e["AP_GPU_WAIT"] = wait
        if hold:  # alive after its RESULT line until release()
            e["AP_GPU_HOLD"] = "1"
        self.proc = subprocess.Popen([self.path, str(iters), *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        RUNNING.append(self.proc)
        line = self.proc.stdout.readline()
        check(line.strip().isdigit(), f"{name} did not print its pid: {line!r} "
              f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")
        self.pid = int(line)

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait_result(self, timeout=60):
        """The RESULT line of a program started with hold=True (which then stays alive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith("RESULT "):
                    self.result = json.loads(line[len("RESULT "):])
                    return self.result
                if not line:
                    break
        fail(f"{self.name} printed no RESULT in {timeout} s (exit {self.proc.poll()})")

    def finish(self, timeout=60):
        """Wait for the program (releasing a held one); returns its RESULT (dict)."""
        if self.result is not None and self.proc.poll() is None:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.flush()
        out, err = self.proc.communicate(timeout=timeout)
        check(self.proc.returncode == 0, f"{self.name} exited {self.proc.returncode}: {err}")
        if self.result is not None:
            return self.result
        for line in out.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        fail(f"{self.name} printed no RESULT: {out!r}")


class Agent:
    """aperture-agent --mode gpu -v in the background until stop() (SIGINT)."""

    def __init__(self, *args, env=None, timeout=60):
        if SANITIZER:
            timeout *= 3
        # -d: a guard, so that an agent left behind by a failed test still exits
        self.cmd = [os.path.join(BIN_DIR, "aperture-agent"), "--mode", "gpu", "-v",
                    "-d", "180s", *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        RUNNING.append(self.proc)
        started, self.err = read_until(self.proc, "Ctrl-C to stop", timeout)
        if started:
            return
        self.proc.kill()
        out, err = self.proc.communicate()
        fail(f"{' '.join(self.cmd)} did not start recording (exit {self.proc.returncode}):\n"
             f"{self.err}{err}")

    def stop(self, timeout=60):
        """SIGINT, wait; returns (stdout, stderr) and checks exit status 0."""
        if SANITIZER:
            timeout *= 3
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            fail(f"agent did not stop in {timeout} s after SIGINT:\n{self.err}{err}")
        self.err += err
        res = subprocess.CompletedProcess(self.cmd, self.proc.returncode, out, self.err)
        check_sanitizer(res, self.cmd)
        check(self.proc.returncode == 0,
              f"{' '.join(self.cmd)} exited {self.proc.returncode}:\n{self.err[-4000:]}")
        return out, self.err


def record(prog, iters, out, *agent_args, prog_args=(), wait="ctor", exit_first=False,
           env=None, settle=0.5):
    """Run `prog` under `aperture-agent --mode gpu --pid PID -o out ...` from before its first
    CUDA call (wait="ctor": before registration, "main": after it, as a process that was
    running before the agent). The program stays alive until the agent has stopped, unless
    exit_first (it exits first: test_gpu_exit.py). Returns (pid, program RESULT, agent
    stdout, agent stderr)."""
    p = Prog(prog, iters, *prog_args, wait=wait, hold=not exit_first, env=env)
    a = Agent("--pid", p.pid, *(["-o", out] if out else []), *agent_args)
    p.go()
    if exit_first:
        result = p.finish()
        time.sleep(settle)  # the program's exit reaches the agent's process tracking
    else:
        result = p.wait_result()
        time.sleep(settle)  # the last calls' events reach the agent
    stdout, stderr = a.stop()
    p.finish()
    return p.pid, result, stdout, stderr


def load_json(path):
    with open(path) as f:
        doc = json.load(f)
    check("gpu" in doc, f"{path} has no top-level 'gpu' object: keys {sorted(doc)}")
    return doc


def api_table(gpu):
    return {a["name"]: a for a in gpu.get("api", [])}


def rooted_in_main(frames, *chain):
    """frames (root first): only program-start frames before main, then main, then `chain`
    in order (other frames, e.g. the host stub or cudart, allowed between and after)."""
    if "main" not in frames:
        return False
    i = frames.index("main")
    if any(f not in START_FRAMES for f in frames[:i]):
        return False
    j = 0
    for f in frames[i + 1:]:
        if j < len(chain) and f == chain[j]:
            j += 1
    return j == len(chain)


def kernel_by_name(gpu, name, pid=None):
    ks = [k for k in gpu.get("kernels", []) if k.get("name") == name and
          (pid is None or k.get("pid") == pid)]
    return ks


def fmt_kernels(gpu):
    return "\n".join(f"  {k.get('name')!r} ({k.get('mangled')}) pid {k.get('pid')}: "
                     f"{k.get('launches')} launches, shapes {k.get('shapes')}"
                     for k in gpu.get("kernels", []))


def shapes_of(entries):
    """{(grid, block, shmem): launches} from the program's or the agent's shape lists."""
    out = {}
    for s in entries:
        key = (tuple(s["grid"]), tuple(s["block"]), s["shmem"])
        out[key] = out.get(key, 0) + s["launches"]
    return out


def demangle(names):
    """{mangled: demangled} by binutils' c++filt (an independent demangler)."""
    names = list(names)
    res = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True,
                         text=True, check=True)
    return dict(zip(names, res.stdout.splitlines()))


# The runtime APIs the tests count, by probe group, as the programs name them; a
# per-thread-default-stream build calls the _ptsz/_ptds variant of some (same counts).
ALLOC_APIS = ("cudaMalloc", "cudaMallocManaged", "cudaMallocHost", "cudaHostAlloc",
              "cudaMallocAsync")
FREE_APIS = ("cudaFree", "cudaFreeHost", "cudaFreeAsync")
COPY_APIS = ("cudaMemcpy", "cudaMemcpyAsync")
SYNC_APIS = ("cudaStreamSynchronize", "cudaEventSynchronize", "cudaDeviceSynchronize")
MEM_KIND = {"cudaMalloc": "device", "cudaMallocManaged": "managed",
            "cudaMallocHost": "host_pinned", "cudaHostAlloc": "host_pinned",
            "cudaMallocAsync": "async"}


def base_api(name):
    for suffix in ("_ptsz", "_ptds", "_v2"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def api_sums(gpu):
    """{base API name: {"calls": n, "errors": {name: n}}}, _ptsz/_ptds/_v2 variants summed."""
    out = {}
    for a in gpu.get("api", []):
        e = out.setdefault(base_api(a["name"]), {"calls": 0, "errors": {}})
        e["calls"] += a["calls"]
        for k, v in (a.get("errors") or {}).items():
            e["errors"][k] = e["errors"].get(k, 0) + v
    return out


class Checks:
    """Collects failed expectations, so one run reports all of them; done() fails if any."""

    def __init__(self, what):
        self.what = what
        self.bad = []
        self.n = 0

    def eq(self, got, want, what):
        self.n += 1
        if got != want:
            self.bad.append(f"{what}: got {got!r}, expected {want!r}")

    def true(self, cond, what):
        self.n += 1
        if not cond:
            self.bad.append(what)

    def done(self, context=""):
        if self.bad:
            fail(f"{self.what}: {len(self.bad)} of {self.n} checks failed:\n  " +
                 "\n  ".join(self.bad) + (f"\n{context}" if context else ""))
        print(f"ok: {self.what}: {self.n} checks")


def check_kernels(c, gpu, res, pid, err_launch=True, stacks=True):
    """Launches per kernel (demangled), shapes, errors and launch stacks against the
    program's RESULT."""
    names = demangle(res["kernels"])
    for mangled, shapes in res["kernels"].items():
        want = sum(s["launches"] for s in shapes)
        ks = kernel_by_name(gpu, names[mangled], pid)
        c.eq(len(ks), 1, f"kernel entries named {names[mangled]!r} for pid {pid}")
        if len(ks) != 1:
            continue
        k = ks[0]
        c.eq(k.get("launches"), want, f"{names[mangled]}: launches")
        c.eq(shapes_of(k.get("shapes", [])), shapes_of(shapes), f"{names[mangled]}: shapes")
        if err_launch:
            c.eq(k.get("errors"), want, f"{names[mangled]}: launches that failed")
        if k.get("mangled"):
            c.eq(demangle([k["mangled"]])[k["mangled"]], names[mangled],
                 f"{names[mangled]}: the 'mangled' field demangles to the name")
        if stacks:
            tops = k.get("top_stacks", [])
            for caller, n in stack_expectations(mangled, shapes).items():
                got = sum(t["launches"] for t in tops if rooted_in_main(t["frames"], caller))
                c.eq(got, n, f"{names[mangled]}: launches from main -> {caller}")
    launched = {names[m] for m in res["kernels"]}
    extra = [k["name"] for k in gpu.get("kernels", []) if k.get("pid") == pid and
             k.get("launches") and k["name"] not in launched]
    c.eq(extra, [], "kernels with launches the program did not make")


def stack_expectations(mangled, shapes):
    """{calling function: launches}: ap_gpu_prog launches add_one from run_add_one (3,5,7
    grid) and run_explicit (9,8,7), scale from run_scale, spin from run_spin; ap_gpu_drv
    its kernel from run_launch."""
    out = {}
    for s in shapes:
        if mangled == "_Z7add_onePii":
            caller = {(3, 5, 7): "run_add_one", (9, 8, 7): "run_explicit"}.get(
                tuple(s["grid"]), "run_bench")
        else:
            caller = {"_ZN11aperture_ns5scaleIfEEvPT_S2_i": "run_scale",
                      "_ZN11aperture_ns4spinEy": "run_spin"}.get(mangled, "run_launch")
        out[caller] = out.get(caller, 0) + s["launches"]
    return out


def check_api(c, gpu, res, apis, error):
    """calls and errors by name of `apis` as the program counted them (all failing with
    `error`)."""
    got = api_sums(gpu)
    for name in apis:
        want = res["api"].get(name, {}).get("calls", 0)
        g = got.get(name, {"calls": 0, "errors": {}})
        c.eq(g["calls"], want, f"api {name}: calls")
        c.eq(g["errors"], {error: want} if want else {}, f"api {name}: errors")


def check_memory(c, gpu, res, alloc_apis=ALLOC_APIS, free_apis=FREE_APIS, kinds=MEM_KIND):
    """Every allocation failed: counted as allocations and failed ones, never live or leaked."""
    calls = lambda names: sum(res["api"].get(n, {}).get("calls", 0) for n in names)
    m = gpu.get("memory", {})
    c.eq(m.get("allocations"), calls(alloc_apis), "memory.allocations")
    c.eq(m.get("failed_allocations"), calls(alloc_apis), "memory.failed_allocations")
    c.eq(m.get("frees"), calls(free_apis), "memory.frees")
    c.eq(m.get("failed_frees"), calls(free_apis), "memory.failed_frees (every free failed)")
    c.eq(m.get("unknown_frees"), 0, "memory.unknown_frees")
    for key in ("live_bytes", "peak_bytes", "freed_bytes", "allocated_bytes"):
        c.eq(m.get(key), 0, f"memory.{key} (every allocation failed)")
    c.eq(m.get("leaks"), [], "memory.leaks (failed allocations are never leaks)")
    c.eq((m.get("leaks_total"), m.get("leaked_bytes"), m.get("live_at_end")), (0, 0, []),
         "memory (leaks_total, leaked_bytes, live_at_end)")
    by_kind = {}
    for n in alloc_apis:
        k = kinds[n]
        by_kind[k] = by_kind.get(k, 0) + res["api"].get(n, {}).get("calls", 0)
    got = {k: (v.get("allocations"), v.get("failed")) for k, v in
           (m.get("by_kind") or {}).items() if v.get("allocations")}
    c.eq(got, {k: (v, v) for k, v in by_kind.items() if v},
         "memory.by_kind (allocations, failed)")
    c.eq(sum(v.get("bytes", 0) for v in (m.get("by_kind") or {}).values()), 0,
         "memory.by_kind bytes (nothing was allocated)")


def check_copies(c, gpu, res):
    cp = gpu.get("copies", {})
    for d in ("h2d", "d2h", "d2d", "h2h", "default"):
        want = res["copies"].get(d, {"calls": 0, "bytes": 0})
        got = cp.get(d, {})
        # every copy failed: requested bytes counted, none copied
        c.eq((got.get("calls", 0), got.get("errors", 0), got.get("requested_bytes", 0),
              got.get("bytes", 0)), (want["calls"], want["calls"], want["bytes"], 0),
             f"copies.{d} (calls, errors, requested_bytes, bytes)")


def check_sync(c, gpu, res, apis=SYNC_APIS, caller="run_sync"):
    """Sync calls per API, and those from `caller` attributed to stacks through it."""
    per = {}
    via = {}
    for s in gpu.get("sync", []):
        n = base_api(s["api"])
        per[n] = per.get(n, 0) + s["calls"]
        if rooted_in_main(s.get("frames", []), caller):
            via[n] = via.get(n, 0) + s["calls"]
    for n in apis:
        c.eq(per.get(n, 0), res["api"].get(n, {}).get("calls", 0), f"sync {n}: calls")
        c.eq(via.get(n, 0), res["iterations"], f"sync {n}: calls from main -> {caller}")


def check_clean(c, gpu, pid):
    c.eq([u for u in gpu.get("unprobeable", []) if u.get("pid") == pid], [],
         "unprobeable entries for a probeable program")
    st = gpu.get("stats", {})
    for k in ("ringbuf_drops", "timeline_dropped"):
        c.eq(st.get(k, 0), 0, f"stats.{k}")


def check_runtime_run(what, doc, res, pid, error=ERR_NODRIVER):
    """All of the above for one ap_gpu_prog run recorded with every probe group."""
    gpu = doc["gpu"]
    c = Checks(what)
    c.eq(doc.get("meta", {}).get("mode"), "gpu", "meta.mode")
    check_kernels(c, gpu, res, pid)
    check_api(c, gpu, res, ALLOC_APIS + FREE_APIS + COPY_APIS + SYNC_APIS, error)
    check_memory(c, gpu, res)
    check_copies(c, gpu, res)
    check_sync(c, gpu, res)
    check_clean(c, gpu, pid)
    reg = api_sums(gpu).get("__cudaRegisterFunction")
    if reg is not None:  # the registration calls, when the API table lists them
        c.eq(reg["calls"], res["registered_kernels"], "__cudaRegisterFunction calls")
    c.done(fmt_kernels(gpu))
    return gpu
