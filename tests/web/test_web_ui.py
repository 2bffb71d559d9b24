#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The web UI end to end: a real aperture-aggregator on loopback with a temporary SQLite store,
filled by two real agent runs in continuous mode (phase A profiles ap_chain's CPU and
ap_locks' lock contention, phase B ap_spin's CPU)
and one synthetic 200k-distinct-stack pprof pushed through /api/v1/push; then tests/web/ui.mjs
drives Debian's chromium through playwright-core: landing page, label completion, a query
showing the workload in the flamegraph and the top table, timeline points, tooltip, search
highlight, sort and focus, a shared URL reopened in a new browser context, click-zoom,
back/forward, an API error shown in the page, a diff of the two ranges (red/blue), the pprof
and SVG downloads, the large profile and the read-token prompt (a second aggregator on the
same store with --read-token-file). Screenshots go to <build>/web-artifacts/.
"""
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import aptest
from aptest import check, fail, skip

SRC = os.environ.get("AP_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
JS_DIR = os.path.join(SRC, "tests", "js")
CHROMIUM = "/usr/bin/chromium"
BIG_STACKS = 200_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_aggregator(port, store, log, *extra):
    cmd = [os.path.join(aptest.BIN_DIR, "aperture-aggregator"), "--listen", f"127.0.0.1:{port}",
           "--storage", f"sqlite:{store}", *extra]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"{' '.join(cmd)} exited {proc.returncode} (log: {log.name})")
        try:
            if http(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    fail(f"aggregator on port {port} did not answer /healthz within 30 s (log: {log.name})")


def agent_phase(workloads, modes, url, cwd, art, seconds=8):
    """One continuous-mode agent run over some workloads (in cwd, so nothing lands in the
    tree); returns the unix-second range it covered."""
    started = [aptest.start_workload(w, seconds + 6) for w in workloads]
    t0 = int(time.time()) - 1
    cmd = [os.path.join(aptest.BIN_DIR, "aperture-agent"), "-v", "--mode", modes]
    for _, pid in started:
        cmd += ["--pid", str(pid)]
    cmd += ["--server", url, "--push-interval", "2s", "--duration", f"{seconds}s",
            "--spool-dir", os.path.join(cwd, "spool")]
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=seconds + 90)
    finally:
        for proc, _ in started:
            proc.kill()
            proc.wait()
    with open(os.path.join(art, f"agent-{workloads[0]}.log"), "w") as f:
        f.write(res.stdout + res.stderr)
    check(res.returncode == 0, f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-3000:]}")
    return t0, int(time.time()) + 1


# --- a synthetic pprof with BIG_STACKS distinct stacks (protobuf written by hand) ---

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _vi(field, n):
    return _varint(field << 3) + _varint(n)


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _packed(field, nums):
    return _ld(field, b"".join(_varint(x) for x in nums))


def synthetic_pprof(t_ns, dur_ns, rng):
    strings = ["", "samples", "count", "cpu", "nanoseconds", "synthetic", "synth.c"]
    sidx = {s: i for i, s in enumerate(strings)}

    def s(x):
        if x not in sidx:
            sidx[x] = len(strings)
            strings.append(x)
        return sidx[x]

    funcs = {}

    def fid(name):
        if name not in funcs:
            funcs[name] = len(funcs) + 1
        return funcs[name]

    period = 10_101_010
    samples = []
    for i in range(BIG_STACKS):
        # i in mixed radix: every stack is distinct, the tree has ~200k leaves
        d0, d1, d2 = i % 60, (i // 60) % 60, i // 3600
        frames = ["synth_main", f"svc_{d2}", f"handler_{d1}_{d2 % 7}", f"leaf_{d0}_{d1 % 13}"]
        locs = [fid(f) for f in reversed(frames)]  # leaf first
        n = rng.randint(1, 5)
        samples.append(_ld(2, _packed(1, locs) + _packed(2, [n, n * period])))
    out = [_ld(1, _vi(1, s("samples")) + _vi(2, s("count"))),
           _ld(1, _vi(1, s("cpu")) + _vi(2, s("nanoseconds")))]
    out += samples
    out.append(_ld(3, _vi(1, 1) + _vi(2, 0x400000) + _vi(3, 0x4000000) + _vi(5, s("synthetic"))
                   + _vi(7, 1)))
    for name, f in funcs.items():
        out.append(_ld(4, _vi(1, f) + _vi(2, 1) + _vi(3, 0x401000 + 16 * f) + _ld(4, _vi(1, f))))
    for name, f in funcs.items():
        out.append(_ld(5, _vi(1, f) + _vi(2, s(name)) + _vi(3, s(name)) + _vi(4, s("synth.c"))))
    out += [_ld(6, x.encode()) for x in strings]
    out += [_vi(9, t_ns), _vi(10, dur_ns),
            _ld(11, _vi(1, s("cpu")) + _vi(2, s("nanoseconds"))), _vi(12, period)]
    return gzip.compress(b"".join(out), 6)


def push_big(url, t0):
    """Push the synthetic profile as host=synthetic200k at [t0, t0+60 s]; returns its range."""
    body_pb = synthetic_pprof(t0 * 10**9, 60 * 10**9, random.Random(11))
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"; "
            f"filename=\"profile.pb.gz\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += body_pb + f"\r\n--{boundary}--\r\n".encode()
    q = urllib.parse.urlencode([("push_id", uuid.uuid4().hex), ("from", t0 * 10**9),
                                ("until", (t0 + 60) * 10**9), ("label", "mode=cpu"),
                                ("label", "host=synthetic200k")])
    st, ans = http(f"{url}/api/v1/push?{q}", body,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}"}, timeout=300)
    check(st == 200, f"pushing the synthetic profile: {st} {ans[:300]!r}")
    return t0 - 5, t0 + 65, len(body_pb)


def api_names(url, query, frm, until):
    q = urllib.parse.urlencode({"query": query, "from": frm, "until": until})
    st, body = http(f"{url}/api/v1/flamegraph?{q}", timeout=120)
    check(st == 200, f"/api/v1/flamegraph {query}: {st} {body[:300]!r}")
    return set(json.loads(body).get("names", []))


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def run_ui(node, script, env):
    res = subprocess.run([node, script], env=env, capture_output=True, text=True, timeout=900)
    print(res.stdout, end="")
    if res.stderr:
        print(res.stderr, file=sys.stderr, end="")
    return res.returncode == 0


def main():
    if not os.path.exists(CHROMIUM):
        skip(f"{CHROMIUM} not installed (Debian package chromium)")
    node = shutil.which("node")
    if not node:
        skip("node not installed (Debian package nodejs)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "playwright-core")):
        skip("playwright-core is not installed in tests/js/node_modules (scripts/deps.sh runs npm install)")
    aptest.require_bpf()
    for b in ("aperture-aggregator", "aperture-agent"):
        check(os.path.exists(os.path.join(aptest.BIN_DIR, b)), f"{b} not built in {aptest.BIN_DIR}")

    art = os.path.join(os.path.dirname(aptest.BIN_DIR.rstrip("/")) or ".", "web-artifacts")
    os.makedirs(art, exist_ok=True)
    for f in os.listdir(art):
        os.unlink(os.path.join(art, f))
    tmp = tempfile.mkdtemp(prefix="ap-webui-")
    store = os.path.join(tmp, "store.sqlite")
    procs = []
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(os.path.join(art, "aggregator.log"), "w")
        procs.append(start_aggregator(port, store, log))

        a0, a1 = agent_phase(["ap_chain", "ap_locks"], "cpu,lock", url, tmp, art)
        time.sleep(2)
        b0, b1 = agent_phase(["ap_spin"], "cpu", url, tmp, art)
        big0, big1, big_bytes = push_big(url, int(time.time()) - 2 * 3600)

        # the data the UI will be asked about is there (else the failure is not the UI's)
        query = '{mode="cpu",comm="ap_chain"}'
        names = api_names(url, query, a0, a1)
        check({"chain_outer", "chain_middle", "chain_inner"} <= names,
              f"the aggregator holds no ap_chain stacks for {query} in [{a0}, {a1}]: {sorted(names)[:20]}")
        check("spin_other_work" in api_names(url, '{mode="cpu"}', b0, b1),
              "the aggregator holds no ap_spin stacks for phase B")

        env = dict(os.environ, AP_UI_URL=url, AP_UI_ART=art, AP_UI_JS=JS_DIR, AP_UI_QUERY=query,
                   AP_UI_A_FROM=str(a0), AP_UI_A_UNTIL=str(a1),
                   AP_UI_B_FROM=str(b0), AP_UI_B_UNTIL=str(b1),
                   AP_UI_BIG_QUERY='{mode="cpu",host="synthetic200k"}',
                   AP_UI_BIG_FROM=str(big0), AP_UI_BIG_UNTIL=str(big1), AP_UI_CHROMIUM=CHROMIUM)
        script = os.path.join(SRC, "tests", "web", "ui.mjs")
        ok = run_ui(node, script, env)

        # the same store behind an aggregator that wants a read token
        stop(procs)
        token = uuid.uuid4().hex
        tfile = os.path.join(tmp, "read.token")
        with open(tfile, "w") as f:
            f.write(token + "\n")
        os.chmod(tfile, 0o600)
        tport = free_port()
        tlog = open(os.path.join(art, "aggregator-token.log"), "w")
        procs.append(start_aggregator(tport, store, tlog, "--read-token-file", tfile))
        st, _ = http(f"http://127.0.0.1:{tport}/api/v1/labels")
        check(st == 401, f"/api/v1/labels without the read token answered {st}, not 401")
        env.update(AP_UI_PHASE="token", AP_UI_TOKEN_URL=f"http://127.0.0.1:{tport}", AP_UI_TOKEN=token)
        ok = run_ui(node, script, env) and ok
        print(f"synthetic profile: {BIG_STACKS} distinct stacks, {big_bytes} bytes gzipped")
        print(f"screenshots and logs: {art}")
        check(ok, "the browser checks failed (see above)")
        print("PASS")
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
