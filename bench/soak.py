#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak benchmark (not a test): the agent in all modes for a long time on a machine that starts
and exits many processes per second, its memory and CPU sampled all along.

- A churn generator (tests/bin/ap_churn) starts --churn-rate short-lived processes per second,
  each busy for --busy-us (so samples land in it and the agent snapshots it while it exits).
- `aperture-agent --mode cpu,lock,syscall` records whole-system for --duration, then writes
  JSON profiles, which are parsed (they must be valid) and their drop counters summarized.
- Every --interval the agent's RSS (VmRSS, VmHWM from /proc/PID/status), CPU (utime+stime
  from /proc/PID/stat), threads and open descriptors are written as a CSV row, and at the end
  an SVG chart (drawn here, no plotting library) of RSS and CPU over time.
- Verdict: RSS growth from the end of the first interval (warm-up: tables compiled, libc's
  debug info read) to the end, against --rss-bound-mib. The default bound adds up the caches
  docs/symbolization.md and docs/unwinding.md state: line cache 8 MiB, 8 open debug files
  (~10 MiB each for libc6-dbg), the unwinder's 6 MiB compile peak, i.e. about 94 -> 100 MiB.
  It also fits a line to the second half of the run: steady growth there is a leak's signature,
  whatever its size.

Usage: bench/soak.py [--duration 30m] [--interval 60s] [--churn-rate 200] [--modes cpu,lock,syscall]
                     [--build DIR] [--agent PATH] [--out DIR] [--rss-bound-mib 100]
                     [--agent-args "FLAGS"]
Exit status 0 within bounds, 1 when RSS grew beyond them or the agent failed.
"""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration '{text}' (e.g. 90s, 30m, 1h)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def proc_sample(pid):
    """(rss_kib, hwm_kib, cpu_seconds, threads, fds) of a live process."""
    rss = hwm = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmRSS":
                rss = int(v.split()[0])
            elif k == "VmHWM":
                hwm = int(v.split()[0])
            elif k == "Threads":
                threads = int(v)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, hwm, cpu, threads, fds


def slope(xs, ys):
    """Least-squares slope of ys over xs (0 with fewer than 2 points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def svg_chart(rows, path, title, bound_line=None):
    """Two stacked line charts (RSS MiB, CPU %) over minutes, as a standalone SVG."""
    w, h, ml, mr, mt, gap, ph = 760, 440, 64, 20, 36, 40, 160
    ts = [r["t_s"] / 60 for r in rows]
    panels = [("agent RSS (MiB)", [r["rss_kib"] / 1024 for r in rows], "#1f77b4", bound_line),
              ("agent CPU (% of one core)", [r["cpu_pct"] for r in rows], "#d62728", None)]
    xmax = max(ts[-1] if ts else 1, 1e-9)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    for i, (label, ys, color, hline) in enumerate(panels):
        top = mt + i * (ph + gap)
        ymax = max(ys + ([hline] if hline else []) + [1e-9]) * 1.1
        pw = w - ml - mr

        def px(x):
            return ml + pw * x / xmax

        def py(y):
            return top + ph - ph * y / ymax
        out.append(f'<rect x="{ml}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                   f'stroke="#888"/>')
        out.append(f'<text x="{ml}" y="{top - 6}">{label}</text>')
        for k in range(5):  # y grid and labels
            yv = ymax * k / 4
            out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" '
                       f'stroke="#eee"/>')
            out.append(f'<text x="{ml - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">'
                       f'{yv:.1f}</text>')
        for k in range(6):  # x labels (minutes)
            xv = xmax * k / 5
            out.append(f'<text x="{px(xv):.1f}" y="{top + ph + 14}" text-anchor="middle">'
                       f'{xv:.1f}</text>')
        if hline:
            out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{py(hline):.1f}" '
                       f'y2="{py(hline):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{ml + pw - 4}" y="{py(hline) - 4:.1f}" text-anchor="end" '
                       f'fill="#666">bound</text>')
        if ys:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(ts, ys))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="1.5"/>')
    out.append(f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">minutes</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=seconds, default=seconds("30m"))
    ap.add_argument("--interval", type=seconds, default=seconds("60s"))
    ap.add_argument("--churn-rate", type=int, default=200, help="processes started per second")
    ap.add_argument("--busy-us", type=int, default=3000, help="CPU time of each process")
    ap.add_argument("--modes", default="cpu,lock,syscall")
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--agent", help="agent binary (default BUILD/bin/aperture-agent)")
    ap.add_argument("--out", default="soak-results")
    ap.add_argument("--rss-bound-mib", type=float, default=100.0)
    ap.add_argument("--agent-args", default="", help="extra agent flags")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (the agent loads BPF programs)")
    agent = a.agent or os.path.join(a.build, "bin", "aperture-agent")
    churn = os.path.join(a.build, "tests", "bin", "ap_churn")
    for p in (agent, churn):
        if not os.access(p, os.X_OK):
            sys.exit(f"soak: {p} not found: build first (make build)")
    os.makedirs(a.out, exist_ok=True)
    csv_path = os.path.join(a.out, "soak.csv")
    svg_path = os.path.join(a.out, "soak.svg")
    log_path = os.path.join(a.out, "agent.log")
    prof = os.path.join(a.out, "soak.json")

    ch = subprocess.Popen([churn, "-r", str(a.churn_rate), "-d", "0", "-l", str(a.busy_us),
                           "-j", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    log = open(log_path, "w")
    ag = subprocess.Popen([agent, "--mode", a.modes, "--format", "json", "-o", prof,
                           *a.agent_args.split()], stdout=subprocess.DEVNULL, stderr=log)
    print(f"soak: agent pid {ag.pid}, churn {a.churn_rate}/s, {a.duration:.0f} s, sampling every "
          f"{a.interval:.0f} s -> {csv_path}", flush=True)
    rows = []
    t0 = time.monotonic()
    last_t, last_cpu = t0, 0.0
    failed = None
    try:
        with open(csv_path, "w", newline="") as cf:
            wr = csv.DictWriter(cf, fieldnames=["t_s", "rss_kib", "hwm_kib", "cpu_s", "cpu_pct",
                                                "threads", "fds"])
            wr.writeheader()
            next_t = t0 + a.interval
            while True:
                end = t0 + a.duration
                time.sleep(max(0.0, min(next_t, end) - time.monotonic()))
                if ag.poll() is not None:
                    failed = f"agent exited early ({ag.returncode}): see {log_path}"
                    break
                now = time.monotonic()
                rss, hwm, cpu, threads, fds = proc_sample(ag.pid)
                row = {"t_s": round(now - t0, 1), "rss_kib": rss, "hwm_kib": hwm,
                       "cpu_s": round(cpu, 2),
                       "cpu_pct": round(100 * (cpu - last_cpu) / max(now - last_t, 1e-9), 2),
                       "threads": threads, "fds": fds}
                last_t, last_cpu = now, cpu
                rows.append(row)
                wr.writerow(row)
                cf.flush()
                print(f"  {row['t_s']:7.0f} s  RSS {rss / 1024:7.1f} MiB  peak {hwm / 1024:7.1f} "
                      f"MiB  CPU {row['cpu_pct']:5.1f} %  threads {threads}  fds {fds}",
                      flush=True)
                if now >= end:
                    break
                next_t += a.interval
    finally:
        if ag.poll() is None:
            ag.send_signal(signal.SIGINT)
            try:
                ag.wait(timeout=300)
            except subprocess.TimeoutExpired:
                ag.kill()
                ag.wait()
                failed = failed or "agent did not stop within 300 s of SIGINT"
        ch.terminate()
        churn_err = ch.communicate(timeout=60)[1].strip()
        log.close()
    if ag.returncode and not failed:
        failed = f"agent exited {ag.returncode}: see {log_path}"

    bound = None
    if rows:
        bound = rows[0]["rss_kib"] / 1024 + a.rss_bound_mib
        svg_chart(rows, svg_path, f"aperture-agent --mode {a.modes}, churn {a.churn_rate}/s",
                  bound)
    print(f"soak: churn: {churn_err}")
    # the profiles must be valid; sum what they say was lost
    for m in a.modes.split(","):
        path = prof if "," not in a.modes else os.path.join(a.out, f"soak.{m}.json")
        try:
            with open(path) as f:
                st = json.load(f).get("stats", {})
            lost = {k: v for k, v in st.items() if v and re.search(
                r"lost|dropped|full|missed|_errors|failed|over_budget", k)}
            print(f"soak: {m}: valid JSON; non-zero loss counters: {lost or 'none'}")
        except (OSError, ValueError) as e:
            failed = failed or f"{path}: not a valid profile ({e})"
    if not rows:
        print(f"soak: FAIL: no samples ({failed})")
        return 1
    grow = (rows[-1]["rss_kib"] - rows[0]["rss_kib"]) / 1024
    half = rows[len(rows) // 2:]
    trend = slope([r["t_s"] / 60 for r in half], [r["rss_kib"] / 1024 for r in half])
    cpu_avg = sum(r["cpu_pct"] for r in rows[1:]) / max(len(rows) - 1, 1)
    print(f"soak: RSS {rows[0]['rss_kib'] / 1024:.1f} MiB after the first interval -> "
          f"{rows[-1]['rss_kib'] / 1024:.1f} MiB at the end (peak "
          f"{max(r['hwm_kib'] for r in rows) / 1024:.1f} MiB): grew {grow:.1f} MiB, bound "
          f"{a.rss_bound_mib:.0f} MiB; second-half trend {trend:+.2f} MiB/min; "
          f"agent CPU {cpu_avg:.1f} % of a core on average")
    print(f"soak: wrote {csv_path}, {svg_path}")
    if failed:
        print(f"soak: FAIL: {failed}")
        return 1
    if grow > a.rss_bound_mib:
        print("soak: FAIL: RSS grew beyond the stated cache bounds")
        return 1
    print("soak: RSS within the stated cache bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
