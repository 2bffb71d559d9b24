#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`aperture query`, `diff` and `labels` against a real aperture-aggregator on loopback.

Two known profiles are pushed an hour apart (POST /api/v1/push, as the agent does); the CLI
must give back exactly what was pushed in every output format, the diff's deltas computed here
from the two inputs (normalised and absolute), label names and values, APERTURE_SERVER, the
server's message for a query that matches several modes, a read token, TLS with --ca-file, and
a clear message naming the URL of a server that is not there.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom

import aptest

try:
    import aggregator
except ImportError:  # tests/lib/aggregator.py comes with the server
    aptest.skip("tests/lib/aggregator.py is not there (the aggregator is not merged yet)")

if not os.path.exists(aggregator.BIN):
    aptest.skip(f"{aggregator.BIN} is not built")

CLI = os.path.join(aptest.BIN_DIR, "aperture")
NS = 1_000_000_000

BASE = {  # pushed 100 minutes ago
    "bash;main;foo;bar": 10,
    "bash;main;foo": 5,
    "bash;main;baz": 3,
    "py;run;loop": 2,
}
CMP = {  # pushed 30 minutes ago
    "bash;main;foo;bar": 20,
    "bash;main;baz": 10,
    "bash;main;qux": 6,
    "py;run;loop": 4,
}
QUERY = '{mode="cpu",host="h1"}'
BASE_RANGE = ["--from", "-2h", "--until", "-1h"]
CMP_RANGE = ["--to-from", "-1h", "--to-until", "now"]


def folded_text(stacks):
    return "".join(f"{s} {n}\n" for s, n in stacks.items())


def run(*args, server=None, env_server=None, token_env=None, expect=0, timeout=120):
    """Runs aperture; APERTURE_* from the arguments only. Checks the exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APERTURE_")}
    if env_server:
        env["APERTURE_SERVER"] = env_server
    if token_env:
        env["APERTURE_TOKEN_FILE"] = token_env
    cmd = [CLI, *args[:1], *(["--server", server] if server else []), *args[1:]]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    aptest.check_sanitizer(res, cmd)
    if expect is not None and res.returncode != expect:
        aptest.fail(f"{' '.join(cmd)} exited {res.returncode} (expected {expect})\n"
                    f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr}")
    return res


def parse_folded(text):
    out = {}
    for line in text.splitlines():
        if line.strip():
            stack, n = line.rsplit(" ", 1)
            out[stack] = out.get(stack, 0) + int(n)
    return out


def functions(stacks):
    """{name: (self, total)} of frames (not the comm), total once per stack."""
    out = {}
    for stack, n in stacks.items():
        frames = stack.split(";")[1:]
        for f in set(frames):
            s, t = out.get(f, (0, 0))
            out[f] = (s, t + n)
        s, t = out[frames[-1]]
        out[frames[-1]] = (s + n, t)
    return out


def scaled(stacks, factor):
    return {k: v * factor for k, v in stacks.items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_known(agg):
    now = time.time_ns()
    base = aggregator.pprof_from_folded(agg.dir, folded_text(BASE), "base")
    cmp_ = aggregator.pprof_from_folded(agg.dir, folded_text(CMP), "cmp")
    agg.push(base, {"mode": "cpu", "host": "h1"}, from_ns=now - 100 * 60 * NS,
             until_ns=now - 99 * 60 * NS)
    agg.push(cmp_, {"mode": "cpu", "host": "h1"}, from_ns=now - 30 * 60 * NS,
             until_ns=now - 29 * 60 * NS)
    # another mode on the same host: a query that names no mode matches both
    agg.push(cmp_, {"mode": "lock", "host": "h1"}, from_ns=now - 30 * 60 * NS,
             until_ns=now - 29 * 60 * NS)


def check_query_formats(agg, work):
    url = agg.url
    # folded: exactly what was pushed, per time range
    res = run("query", QUERY, *BASE_RANGE, "--format", "folded", server=url)
    aptest.check(parse_folded(res.stdout) == BASE,
                 f"folded base range: {parse_folded(res.stdout)} != {BASE}")
    res = run("query", QUERY, "--from", "-1h", "--format", "folded", server=url)
    aptest.check(parse_folded(res.stdout) == CMP, f"folded cmp range: {res.stdout}")
    res = run("query", QUERY, "--from", "-2h", "--format", "folded", server=url)
    both = {k: BASE.get(k, 0) + CMP.get(k, 0) for k in set(BASE) | set(CMP)}
    aptest.check(parse_folded(res.stdout) == both, f"folded over both: {res.stdout}")

    # text (the default without -o), --top
    res = run("query", QUERY, *BASE_RANGE, server=url)
    aptest.check("Total: 20 samples" in res.stdout, f"text total:\n{res.stdout}")
    rows = [ln.split() for ln in res.stdout.splitlines() if ln.strip().endswith(("bar", "foo"))]
    aptest.check(any(r[1] == "10" and r[-1] == "bar" for r in rows), f"text rows:\n{res.stdout}")
    res = run("query", QUERY, *BASE_RANGE, "--top", "1", server=url)
    aptest.check("Showing top 1 of" in res.stdout, f"--top 1:\n{res.stdout}")

    # svg by extension: well-formed, the functions drawn
    svg = os.path.join(work, "q.svg")
    run("query", QUERY, *BASE_RANGE, "-o", svg, server=url)
    doc = xml.dom.minidom.parse(svg)
    titles = [t.firstChild.data for t in doc.getElementsByTagName("title") if t.firstChild]
    for name in ("bar", "foo", "baz", "loop", "bash"):
        aptest.check(any(t.startswith(name + " (") for t in titles), f"svg lacks {name}")

    # pprof: read back by `aperture report`
    pb = os.path.join(work, "q.pb.gz")
    run("query", QUERY, *BASE_RANGE, "-o", pb, server=url)
    res = run("report", pb, "--format", "folded", "-o", "-")
    aptest.check(parse_folded(res.stdout) == BASE, f"pprof round trip: {res.stdout}")

    # json (the report's format) and a --format that contradicts the extension
    res = run("query", QUERY, *BASE_RANGE, "--format", "json", server=url)
    aptest.check(json.loads(res.stdout).get("format") == "aperture-profile", "json format")
    res = run("query", QUERY, "-o", os.path.join(work, "x.svg"), "--format", "folded",
              server=url, expect=2)
    aptest.check("contradicts" in res.stderr, res.stderr)

    # --value: a type the profile lacks is refused with the ones it has
    res = run("query", QUERY, *BASE_RANGE, "--value", "delay", server=url, expect=2)
    aptest.check("samples" in res.stderr, f"--value message: {res.stderr}")


def check_diff(agg, work):
    url = agg.url
    fb, fc = functions(BASE), functions(CMP)
    for absolute in (False, True):
        factor = 1 if absolute else sum(CMP.values()) // sum(BASE.values())
        args = ["diff", QUERY, *BASE_RANGE, *CMP_RANGE, "--format", "json"]
        if absolute:
            args.append("--absolute")
        out = json.loads(run(*args, server=url).stdout)
        aptest.check(out["cmp_total"] == 40 and out["base_total_raw"] == 20 and
                     out["base_total"] == 20 * factor and out["normalized"] == (not absolute),
                     f"diff totals: {out}")
        got = {f["name"]: f for f in out["functions"]}
        aptest.check(set(got) == set(fb) | set(fc), f"diff functions: {sorted(got)}")
        for name, f in got.items():
            want = (fb.get(name, (0, 0))[0] * factor, fc.get(name, (0, 0))[0],
                    fb.get(name, (0, 0))[1] * factor, fc.get(name, (0, 0))[1])
            have = (f["base_self"], f["cmp_self"], f["base_total"], f["cmp_total"])
            aptest.check(have == want, f"diff of {name} (absolute={absolute}): {have} != {want}")
        deltas = [abs(f["cmp_self"] - f["base_self"]) for f in out["functions"]]
        aptest.check(deltas == sorted(deltas, reverse=True), f"diff order: {deltas}")
        stacks = {";".join(s["frames"]): (s["base"], s["cmp"]) for s in out["stacks"]}
        want = {k: (BASE.get(k, 0) * factor, CMP.get(k, 0)) for k in set(BASE) | set(CMP)}
        aptest.check(stacks == want, f"diff stacks: {stacks} != {want}")

        # folded: "stack base cmp", the same numbers
        args[args.index("json")] = "folded"
        lines = run(*args, server=url).stdout.splitlines()
        got = {ln.rsplit(" ", 2)[0]: tuple(map(int, ln.rsplit(" ", 2)[1:])) for ln in lines}
        aptest.check(got == want, f"diff folded: {got} != {want}")

    # text: the biggest change first (foo: 10 -> 0 normalised)
    res = run("diff", QUERY, *BASE_RANGE, *CMP_RANGE, server=url)
    table = [ln for ln in res.stdout.splitlines() if ln.endswith((" foo", " qux", " baz"))]
    aptest.check([ln.split()[-1] for ln in table] == ["foo", "qux", "baz"],
                 f"diff text order:\n{res.stdout}")
    aptest.check("new" in table[1] and "-100.00%" in table[0], f"diff text:\n{res.stdout}")

    # svg by extension, flamegraph JSON (the web UI's)
    svg = os.path.join(work, "d.svg")
    run("diff", QUERY, *BASE_RANGE, *CMP_RANGE, "-o", svg, server=url)
    xml.dom.minidom.parse(svg)
    fg = json.loads(run("diff", QUERY, *BASE_RANGE, *CMP_RANGE, "--format", "flamegraph",
                        server=url).stdout)
    aptest.check(fg["names"][0] == "total" and fg["levels"][0][1] == 40 and
                 fg["levels"][0][4] == 40 and len(fg["levels"][0]) == 7,
                 f"diff flamegraph root: {fg['levels'][0]}")

    # the aggregator's /api/v1/diff runs the same writer: the same answer
    for fmt in ("json", "folded", "text"):
        mine = run("diff", QUERY, *BASE_RANGE, *CMP_RANGE, "--format", fmt, server=url).stdout
        theirs = agg.query("/api/v1/diff", query=QUERY, **{"from": "now-2h"}, until="now-1h",
                           to_from="now-1h", to_until="now", format=fmt).text()
        aptest.check(mine == theirs, f"diff {fmt}: CLI and /api/v1/diff differ:\n{mine}\n--\n"
                     f"{theirs}")

    # --to-query: two queries over the same range
    out = json.loads(run("diff", QUERY, "--from", "-1h", "--to-query", '{mode="lock"}',
                         "--format", "json", "--absolute", server=url).stdout)
    aptest.check(out["base_total"] == 40 and out["cmp_total"] == 40 and
                 all(f["base_self"] == f["cmp_self"] for f in out["functions"]),
                 f"--to-query diff: {out}")


def check_flamegraph(agg):
    """/api/v1/flamegraph (the format module's flamebearer writer): every box's total is the
    sum of the pushed stacks under its path."""
    fg = agg.query("/api/v1/flamegraph", query=QUERY, **{"from": "now-2h"},
                   until="now-1h").json()
    names, boxes = fg["names"], []
    aptest.check(names[0] == "total" and fg["total"] == 20 and fg["nodes_truncated"] == 0,
                 f"flamegraph header: {fg}")
    for d, row in enumerate(fg["levels"]):
        end = 0
        for k in range(0, len(row), 4):
            x = end + row[k]
            end = x + row[k + 1]
            parent = next((b for b in reversed(boxes) if b[0] == d - 1 and b[1] <= x and
                           x + row[k + 1] <= b[1] + b[2]), None)
            path = (parent[3] + ";" if parent and d > 1 else "") + names[row[k + 3]]
            boxes.append((d, x, row[k + 1], path if d else ""))
            if d:
                want = sum(n for s, n in BASE.items() if s == path or s.startswith(path + ";"))
                aptest.check(row[k + 1] == want, f"flamegraph box {path}: {row[k + 1]} != {want}")
    aptest.check(len(boxes) == 9, f"flamegraph boxes: {boxes}")


def check_labels_and_errors(agg):
    url = agg.url
    names = run("labels", server=url).stdout.split()
    for want in ("host", "mode"):
        aptest.check(want in names, f"labels: {names}")
    aptest.check(sorted(run("labels", "mode", server=url).stdout.split()) == ["cpu", "lock"],
                 "label values of mode")
    aptest.check(run("labels", "host", "--query", '{mode="cpu"}', server=url).stdout.split() ==
                 ["h1"], "label values of host")
    aptest.check(run("labels", "mode", "--query", '{mode="lock"}', server=url).stdout.split() ==
                 ["lock"], "label values narrowed by --query")

    # APERTURE_SERVER stands for --server
    res = run("query", QUERY, *BASE_RANGE, "--format", "folded", env_server=url)
    aptest.check(parse_folded(res.stdout) == BASE, "APERTURE_SERVER")
    run("labels", env_server=url)

    # several modes, none named: the server's 400 with its list, exit 1
    res = run("query", '{host="h1"}', "--from", "-1h", server=url, expect=1)
    aptest.check("400" in res.stderr and "cpu" in res.stderr and "lock" in res.stderr,
                 f"multi-mode message: {res.stderr}")
    res = run("diff", '{host="h1"}', "--from", "-1h", server=url, expect=1)
    aptest.check("cpu" in res.stderr and "lock" in res.stderr, res.stderr)

    # usage errors exit 2
    run("query", server=url, expect=2)
    run("query", QUERY, "--from", "-1x", server=url, expect=2)
    run("diff", QUERY, "--format", "pprof", server=url, expect=2)
    run("labels", "a", "b", server=url, expect=2)
    res = run("query", QUERY, server="ftp://127.0.0.1:1", expect=2)

    # nobody there: the URL named, exit 1 (no hang)
    dead = f"http://127.0.0.1:{free_port()}"
    for args in (["query", QUERY], ["diff", QUERY], ["labels"]):
        res = run(*args, server=dead, expect=1, timeout=60)
        aptest.check(dead in res.stderr and "cannot reach" in res.stderr,
                     f"dead server message: {res.stderr}")
    res = run("labels", env_server=dead, expect=1)
    aptest.check(dead in res.stderr, res.stderr)


def check_token(work):
    with aggregator.Aggregator(read_token="r3ad-t0ken", ingest_token="1ngest") as agg:
        agg.push(aggregator.pprof_from_folded(agg.dir, folded_text(BASE), "b"),
                 {"mode": "cpu", "host": "h1"})
        res = run("query", QUERY, server=agg.url, expect=1)
        aptest.check("401" in res.stderr and "--token-file" in res.stderr, res.stderr)
        tok = aggregator.write_token(os.path.join(work, "read.token"), "r3ad-t0ken")
        res = run("query", QUERY, "--format", "folded", "--token-file", tok, server=agg.url)
        aptest.check(parse_folded(res.stdout) == BASE, f"with the token: {res.stdout}")
        res = run("labels", server=agg.url, token_env=tok)
        aptest.check("mode" in res.stdout.split(), "APERTURE_TOKEN_FILE")
        wrong = aggregator.write_token(os.path.join(work, "ingest.token"), "1ngest")
        res = run("labels", "--token-file", wrong, server=agg.url, expect=1)
        aptest.check("403" in res.stderr, res.stderr)
        res = run("query", QUERY, "--token-file", os.path.join(work, "none"), server=agg.url,
                  expect=2)
        aptest.check("token file" in res.stderr, res.stderr)


def check_tls(work):
    with aggregator.Aggregator(tls=True) as agg:
        agg.push(aggregator.pprof_from_folded(agg.dir, folded_text(CMP), "c"),
                 {"mode": "cpu", "host": "h1"})
        res = run("query", QUERY, "--format", "folded", "--ca-file", agg.cert, server=agg.url)
        aptest.check(parse_folded(res.stdout) == CMP, f"over TLS: {res.stdout}")
        res = run("labels", server=agg.url, expect=1)  # self-signed, no --ca-file
        aptest.check("--ca-file" in res.stderr, f"TLS without the CA: {res.stderr}")


def main():
    with tempfile.TemporaryDirectory(prefix="ap-cli-") as work:
        with aggregator.Aggregator() as agg:
            push_known(agg)
            check_query_formats(agg, work)
            check_diff(agg, work)
            check_flamegraph(agg)
            check_labels_and_errors(agg)
        check_token(work)
        check_tls(work)
    print("ok")


if __name__ == "__main__":
    main()
