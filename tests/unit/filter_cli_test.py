# SPDX-License-Identifier: MIT
"""`aperture filter check` and `aperture filter run`, without root.

usage: filter_cli_test.py APERTURE TEST_FILTER_DIR SDK_FILTER_DIR EVENTS_JSON
"""
import json
import os
import subprocess
import sys
import tempfile

aperture, test_dir, sdk_dir, events = sys.argv[1:5]
env = dict(os.environ, APERTURE_CACHE_DIR=tempfile.mkdtemp(prefix="aperture-cli-filter-"))


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run(*args, rc=0):
    p = subprocess.run([aperture, "filter", *args], capture_output=True, text=True, env=env,
                       timeout=300)
    if p.returncode != rc:
        fail(f"{args}: exit {p.returncode}, want {rc}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def engines():
    out = ["interp"]
    probe = subprocess.run([aperture, "filter", "check", f"{sdk_dir}/process_filter.wasm",
                            "--engine", "aot"], capture_output=True, text=True, env=env)
    if probe.returncode == 0:
        out.append("aot")
    else:
        print(f"SKIP: aot engine: {probe.stderr.strip()}")
    return out


for engine in engines():
    # check: plain and JSON
    p = run("check", f"{sdk_dir}/process_filter.wasm", "--engine", engine)
    for want in ("valid filter", "ABI version:    1", "ap_filter", "env.agent_pid",
                 "fuel per event         1000000"):
        if want not in p.stdout:
            fail(f"check output lacks {want!r}:\n{p.stdout}")
    info = json.loads(run("check", f"{sdk_dir}/stack_filter.wasm", "--json", "--engine", engine,
                          "--filter-config", "function=main").stdout)
    if not info["valid"] or info["abi_version"] != 1 or info["engine"] != engine:
        fail(f"check --json: {info}")
    if {"name": "env.frame_symbol", "type": "(i32, i32, i32) -> i32"} not in info["imports"]:
        fail(f"check --json imports: {info['imports']}")

    # load failures: exit 2, reason on stderr, still valid JSON with --json
    p = run("check", f"{test_dir}/import_wasi.wasm", "--engine", engine, rc=2)
    if "WASI is not available" not in p.stderr:
        fail(f"import_wasi: {p.stderr}")
    p = run("check", f"{test_dir}/infinite_loop.wasm", "--json", "--filter-config", "a=b",
            "--engine", engine, rc=2)
    doc = json.loads(p.stdout)
    if doc["valid"] or "takes no configuration" not in doc["error"]:
        fail(f"--json error document: {doc}")

    # run: decisions of process_filter on the recorded events
    p = run("run", f"{sdk_dir}/process_filter.wasm", "--events", events, "--engine", engine,
            "--filter-config", "pid=42,comm=redis-server", "--json")
    doc = json.loads(p.stdout)
    got = [d["verdict"] for d in doc["decisions"]]
    if got != ["keep", "drop", "keep", "keep", "drop"]:
        fail(f"process_filter decisions: {got}")
    if doc["stats"]["seen"] != 5 or doc["stats"]["kept"] != 3:
        fail(f"stats: {doc['stats']}")

    # no configuration: everything but the agent (--agent-pid) is kept
    p = run("run", f"{sdk_dir}/process_filter.wasm", "--events", events, "--agent-pid", "99",
            "--engine", engine)
    if p.stdout.count(": keep") != 4 or "#4 syscall pid 99 tid 99 comm aperture-agent: drop" \
            not in p.stdout:
        fail(f"process_filter without configuration:\n{p.stdout}")

    # stack_filter reads the symbols given in the events file
    doc = json.loads(run("run", f"{sdk_dir}/stack_filter.wasm", "--events", events, "--json",
                         "--engine", engine, "--filter-config", "function=main").stdout)
    got = [d["verdict"] for d in doc["decisions"]]
    if got != ["keep", "drop", "keep", "drop", "drop"]:
        fail(f"stack_filter decisions: {got}")

    # sampling with scaling: transforms, weight multiplied
    doc = json.loads(run("run", f"{sdk_dir}/sampling_filter.wasm", "--events", events,
                         "--json", "--engine", engine, "--filter-config", "n=2,scale=1").stdout)
    d = doc["decisions"]
    if [x["verdict"] for x in d] != ["transform", "drop", "transform", "drop", "transform"] \
            or d[2]["event"]["weight"] != 2 or d[2]["event"]["user_stack"] != ["0x500000",
                                                                             "0x500100"]:
        fail(f"sampling_filter: {d}")

    # a trapping filter keeps events by default, drops them with --on-error drop
    for policy, verdict in (("keep", "keep"), ("drop", "drop")):
        doc = json.loads(run("run", f"{test_dir}/infinite_loop.wasm", "--events", events,
                             "--json", "--engine", engine, "--on-error", policy,
                             "--fuel", "20000").stdout)
        traps = [x for x in doc["decisions"] if x["trap"]]
        if not traps or any(x["verdict"] != verdict or x["trap"]["reason"] != "fuel"
                            for x in traps):
            fail(f"infinite_loop --on-error {policy}: {doc['decisions']}")
        if doc["stats"]["trap_reasons"]["fuel"] != len(traps):
            fail(f"fuel counter: {doc['stats']}")

# usage errors exit 2
run("run", f"{sdk_dir}/process_filter.wasm", rc=2)
run("check", rc=2)
run("check", f"{sdk_dir}/process_filter.wasm", "--engine", "jit", rc=2)
bad = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
bad.write('[{"type": "cpu", "pid": 1, "bogus": 2}]')
bad.close()
p = run("run", f"{sdk_dir}/process_filter.wasm", "--events", bad.name, rc=2)
if 'unknown field "bogus"' not in p.stderr:
    fail(f"bad events file: {p.stderr}")
os.unlink(bad.name)
subprocess.run(["rm", "-rf", env["APERTURE_CACHE_DIR"]])
print("PASS")
