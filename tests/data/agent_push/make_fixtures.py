#!/usr/bin/env python3
"""Real agent pushes (POST /api/v1/push, docs/api.md) as fixtures for the ingest tests.

Runs build/bin/aperture-agent (root, BPF) in cpu, lock and syscall mode against the test
workloads, and composes each push from its real outputs: the gzipped pprof (`-o x.pb.gz`)
as the `profile` part and, for lock and syscall, the JSON report (`-o x.json`, a second run)
as the `tables` part, plus an `agent` part of counters. Writes NAME.req (target + headers, as
tests/data/pyroscope) and NAME.body, and the raw outputs (for the fuzz corpora):
    sudo python3 tests/data/agent_push/make_fixtures.py
"""
import os
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
AGENT = os.path.join(ROOT, 'build', 'bin', 'aperture-agent')
WL = os.path.join(ROOT, 'build', 'tests', 'bin')


def record(mode, workload, out, filt, secs='2s'):
    w = subprocess.Popen(workload, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        time.sleep(0.3)
        f = ['-p', str(w.pid)] if filt is None else filt
        subprocess.run([AGENT, '--mode', mode] + f + ['-d', secs, '-o', out],
                       check=True, timeout=60, stdout=subprocess.DEVNULL)
    finally:
        os.killpg(w.pid, 9)
        w.wait()
    with open(out, 'rb') as f:
        return f.read()


def push(name, mode, from_ns, until_ns, parts):
    boundary = 'aperture-' + os.urandom(12).hex()
    body = b''
    for pname, ctype, data in parts:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{pname}"; '
                 f'filename="{pname}"\r\nContent-Type: {ctype}\r\n\r\n').encode()
        body += data + b'\r\n'
    body += f'--{boundary}--\r\n'.encode()
    q = urllib.parse.urlencode([('push_id', os.urandom(16).hex()), ('from', str(from_ns)),
                                ('until', str(until_ns)), ('label', 'host=fixture-host'),
                                ('label', f'mode={mode}'), ('label', 'env=test'),
                                ('label', 'k8s.cluster=c1')])
    with open(os.path.join(HERE, name + '.req'), 'w') as f:
        f.write(f'/api/v1/push?{q}\n')
        f.write(f'content-type: multipart/form-data; boundary={boundary}\n')
        f.write('authorization: Bearer ingest-token\n')
    with open(os.path.join(HERE, name + '.body'), 'wb') as f:
        f.write(body)


def main():
    if os.geteuid() != 0:
        print('needs root (the agent loads BPF programs)')
        return 1
    agent = b'{"pushes_ok": 12, "pushes_failed": 1, "spool_bytes": 0}'
    raw = {}
    sysloop = ['sh', '-c', f'yes go | {WL}/ap_syscalls -n 20000 -e 300 -s 3 -w']
    for mode, wl, filt in (('cpu', [os.path.join(WL, 'ap_spin'), '5'], None),
                           ('lock', [os.path.join(WL, 'ap_locks'), '5'], None),
                           ('syscall', sysloop, ['--comm', 'ap_syscalls'])):
        t0 = time.time_ns()
        pb = record(mode, wl, os.path.join(HERE, f'{mode}.pb.gz'), filt)
        t1 = time.time_ns()
        parts = [('profile', 'application/octet-stream', pb)]
        if mode != 'cpu':
            js = record(mode, wl, os.path.join(HERE, f'{mode}.json'), filt)
            parts.append(('tables', 'application/json', js))
        parts.append(('agent', 'application/json', agent))
        push(f'push_{mode}', mode, t0, t1, parts)
        raw[mode] = len(pb)
    print(raw)
    return 0


if __name__ == '__main__':
    sys.exit(main())
