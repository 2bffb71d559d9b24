# SPDX-License-Identifier: MIT
"""--mode gpu's other outputs on one program (static cudart, agent there from the start):
folded stacks with a '[gpu] <kernel>' leaf on the launching CPU stack, weighted by launches;
pprof with the launches/count and gpu_time/nanoseconds sample types (decoded with protoc);
the Chrome trace (valid JSON, one complete event per API call on the program's pid/tid); the
text report naming the kernels. The totals are the program's own counts."""
import gzip
import json
import os
import re
import subprocess
import tempfile

from aptest import check, read_folded, require_bpf
from gpu_lib import (ALLOC_APIS, COPY_APIS, FREE_APIS, SYNC_APIS, Checks, base_api, demangle,
                     record, require_no_gpu, toolkit)

PROTO_DIR = os.environ["AP_PPROF_PROTO_DIR"]
require_bpf()
toolkit()
require_no_gpu()
ITER = 4
CHAIN = {"_Z7add_onePii": None, "_ZN11aperture_ns5scaleIfEEvPT_S2_i": "run_scale"}

with tempfile.TemporaryDirectory() as tmp:
    # folded
    out = os.path.join(tmp, "gpu.folded")
    pid, res, _, _ = record("ap_gpu_static", ITER, out)
    names = demangle(res["kernels"])
    launches = {names[m]: sum(s["launches"] for s in v) for m, v in res["kernels"].items()}
    c = Checks("folded")
    lines = read_folded(out)
    got = {}
    for frames, n in lines:
        if frames[-1].startswith("[gpu] "):
            got[frames[-1][6:]] = got.get(frames[-1][6:], 0) + n
    c.eq(got, launches, "launches per '[gpu] kernel' leaf")
    scale = f"[gpu] {names['_ZN11aperture_ns5scaleIfEEvPT_S2_i']}"
    c.eq(scale, "[gpu] void aperture_ns::scale<float>(float*, float*, int)", "template name")
    via = sum(n for f, n in lines if f[-1] == scale and "main" in f and "run_scale" in f and
              f.index("main") < f.index("run_scale"))
    c.eq(via, ITER, "scale's launches on stacks main -> run_scale -> [gpu] leaf")
    c.done()

    # pprof
    out = os.path.join(tmp, "gpu.pb.gz")
    pid, res, _, _ = record("ap_gpu_static", ITER, out)
    dec = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                          f"--proto_path={PROTO_DIR}", "profile.proto"],
                         input=gzip.open(out).read(), capture_output=True,
                         check=True).stdout.decode()
    c = Checks("pprof")
    strings = re.findall(r'^string_table: "(.*)"$', dec, re.M)
    for s in ("launches", "count", "gpu_time", "nanoseconds", scale, "run_scale", "main"):
        c.true(s in strings, f"pprof string table lacks {s!r}")
    samples = re.findall(r"^sample \{(.*?)^\}", dec, re.M | re.S)
    vals = [[int(v) for v in re.findall(r"^  value: (\d+)$", s, re.M)] for s in samples]
    c.eq(sum(v[0] for v in vals), sum(launches.values()), "sum of launches over samples")
    c.eq(sum(v[1] for v in vals if len(v) > 1), 0, "gpu_time without activity records")
    c.done()

    # Chrome trace
    out = os.path.join(tmp, "gpu.trace")
    pid, res, _, _ = record("ap_gpu_static", ITER, out, "--format", "trace")
    c = Checks("Chrome trace")
    with open(out) as f:
        doc = json.load(f)
    ev = doc.get("traceEvents") if isinstance(doc, dict) else doc
    c.true(isinstance(ev, list) and ev, "traceEvents is a non-empty list")
    xs = [e for e in ev or [] if e.get("ph") == "X"]
    c.true(all(isinstance(e.get("ts"), (int, float)) and isinstance(e.get("dur"), (int, float))
               and e["dur"] >= 0 and isinstance(e.get("name"), str) for e in xs),
           "every X event has a name, ts and dur >= 0")
    per = {}
    for e in xs:
        if e.get("pid") == pid:
            per[base_api(e["name"])] = per.get(base_api(e["name"]), 0) + 1
    for api in ALLOC_APIS + FREE_APIS + COPY_APIS + SYNC_APIS:
        c.eq(per.get(api, 0), res["api"][api]["calls"], f"X events named {api}")
    c.true(all(e.get("tid") == pid for e in xs if e.get("pid") == pid),
           "the program's calls are on its one thread")
    c.done()

    # text
    pid, res, text, _ = record("ap_gpu_static", ITER, None, "--format", "text")
    c = Checks("text")
    for name in list(launches) + ["cudaMalloc", "cudaMemcpy", "cudaStreamSynchronize",
                                  "cudaErrorInsufficientDriver"]:
        c.true(name in text, f"the text report lacks {name!r}")
    c.done(text[-3000:])
