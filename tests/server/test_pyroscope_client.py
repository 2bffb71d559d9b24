#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pyroscope clients push to aperture-aggregator unchanged.

Starts a real aperture-aggregator on a free loopback port with a temporary SQLite store and
an ingest token, runs the real @pyroscope/nodejs client (tests/js/pyroscope_push.js: wall +
heap profilers, a CPU-burning function with a recognisable name, several flushes; Bearer and
Basic auth, X-Scope-OrgID), then asks the query API what was stored: the labels (dotted names
kept), the modes, the burning function in {service_name="nodeapp",mode="wall"}. Then pushes
the recorded requests of the other clients (tests/data/pyroscope: pyroscope-go's multipart with
Go runtime profiles, the Python example, @pyroscope/nodejs 0.4's form, curl's folded and lines
bodies) with urllib, their times moved to now in the same units, and queries them; and checks
the refusals (400 with a reason, 401, 413).
Skips (77) only when node or the npm packages are missing.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
import aptest  # noqa: E402

SRC = os.environ.get('AP_SOURCE_DIR') or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BIN = aptest.BIN_DIR or os.path.join(SRC, 'build', 'bin')
FIX = os.path.join(SRC, 'tests', 'data', 'pyroscope')
PUSH_JS = os.path.join(SRC, 'tests', 'js', 'pyroscope_push.js')
TOKEN = 'ingest-tok-' + os.urandom(6).hex()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def request(url, data=None, headers=None, method=None):
    """(status, body bytes) of an HTTP request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Aggregator:
    def __init__(self, tmp):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        tok = os.path.join(tmp, 'ingest.token')
        with open(tok, 'w') as f:
            f.write(TOKEN + '\n')
        os.chmod(tok, 0o600)
        self.log = open(os.path.join(tmp, 'aggregator.log'), 'w+')
        self.cmd = [os.path.join(BIN, 'aperture-aggregator'), '--listen',
                    f'127.0.0.1:{self.port}', '--storage', f'sqlite:{tmp}/store.db',
                    '--ingest-token-file', tok]
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + (60 if aptest.SANITIZER else 20)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                aptest.fail(f'aperture-aggregator exited with {self.proc.returncode}:\n'
                            f'{self.output()}')
            try:
                if request(self.url + '/healthz')[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        aptest.fail(f'aperture-aggregator did not answer /healthz:\n{self.output()}')

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def get(self, path, **params):
        status, body = request(self.url + path + '?' + urllib.parse.urlencode(params))
        aptest.check(status == 200, f'GET {path} {params}: {status} {body[:500]!r}')
        return body

    def get_json(self, path, **params):
        return json.loads(self.get(path, **params))

    def folded(self, query, **params):
        return self.get('/api/v1/profile', query=query, format='folded', **params).decode()


def run_node(url, *args):
    cmd = ['node', PUSH_JS, url, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, DEBUG='pyroscope'))
    aptest.check(res.returncode == 0, f'{" ".join(cmd)} failed:\n{res.stderr[-3000:]}')
    # the client only logs a refused push (debug('pyroscope')): a refusal is a failure here
    aptest.check('rejected' not in res.stderr and 'Error sending' not in res.stderr,
                 f'the server refused a push of the real client:\n{res.stderr[-3000:]}')
    return res


def labels_of(agg, query):
    return agg.get_json('/api/v1/labels', query=query, **{'from': 'now-1h'})['names']


def values_of(agg, name, query):
    return agg.get_json('/api/v1/label-values', name=name, query=query,
                        **{'from': 'now-1h'})['values']


def folded_count(text, leaf):
    """Sum of the counts of folded lines whose stack ends in `leaf`."""
    total = 0
    for line in text.splitlines():
        stack, _, n = line.rpartition(' ')
        if stack.split(';')[-1] == leaf:
            total += int(n)
    return total


def check_nodejs(agg):
    # a few flushes of wall + heap: Bearer token, a tenant, tags with dots from the client
    run_node(agg.url, '--app', 'nodeapp', '--ms', '7000', '--flush', '2000', '--token', TOKEN,
             '--tenant', 'team-a', '--tag', 'region=local', '--tag', 'deploy.stage=canary')
    # Basic auth with the token as the password, and wall.collectCpuTime
    run_node(agg.url, '--app', 'nodebasic', '--ms', '2500', '--flush', '1000', '--basic',
             'user:' + TOKEN, '--cpu-time')

    sel = '{service_name="nodeapp"}'
    names = labels_of(agg, sel)
    for want in ('service_name', 'mode', 'tenant', 'region', 'deploy.stage', 'otel.scope.name',
                 'process.runtime.version'):
        aptest.check(want in names, f'label {want} missing from {names}')
    modes = values_of(agg, 'mode', sel)
    aptest.check('wall' in modes and 'memory' in modes, f'modes {modes}: want wall and memory')
    aptest.check(values_of(agg, 'otel.scope.name', sel) == ['com.grafana.pyroscope/nodejs'],
                 'otel.scope.name value')
    aptest.check(values_of(agg, 'tenant', sel) == ['team-a'], 'tenant from X-Scope-OrgID')

    wall = agg.folded('{service_name="nodeapp",mode="wall"}', **{'from': 'now-1h'})
    aptest.check('aperture_pyro_burn' in wall,
                 f'the burning function is not in the wall profile:\n{wall[:2000]}')
    # wrapWithLabels({endpoint: '/burn'}) became a label of the stored series
    burn = agg.folded('{service_name="nodeapp",mode="wall",endpoint="/burn"}',
                      **{'from': 'now-1h'})
    aptest.check('aperture_pyro_burn' in burn, 'the sample label endpoint="/burn" selects '
                 'the burning stacks')
    basic = agg.folded('{service_name="nodebasic",mode="wall"}', **{'from': 'now-1h'})
    aptest.check('aperture_pyro_burn' in basic, 'the push with Basic auth was stored')
    print(f'nodejs: labels {sorted(names)}, modes {modes}')


def fixture(name):
    with open(os.path.join(FIX, name + '.req')) as f:
        lines = f.read().splitlines()
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    with open(os.path.join(FIX, name + '.body'), 'rb') as f:
        body = f.read()
    return lines[0], headers, body


def now_like(value, offset_s):
    """now + offset_s in the unit `value` is written in (Pyroscope's digit-count rule)."""
    t = time.time() + offset_s
    if not value.isdigit():
        return value  # now, now-10s
    if len(value) == 8:
        return time.strftime('%Y%m%d', time.gmtime(t + (86400 if offset_s > 0 else 0)))
    scale = {13: 10**3, 16: 10**6, 19: 10**9}.get(len(value), 1)
    return str(int(t * scale))


def push_fixture(agg, name, token=TOKEN, extra_headers=None):
    target, headers, body = fixture(name)
    path, _, query = target.partition('?')
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    params = [(k, now_like(v, -30 if k == 'from' else 0) if k in ('from', 'until') else v)
              for k, v in params]
    send = {'Content-Type': headers.get('content-type', 'application/octet-stream')}
    if 'x-scope-orgid' in headers:
        send['X-Scope-OrgID'] = headers['x-scope-orgid']
    if token:
        send['Authorization'] = 'Bearer ' + token
    send.update(extra_headers or {})
    return request(agg.url + path + '?' + urllib.parse.urlencode(params), data=body,
                   headers=send, method='POST')


def check_fixtures(agg):
    for name in ('go_0', 'go_1', 'go_2', 'go_3', 'py_0', 'py_1', 'curl_0', 'curl_1', 'curl_2',
                 'curl_3'):
        status, body = push_fixture(agg, name)
        aptest.check(status == 200, f'push {name}: {status} {body[:300]!r}')
    # pyroscope-go's multipart with sample_type_config: the Go profiles' modes
    modes = values_of(agg, 'mode', '{service_name="goapp"}')
    aptest.check(sorted(modes) == ['goroutines', 'memory', 'mutex', 'process_cpu'],
                 f'goapp modes {modes}')
    aptest.check(values_of(agg, 'k8s.pod', '{service_name="goapp"}') == ['pod-1'], 'k8s.pod')
    aptest.check(values_of(agg, 'tenant', '{service_name="goapp"}') == ['team-go'], 'tenant')
    cpu = agg.folded('{service_name="goapp",mode="process_cpu"}', **{'from': 'now-1h'})
    aptest.check('main.apertureGoBurn' in cpu, f'Go CPU profile:\n{cpu[:1500]}')
    mutex = agg.folded('{service_name="goapp",mode="mutex"}', **{'from': 'now-1h'})
    aptest.check(mutex.strip() != '', 'the Go mutex profile is stored')
    # the Python example sends no from/until: stored at the pprof's own time (when that is
    # not older than the default retention, 7 d)
    rep = subprocess.run([os.path.join(BIN, 'aperture'), 'report', '--format', 'json',
                          os.path.join(SRC, 'tests', 'fuzz', 'corpus', 'pprof', 'cpu.pb.gz')],
                         capture_output=True, text=True, timeout=60)
    start_s = json.loads(rep.stdout)['start_ns'] // 10**9 if rep.returncode == 0 else 0
    if time.time() - start_s < 6 * 86400:
        modes_py = agg.get_json('/api/v1/label-values', name='mode', query='{service_name="pyapp"}',
                                **{'from': str(start_s - 60), 'until': str(start_s + 60)})
        aptest.check('process_cpu' in modes_py['values'], f'pyapp: {modes_py}')
    else:
        print('pyapp: its pprof is older than the retention; not queried')
    # node 0.4's form
    aptest.check(values_of(agg, 'region', '{service_name="nodeapp04"}') == ['local'],
                 'nodeapp04')
    # curl folded: exact counts come back; the dotted label selects it
    folded = agg.folded('{service_name="curlapp",mode="process_cpu",team.name="core"}',
                        **{'from': 'now-1h'})
    aptest.check(folded_count(folded, 'parse_json') == 40 and
                 folded_count(folded, 'escape_html') == 25, f'curl folded:\n{folded}')
    lines = agg.folded('{service_name="curlapp",mode="process_cpu",team.name=""}',
                       **{'from': 'now-1h'})
    aptest.check(folded_count(lines, 'compute') == 3 and folded_count(lines, 'gc') == 1,
                 f'curl lines:\n{lines}')
    wall = agg.folded('{service_name="curlapp",mode="wall"}', **{'from': 'now-1h'})
    aptest.check(folded_count(wall, 'idle') == 5, f'curl groups wall:\n{wall}')
    now = int(time.time())
    mem = agg.folded('{service_name="curlapp",mode="memory"}',
                     **{'from': str(now - 2 * 86400), 'until': str(now + 2 * 86400)})
    aptest.check(folded_count(mem, 'compute') == 3, f'curl lines alloc_space:\n{mem}')
    print(f'fixtures: goapp modes {modes}')


def check_refusals(agg):
    status, body = push_fixture(agg, 'curl_0', token='wrong-token')
    aptest.check(status == 401, f'a wrong token: {status} {body!r}')
    status, body = request(agg.url + '/ingest?format=pprof', data=b'x', method='POST',
                           headers={'Authorization': 'Bearer ' + TOKEN})
    aptest.check(status == 400 and b'name' in body, f'no name: {status} {body!r}')
    msg = json.loads(body)
    aptest.check(msg.get('code') == 400 and 'name' in msg.get('message', ''), f'{msg}')
    form = (b'--b\r\nContent-Disposition: form-data; name="profile"\r\n\r\nx\r\n'
            b'--b\r\nContent-Disposition: form-data; name="prev_profile"\r\n\r\ny\r\n--b--\r\n')
    status, body = request(agg.url + '/ingest?name=old', data=form, method='POST',
                           headers={'Authorization': 'Bearer ' + TOKEN,
                                    'Content-Type': 'multipart/form-data; boundary=b'})
    aptest.check(status == 400 and b'unsupported client version' in body,
                 f'prev_profile: {status} {body!r}')
    # a gzip bomb: far more than the inflation limit from a small body
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    mib = b'\0' * (1 << 20)
    bomb = b''.join(z.compress(mib) for _ in range(600)) + z.flush()
    status, body = request(agg.url + '/ingest?name=bomb&format=pprof', data=bomb,
                           method='POST', headers={'Authorization': 'Bearer ' + TOKEN})
    aptest.check(status == 413, f'gzip bomb ({len(bomb)} bytes): {status} {body[:300]!r}')
    print('refusals: 401, 400 (reasons), 413')


def main():
    if not shutil.which('node'):
        aptest.skip('node is not installed')
    if not os.path.isdir(os.path.join(SRC, 'tests', 'js', 'node_modules', '@pyroscope',
                                      'nodejs')):
        aptest.skip('tests/js/node_modules/@pyroscope/nodejs is missing (scripts/deps.sh '
                    'installs it)')
    aptest.check(os.path.exists(os.path.join(BIN, 'aperture-aggregator')),
                 f'{BIN}/aperture-aggregator is not built')
    tmp = tempfile.mkdtemp(prefix='ap-pyro-')
    agg = Aggregator(tmp)
    try:
        check_nodejs(agg)
        check_fixtures(agg)
        check_refusals(agg)
    except SystemExit:
        print(agg.output())
        raise
    finally:
        agg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print('PASS')


if __name__ == '__main__':
    main()
