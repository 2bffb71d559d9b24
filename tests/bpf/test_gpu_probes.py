# SPDX-License-Identifier: MIT
"""--mode gpu attaches its uprobes to real CUDA programs and counts what they do.

Builds tests/bpf/gpu_smoke.cu with nvcc three ways (static cudart, nvcc's default; shared
cudart; a stripped static copy) and tests/bpf/gpu_drv.c against the toolkit's stub driver.
Without a GPU every CUDA call fails (35, or 34 with the stub driver) but is made, and the
probes see it. Checks exact launch counts per kernel with their demangled names and shapes
(one launch per <<<>>>: CUDA 13's __cudaLaunchKernel tail-jumps into cudaLaunchKernel),
failed allocations as errors and never as live memory, copies, syncs, launch stacks through
the calling function, the stripped binary reported as not probeable, the driver's
cuLaunchKernel arguments, and that --gpu-probes launch leaves memory calls alone."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from aptest import BIN_DIR, check, fail, require_bpf, skip, start_recording

HERE = os.path.dirname(os.path.abspath(__file__))
NVCC = os.environ.get("NVCC", "/usr/local/cuda/bin/nvcc")
CUDA = os.path.dirname(os.path.dirname(os.path.realpath(NVCC))) if os.path.exists(NVCC) else ""
ITERS_STATIC, ITERS_SHARED, ITERS_DRV = 3, 2, 4
ADD_ONE = "add_one(int*, int)"
SCALE = "void smoke_ns::scale<float>(float*, float, int)"


def build(tmp):
    src = os.path.join(HERE, "gpu_smoke.cu")
    out = {}
    for name, extra in (("smoke_static", []), ("smoke_shared", ["-cudart", "shared"])):
        out[name] = os.path.join(tmp, name)
        res = subprocess.run([NVCC, "-O2", *extra, "-o", out[name], src], capture_output=True,
                             text=True, timeout=300)
        check(res.returncode == 0, f"nvcc {name} failed: {res.stderr}")
    out["smoke_stripped"] = os.path.join(tmp, "smoke_stripped")
    subprocess.run(["strip", "-o", out["smoke_stripped"], out["smoke_static"]], check=True)
    stub = os.path.join(CUDA, "lib64", "stubs", "libcuda.so")
    if not os.path.exists(stub):
        stub = os.path.join(CUDA, "lib", "stubs", "libcuda.so")
    if os.path.exists(stub):
        libdir = os.path.join(tmp, "drvlib")
        os.mkdir(libdir)
        os.symlink(stub, os.path.join(libdir, "libcuda.so.1"))
        out["drv"] = os.path.join(tmp, "drv")
        res = subprocess.run(["cc", "-O2", "-I", os.path.join(CUDA, "include"), "-o", out["drv"],
                              os.path.join(HERE, "gpu_drv.c"), "-L", os.path.dirname(stub),
                              "-lcuda"], capture_output=True, text=True, timeout=120)
        check(res.returncode == 0, f"building the driver program failed: {res.stderr}")
        out["drvlib"] = libdir
    return out


def run(path, *args, env=None):
    res = subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=60,
                         env=env)
    check(res.returncode == 0 and "done" in res.stdout, f"{path} failed: {res.stdout}{res.stderr}")


def record(bins, out, *flags, workload):
    proc, _ = start_recording("--mode", "gpu", "-o", out, "--format", "json", *flags)
    try:
        workload()
        time.sleep(1.5)  # the rescan after exec, and the last events read
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    check(proc.returncode == 0, f"agent exited {proc.returncode}: {err}")
    with open(out) as f:
        return json.load(f), err


def kernels_of(gpu, pid):
    return {k["name"]: k for k in gpu["kernels"] if k.get("pid") == pid}


def shapes(k):
    return {(tuple(s["grid"]), tuple(s["block"]), s["shmem"]): s["launches"]
            for s in k["shapes"]}


def check_smoke(gpu, pid, iters, label):
    ks = kernels_of(gpu, pid)
    check(set(ks) >= {ADD_ONE, SCALE}, f"{label}: kernels {sorted(ks)} lack {ADD_ONE}/{SCALE}")
    add, scale = ks[ADD_ONE], ks[SCALE]
    # one <<<>>> per iteration, plus the explicit cudaLaunchKernel of add_one
    check(add["launches"] == iters + 1, f"{label}: add_one launched {add['launches']}, "
          f"expected {iters + 1}")
    check(scale["launches"] == iters, f"{label}: scale launched {scale['launches']}")
    check(add["errors"] == iters + 1, f"{label}: add_one errors {add['errors']}")
    check(add.get("mangled") == "_Z7add_onePii", f"{label}: mangled {add.get('mangled')}")
    check(shapes(add) == {((3, 5, 7), (32, 2, 1), 0): iters, ((9, 8, 7), (64, 1, 1), 128): 1},
          f"{label}: add_one shapes {add['shapes']}")
    check(shapes(scale) == {((4, 1, 1), (256, 1, 1), 0): iters},
          f"{label}: scale shapes {scale['shapes']}")
    # the <<<>>> launches come from run_add(), called by main()
    frames = [f for st in add["top_stacks"] for f in st["frames"]]
    check(any("run_add" in f for f in frames) and any(f == "main" for f in frames),
          f"{label}: add_one's stacks lack run_add/main: {add['top_stacks']}")


def check_api(gpu, label):
    api = {a["name"]: a for a in gpu["api"]}
    mal = api.get("cudaMalloc")
    check(mal is not None, f"{label}: no cudaMalloc in the API table: {sorted(api)}")
    return api


def main():
    require_bpf()
    if not os.path.exists(NVCC):
        skip(f"no CUDA toolkit ({NVCC}); set NVCC")
    if not shutil.which("strip"):
        skip("no strip(1)")
    with tempfile.TemporaryDirectory(prefix="ap_gpu_") as tmp:
        bins = build(tmp)
        pids = {}

        def workload():
            for name, iters in (("smoke_static", ITERS_STATIC), ("smoke_shared", ITERS_SHARED),
                                ("smoke_stripped", 1)):
                p = subprocess.Popen([bins[name], str(iters)], stdout=subprocess.PIPE,
                                     text=True)
                pids[name] = p.pid
                out, _ = p.communicate(timeout=60)
                check(p.returncode == 0 and "done" in out, f"{name} failed: {out}")
            if "drv" in bins:
                env = dict(os.environ, LD_LIBRARY_PATH=bins["drvlib"])
                p = subprocess.Popen([bins["drv"], str(ITERS_DRV)], stdout=subprocess.PIPE,
                                     text=True, env=env)
                pids["drv"] = p.pid
                out, _ = p.communicate(timeout=60)
                check(p.returncode == 0 and "done" in out, f"drv failed: {out}")

        flags = ["--gpu-lib", bins["smoke_static"]]
        if "drv" in bins:
            flags += ["--gpu-lib", os.path.join(bins["drvlib"], "libcuda.so.1")]
        doc, err = record(bins, os.path.join(tmp, "all.json"), *flags, workload=workload)
        gpu = doc.get("gpu")
        check(gpu is not None, f"no 'gpu' object in the JSON: {sorted(doc)}")
        check_smoke(gpu, pids["smoke_static"], ITERS_STATIC, "static")
        check_smoke(gpu, pids["smoke_shared"], ITERS_SHARED, "shared")
        api = check_api(gpu, "all groups")
        mal = api["cudaMalloc"]
        # 2 per run (static, shared, stripped is not probed): all failed with 35
        check(mal["calls"] == 4, f"cudaMalloc calls {mal['calls']}")
        check(mal["errors"].get("cudaErrorInsufficientDriver") == 4,
              f"cudaMalloc errors {mal['errors']}")
        mem = gpu["memory"]
        check(mem["failed_allocations"] >= 4 and mem["live_bytes"] == 0 and not mem["leaks"],
              f"failed allocations became memory: {mem}")
        h2d = gpu["copies"]["h2d"]
        check(h2d["calls"] == 2 and h2d["bytes"] == 2 * 256, f"h2d copies {h2d}")
        d2h = gpu["copies"]["d2h"]
        check(d2h["calls"] == 2 and d2h["bytes"] == 2 * 256, f"d2h copies {d2h}")
        syncs = {}
        for s in gpu["sync"]:
            syncs[s["api"]] = syncs.get(s["api"], 0) + s["calls"]
        check(syncs.get("cudaStreamSynchronize") == 2 and
              syncs.get("cudaDeviceSynchronize") == 2, f"syncs {syncs}")
        unp = [u for u in gpu["unprobeable"] if u["pid"] == pids["smoke_stripped"]]
        check(unp and unp[0]["path"] == bins["smoke_stripped"] and "stripped" in unp[0]["reason"],
              f"the stripped binary was not reported: {gpu['unprobeable']}")
        check("cannot be probed" in err and "smoke_stripped" in err,
              f"no warning about the stripped binary on stderr: {err}")
        if "drv" in bins:
            drv = [k for k in gpu["kernels"] if k.get("pid") == pids["drv"]]
            launches = sum(k["launches"] for k in drv)
            check(launches == ITERS_DRV, f"driver launches {launches}: {drv}")
            check(all(shapes(k) == {((3, 5, 7), (32, 2, 1), 256): k["launches"]} for k in drv),
                  f"driver launch shapes {drv}")
        stats = doc.get("stats", {})
        for lost in ("gpu_events_lost", "gpu_inflight_full", "gpu_nest_overflow"):
            check(stats.get(lost, 0) == 0, f"{lost} = {stats.get(lost)}")

        # launch only: memory calls are not probed, launches still are
        def launch_only():
            p = subprocess.run([bins["smoke_static"], "1"], capture_output=True, text=True,
                               timeout=60)
            check(p.returncode == 0, "smoke_static failed")

        doc, _ = record(bins, os.path.join(tmp, "launch.json"), "--gpu-probes", "launch",
                        "--gpu-lib", bins["smoke_static"], workload=launch_only)
        gpu = doc["gpu"]
        names = {a["name"] for a in gpu["api"]}
        launch_names = names
        check("cudaMalloc" not in names and "cudaMemcpy" not in names,
              f"--gpu-probes launch probed memory/copy calls: {sorted(names)}")
        check(sum(k["launches"] for k in gpu["kernels"]) == 3,
              f"--gpu-probes launch: {[(k['name'], k['launches']) for k in gpu['kernels']]}")
        check("cudaGetDeviceCount" in launch_names, f"other calls not timed: {launch_names}")

        # one perf_event uprobe per function, as on a kernel without uprobe_multi
        def fallback():
            p = subprocess.Popen([bins["smoke_static"], str(ITERS_STATIC)],
                                 stdout=subprocess.PIPE, text=True)
            pids["fallback"] = p.pid
            out, _ = p.communicate(timeout=60)
            check(p.returncode == 0 and "done" in out, f"smoke_static failed: {out}")

        os.environ["APERTURE_GPU_NO_MULTI"] = "1"
        try:
            doc, _ = record(bins, os.path.join(tmp, "nomulti.json"), "--gpu-lib",
                            bins["smoke_static"], workload=fallback)
        finally:
            del os.environ["APERTURE_GPU_NO_MULTI"]
        check_smoke(doc["gpu"], pids["fallback"], ITERS_STATIC, "one probe per function")
        check(doc.get("stats", {}).get("gpu_uprobe_multi_links", 0) == 0,
              "APERTURE_GPU_NO_MULTI still made uprobe_multi links")
    print("ok")


if __name__ == "__main__":
    main()
