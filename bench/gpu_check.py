#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The GPU check (not a test): everything about --mode gpu that needs a real GPU, in one go
(about 2-5 minutes), with a PASS/FAIL/SKIP line per check and a summary.

Run it through scripts/gpu-check.sh (which also bundles a prebuilt agent for hosts that lack
the build dependencies). Steps:
  1. a GPU is there (nvidia-smi, /dev/nvidia*): else FAIL at once, never a hang;
  2. builds the CUDA test programs (tests/gpu, cmake + nvcc, -arch=native), runs them alone:
     every CUDA call succeeds, the spin kernel's events time what it was asked to;
  3. with the agent (--agent, or BUILD/bin/aperture-agent): exact launches per kernel with
     shapes, calls per API without errors, allocations/frees/copies/syncs, and the one
     deliberate leak found with its real pointer, size and allocation stack (static and
     shared cudart, the driver API);
  4. with the injection library (--inject, CUDA_INJECTION64_PATH): GPU time per kernel
     against the kernels' own cudaEvent timing, activity records joined to launches;
  5. overhead: a launch-heavy loop (ap_gpu_prog --bench N) without anything, with the
     injection library, with the agent, with both.
Artifacts (summary, log, the agent's outputs) go to $OUT if set (else the work directory).

Usage: bench/gpu_check.py [--agent PATH] [--inject PATH] [--work DIR] [--arch ARCH]
"""
import argparse
import glob
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LEAK_BYTES = {"ap_gpu_static": 3 * 1024 * 1024 + 4096, "ap_gpu_shared": 3 * 1024 * 1024 + 4096,
              "ap_gpu_drv": 5 * 1024 * 1024}
RESULTS = []  # (status, name, detail)
LOG = []


def log(msg):
    print(msg, flush=True)
    LOG.append(msg)


def result(status, name, detail=""):
    RESULTS.append((status, name, detail))
    log(f"{status}: {name}" + (f" -- {detail}" if detail else ""))


def run(cmd, timeout=120, env=None, cwd=None):
    log("$ " + " ".join(map(str, cmd)))
    try:
        r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout,
                           env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", (e.stderr or "") +
                                           f"\n(timed out after {timeout} s)")
    except OSError as e:
        return subprocess.CompletedProcess(cmd, 127, "", str(e))
    return r


def prog_result(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return None


# ---------------------------------------------------------------- preflight and build
def preflight():
    if not shutil.which("nvidia-smi"):
        result("FAIL", "a GPU is present", "no nvidia-smi (no NVIDIA driver); /dev/nvidia*: "
               f"{glob.glob('/dev/nvidia*') or 'none'}")
        return False
    r = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"],
            timeout=30)
    if r.returncode != 0:
        result("FAIL", "a GPU is present", f"nvidia-smi: exit {r.returncode} {r.stderr.strip()}")
        return False
    result("PASS", "a GPU is present", " / ".join(r.stdout.strip().splitlines()[1:]))
    return True


def build_programs(work, arch):
    b = os.path.join(work, "gpu-build")
    r = run(["cmake", "-S", os.path.join(ROOT, "tests", "gpu"), "-B", b, f"-DAP_GPU_ARCH={arch}"],
            timeout=120)
    if r.returncode == 0:
        r = run(["cmake", "--build", b, "-j", str(os.cpu_count() or 4)], timeout=300)
    bindir = os.path.join(b, "bin")
    if r.returncode != 0 or not os.path.exists(os.path.join(bindir, "ap_gpu_static")):
        result("FAIL", "build the CUDA test programs", (r.stdout + r.stderr)[-1500:])
        return None
    result("PASS", "build the CUDA test programs", bindir)
    return bindir


def programs_alone(bindir):
    ok = True
    for prog, args in (("ap_gpu_static", ["10", "--spin-us", "2000"]),
                       ("ap_gpu_shared", ["3"]), ("ap_gpu_drv", ["3"])):
        r = run([os.path.join(bindir, prog), *args], timeout=120)
        res = prog_result(r.stdout)
        if r.returncode != 0 or not res:
            result("FAIL", f"{prog} runs on the GPU", f"exit {r.returncode}: {r.stderr[-500:]}")
            ok = False
            continue
        errs = {k: v["codes"] for k, v in res["api"].items() if v["errors"]}
        if errs:
            result("FAIL", f"{prog}: every CUDA call succeeds", f"errors: {errs}")
            ok = False
        else:
            result("PASS", f"{prog}: every CUDA call succeeds",
                   f"{sum(v['calls'] for v in res['api'].values())} calls")
        if prog == "ap_gpu_static":
            want = 10 * 2.0
            st = "PASS" if res["spins"] == 10 and abs(res["event_ms"] - want) < 0.25 * want \
                else "FAIL"
            result(st, "the spin kernel runs as long as asked (cudaEvent timing)",
                   f"10 x 2000 us: events say {res['event_ms']:.3f} ms")
    return ok


# ---------------------------------------------------------------- agent runs
class Agent:
    def __init__(self, agent, args, env=None, timeout=90):
        self.cmd = [agent, "--mode", "gpu", "-v", "-d", "300s", *map(str, args)]
        log("$ " + " ".join(self.cmd))
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.err = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if r:
                line = self.proc.stderr.readline()
                self.err += line
                if "Ctrl-C to stop" in line:
                    return
                if not line:
                    break
            elif self.proc.poll() is not None:
                break
        self.proc.kill()
        self.proc.communicate()
        raise RuntimeError(f"agent did not start: {self.err[-1500:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.err += err
        return self.proc.returncode, out


def recorded(agent, prog, args, out, agent_args=(), env=None):
    """Run prog (waiting in a constructor until the agent records) under the agent; returns
    (pid, program RESULT, agent JSON or None, agent stderr)."""
    e = dict(env or os.environ, AP_GPU_WAIT="ctor")
    p = subprocess.Popen([prog, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    pid = int(p.stdout.readline())
    try:
        a = Agent(agent, ["--pid", pid, "-o", out, *agent_args], env=env)
    except RuntimeError as ex:
        p.kill()
        p.communicate()
        return pid, None, None, str(ex)
    p.stdin.write("go\n")
    p.stdin.flush()
    pout, perr = p.communicate(timeout=300)
    time.sleep(0.5)
    rc, _ = a.stop()
    doc = None
    if rc == 0 and os.path.exists(out):
        with open(out) as f:
            doc = json.load(f)
    if rc != 0:
        log(f"agent exited {rc}: {a.err[-2000:]}")
    return pid, prog_result(pout), doc, a.err


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True,
                             text=True, timeout=30).stdout.splitlines()
        return dict(zip(names, out))
    except OSError:
        return {n: n for n in names}


def shapes(entries):
    out = {}
    for s in entries:
        k = (tuple(s["grid"]), tuple(s["block"]), s["shmem"])
        out[k] = out.get(k, 0) + s["launches"]
    return out


def compare_run(name, pid, res, doc, prog):
    """The agent's tables against the program's own counts, every call having succeeded."""
    if not res or not doc or "gpu" not in doc:
        result("FAIL", f"{name}: the agent recorded it", "no program result or agent output")
        return None
    gpu = doc["gpu"]
    bad = []
    names = demangle(list(res["kernels"])) if prog != "ap_gpu_drv" else {}
    for mangled, sh in res["kernels"].items():
        want = sum(s["launches"] for s in sh)
        if prog == "ap_gpu_drv":
            ks = [k for k in gpu.get("kernels", []) if k.get("pid") == pid]
        else:
            ks = [k for k in gpu.get("kernels", []) if k.get("pid") == pid and
                  k.get("name") == names[mangled]]
        if len(ks) != 1:
            bad.append(f"{mangled}: {len(ks)} kernel entries")
            continue
        k = ks[0]
        if (k.get("launches"), k.get("errors")) != (want, 0):
            bad.append(f"{k.get('name')}: launches/errors {k.get('launches')}/{k.get('errors')}"
                       f", expected {want}/0")
        if shapes(k.get("shapes", [])) != shapes(sh):
            bad.append(f"{k.get('name')}: shapes {k.get('shapes')} != {sh}")
        if prog == "ap_gpu_drv" and k.get("name") != "drv_add_one":
            log(f"note: the driver kernel is named {k.get('name')!r}")
    api = {}
    for a in gpu.get("api", []):
        n = a["name"]
        for suf in ("_ptsz", "_ptds", "_v2"):
            n = n[:-len(suf)] if n.endswith(suf) else n
        e = api.setdefault(n, [0, 0])
        e[0] += a["calls"]
        e[1] += sum((a.get("errors") or {}).values())
    allocs = frees = 0
    for n, r in res["api"].items():
        base = n[:-3] if n.endswith("_v2") else n
        if base in ("cudaMalloc", "cudaMallocManaged", "cudaMallocHost", "cudaHostAlloc",
                    "cudaMallocAsync", "cuMemAlloc"):
            allocs += r["calls"]
        if base in ("cudaFree", "cudaFreeHost", "cudaFreeAsync", "cuMemFree"):
            frees += r["calls"]
        if base in ("cudaMalloc", "cudaFree", "cudaMemcpy", "cudaMemcpyAsync",
                    "cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
                    "cuMemAlloc", "cuMemFree", "cuMemcpyHtoD", "cuMemcpyDtoH", "cuLaunchKernel",
                    "cuCtxSynchronize") and api.get(base, [0, 0]) != [r["calls"], 0]:
            bad.append(f"api {base}: (calls, errors) {api.get(base)} != [{r['calls']}, 0]")
    m = gpu.get("memory", {})
    got = (m.get("allocations"), m.get("failed_allocations"), m.get("frees"))
    if got != (allocs, 0, frees):
        bad.append(f"memory (allocations, failed, frees) {got} != {(allocs, 0, frees)}")
    leaks = [lk for lk in m.get("leaks", []) if lk.get("pid") == pid]
    want_leak = (res["leak"]["ptr"], LEAK_BYTES[prog])
    if [(lk.get("ptr"), lk.get("bytes")) for lk in leaks] != [want_leak]:
        bad.append(f"leaks {[(lk.get('ptr'), lk.get('bytes')) for lk in leaks]} != "
                   f"[{want_leak}]")
    elif "run_leak" not in leaks[0].get("frames", []):
        bad.append(f"the leak's stack lacks run_leak: {leaks[0].get('frames')}")
    for d, w in res.get("copies", {}).items():
        g = gpu.get("copies", {}).get(d, {})
        if (g.get("calls"), g.get("bytes")) != (w["calls"], w["bytes"]):
            bad.append(f"copies.{d} {g} != {w}")
    if bad:
        result("FAIL", f"{name}: the agent's counts equal the program's", "; ".join(bad))
    else:
        result("PASS", f"{name}: the agent's counts equal the program's",
                f"kernels, api, memory, the leak at {want_leak[0]} ({want_leak[1]} bytes), "
                "copies")
    return gpu


def agent_checks(agent, bindir, work, env):
    for prog, args in (("ap_gpu_static", [5, "--spin-us", "1000"]), ("ap_gpu_shared", [5]),
                       ("ap_gpu_drv", [5])):
        out = os.path.join(work, f"{prog}.json")
        pid, res, doc, err = recorded(agent, os.path.join(bindir, prog), args, out, env=env)
        compare_run(f"{prog} under the agent", pid, res, doc, prog)


def cupti_checks(agent, bindir, work, inject, env):
    e = dict(env, CUDA_INJECTION64_PATH=inject)
    prog = os.path.join(bindir, "ap_gpu_static")
    # the injection library alone: the program still works
    r = run([prog, "5", "--spin-us", "1000"], env=e, timeout=120)
    res = prog_result(r.stdout)
    errs = {k: v["codes"] for k, v in (res or {}).get("api", {}).items() if v["errors"]}
    result("PASS" if r.returncode == 0 and res and not errs else "FAIL",
           "the program runs with the injection library loaded",
           f"exit {r.returncode} errors {errs} {r.stderr[-300:]}")
    if not agent:
        return
    out = os.path.join(work, "cupti.json")
    n, us = 20, 2000
    pid, res, doc, err = recorded(agent, prog, [n, "--spin-us", us], out, env=e)
    gpu = compare_run("ap_gpu_static with CUPTI under the agent", pid, res, doc, "ap_gpu_static")
    if not gpu:
        return
    st = gpu.get("stats", {})
    spin = [k for k in gpu.get("kernels", []) if k.get("pid") == pid and
            k.get("name", "").startswith("aperture_ns::spin")]
    t = spin[0].get("gpu_time_ns", {}) if spin else {}
    event_ns = res["event_ms"] * 1e6
    ok = t.get("records") == n and event_ns > 0 and 0.85 <= t.get("total", 0) / event_ns <= 1.05
    result("PASS" if ok else "FAIL", "GPU time of the spin kernel against its cudaEvent timing",
           f"{t.get('records')} records (expected {n}), CUPTI {t.get('total', 0) / 1e6:.3f} ms, "
           f"events {res['event_ms']:.3f} ms, asked {n * us / 1000:.1f} ms")
    others = [k for k in gpu.get("kernels", []) if k.get("pid") == pid and k.get("launches")]
    missing = [k["name"] for k in others if k.get("gpu_time_ns", {}).get("records") !=
               k["launches"]]
    result("PASS" if not missing and st.get("correlations_unmatched", 1) == 0 and
           st.get("activity_records", 0) > 0 else "FAIL",
           "every launch joined to its kernel record (correlation ids)",
           f"kernels lacking records: {missing}; stats {st}")
    if doc.get("value_types"):
        names = [v["type"] for v in doc["value_types"]]
        gi = names.index("gpu_time") if "gpu_time" in names else None
        total = sum(s["values"][gi] for s in doc.get("samples", [])) if gi is not None else 0
        result("PASS" if gi is not None and total > 0 else "FAIL",
               "profile weighted by GPU time", f"gpu_time total {total} ns")


def overhead(agent, bindir, work, inject, env, n=20000):
    prog = os.path.join(bindir, "ap_gpu_static")
    rows = []
    configs = [("plain", False, False)]
    if inject:
        configs.append(("injection", True, False))
    if agent:
        configs.append(("agent", False, True))
        if inject:
            configs.append(("agent+injection", True, True))
    for rep in range(3):
        for name, inj, ag in configs:
            e = dict(env, CUDA_INJECTION64_PATH=inject) if inj else dict(env)
            if ag:
                _, res, _, _ = recorded(agent, prog, [0, "--bench", n],
                                        os.path.join(work, "overhead.json"), env=e)
            else:
                r = run([prog, "0", "--bench", n], env=e, timeout=120)
                res = prog_result(r.stdout)
            if res and res.get("bench_launches"):
                rows.append((name, res["bench_ns"] / res["bench_launches"]))
    if not rows:
        result("FAIL", "launch overhead measured", "no run gave a figure")
        return
    med = {}
    for name, _, _ in configs:
        v = sorted(x for nm, x in rows if nm == name)
        if v:
            med[name] = v[len(v) // 2]
    base = med.get("plain")
    detail = ", ".join(f"{k} {v:.0f} ns/launch" + (f" ({v / base:.2f}x)" if base else "")
                       for k, v in med.items())
    result("PASS", f"launch overhead ({n} launches, median of 3)", detail)


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agent", help="aperture-agent to use (default: build/bin/aperture-agent)")
    ap.add_argument("--inject", help="libaperture_cupti.so (default: searched under build/)")
    ap.add_argument("--work", help="work directory (default: a temporary one)")
    ap.add_argument("--arch", default="native", help="nvcc -arch for the programs")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="ap-gpu-check-")
    os.makedirs(work, exist_ok=True)
    out_dir = os.environ.get("OUT") or work
    t0 = time.monotonic()
    env = dict(os.environ)
    try:
        if preflight():
            bindir = build_programs(work, a.arch)
            agent = a.agent or os.path.join(ROOT, "build", "bin", "aperture-agent")
            if bindir:
                programs_alone(bindir)
                if not os.access(agent, os.X_OK):
                    result("SKIP", "agent checks", f"no agent at {agent} (--agent PATH)")
                    agent = None
                elif not os.path.exists("/sys/kernel/btf/vmlinux") or os.geteuid() != 0:
                    result("SKIP", "agent checks", "needs root and /sys/kernel/btf/vmlinux")
                    agent = None
                else:
                    r = run([agent, "--help"], timeout=30)
                    if r.returncode != 0:
                        result("FAIL", "the agent runs here",
                               f"exit {r.returncode}: {r.stderr[-500:]} (missing libraries? "
                               "scripts/gpu-check.sh --bundle)")
                        agent = None
                if agent:
                    agent_checks(agent, bindir, work, env)
                inject = a.inject or next(iter(glob.glob(os.path.join(
                    ROOT, "build", "**", "libaperture_cupti.so"), recursive=True)), None)
                if inject and os.path.exists(inject):
                    cupti_checks(agent, bindir, work, os.path.abspath(inject), env)
                else:
                    result("SKIP", "CUPTI checks", "no libaperture_cupti.so (--inject PATH)")
                    inject = None
                overhead(agent, bindir, work, inject, env)
    except Exception as ex:  # a bug here must still give a summary
        result("FAIL", "the check itself", f"{type(ex).__name__}: {ex}")
    finally:
        n = {s: sum(1 for r in RESULTS if r[0] == s) for s in ("PASS", "FAIL", "SKIP")}
        verdict = "PASS" if RESULTS and not n["FAIL"] else "FAIL"
        lines = [f"{s}: {nm}" + (f" -- {d}" if d else "") for s, nm, d in RESULTS]
        summary = ("GPU check summary\n" + "\n".join(lines) +
                   f"\n{verdict}: {n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped "
                   f"in {time.monotonic() - t0:.0f} s\n")
        print("\n" + summary, flush=True)
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "gpu-check-summary.txt"), "w") as f:
            f.write(summary)
        with open(os.path.join(out_dir, "gpu-check.log"), "w") as f:
            f.write("\n".join(LOG) + "\n")
        with tarfile.open(os.path.join(out_dir, "gpu-check-artifacts.tar.gz"), "w:gz") as t:
            for p in glob.glob(os.path.join(work, "*.json")):
                t.add(p, arcname=os.path.basename(p))
    sys.exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
