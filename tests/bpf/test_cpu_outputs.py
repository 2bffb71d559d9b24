# SPDX-License-Identifier: MIT
"""One real recording written as pprof, SVG, JSON and text: the pprof decodes with Debian's
protoc against the packaged profile.proto with the right totals, and `aperture report` reads
it back and converts it."""
import gzip
import json
import os
import re
import subprocess
import tempfile
import xml.dom.minidom

from aptest import agent, check, cli, has_chain, read_folded, require_bpf, start_workload, wait_all

PROTO_DIR = os.environ["AP_PPROF_PROTO_DIR"]

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    # it outlives the four runs (each one's start-up takes seconds on a loaded machine or
    # under ASan) and is stopped after them
    wl, pid = start_workload("ap_chain", 120)
    pb = os.path.join(tmp, "p.pb.gz")
    agent("-m", "cpu", "-p", pid, "-d", "2s", "-s", "99", "-o", pb)
    svg = os.path.join(tmp, "p.svg")
    agent("-m", "cpu", "-p", pid, "-d", "1s", "-o", svg)
    js = os.path.join(tmp, "p.json")
    agent("-m", "cpu", "-p", pid, "-d", "1s", "-o", js)
    text = agent("-m", "cpu", "-p", pid, "-d", "1s", "--format", "text").stdout
    wl.kill()
    wait_all([wl])

    # pprof: decode with protoc against the packaged profile.proto
    raw = gzip.open(pb).read()
    dec = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                          f"--proto_path={PROTO_DIR}", "profile.proto"],
                         input=raw, capture_output=True, check=True).stdout.decode()
    strings = re.findall(r'^string_table: "(.*)"$', dec, re.M)
    for s in ("samples", "count", "cpu", "nanoseconds", "chain_inner", "chain_outer"):
        check(s in strings, f"pprof string table lacks {s!r}")
    samples = re.findall(r"^sample \{(.*?)^\}", dec, re.M | re.S)
    check(samples, "pprof has no samples")
    counts = [int(re.findall(r"^  value: (\d+)$", s, re.M)[0]) for s in samples]
    nanos = [int(re.findall(r"^  value: (\d+)$", s, re.M)[1]) for s in samples]
    period = int(re.search(r"^period: (\d+)$", dec, re.M).group(1))
    check(period == 1000000000 // 99, f"period {period}")
    check(all(n == c * period for c, n in zip(counts, nanos)), "cpu ns != samples * period")
    check(re.search(r"^duration_nanos: \d+$", dec, re.M), "no duration")
    check(re.search(r"build_id: \d+", dec), "mappings carry no build-id")

    # the CLI reads the same file back: totals agree with protoc's view
    folded = os.path.join(tmp, "back.folded")
    r = cli("report", pb, "-o", folded)
    check(r.returncode == 0, f"report -o failed: {r.stderr}")
    back = read_folded(folded)
    check(sum(c for _, c in back) == sum(counts),
          f"report total {sum(c for _, c in back)} != pprof total {sum(counts)}")
    check(any(has_chain(f, ["chain_outer", "chain_middle", "chain_inner"]) for f, _ in back),
          "chain lost in conversion")
    r = cli("report", pb)
    check(r.returncode == 0 and "chain_inner" in r.stdout, f"report table: {r.stdout}{r.stderr}")

    # svg: well-formed, interactive, with the chain
    doc = xml.dom.minidom.parse(svg)
    body = open(svg).read()
    check("<script" in body and "chain_inner" in body, "svg lacks script or frames")

    # json: valid, typed, with stats
    j = json.load(open(js))
    check(j["value_types"][0]["type"] == "samples", "json value types")
    check("user_stack_errors" in j["stats"], "json lacks drop counters")
    names = {f["name"] for f in j["frames"]}
    check({"chain_inner", "chain_middle", "chain_outer"} <= names, "json frames lack the chain")

    # text: top functions on stdout
    check("chain_inner" in text, f"text report lacks chain_inner:\n{text}")
print("PASS")
