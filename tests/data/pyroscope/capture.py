#!/usr/bin/env python3
"""Record what real Pyroscope clients send, as test fixtures.

Starts a capture server on 127.0.0.1 (any free port), runs tests/js/pyroscope_push.js (the
real @pyroscope/nodejs client, unchanged) against it, and writes every request as
NAME.req (the request line's target, then the headers, one "name: value" a line) and
NAME.body (the exact bytes). Re-run to refresh the fixtures:
    python3 tests/data/pyroscope/capture.py
"""
import http.server
import os
import subprocess
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
captured = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        n = int(self.headers.get('content-length', '0'))
        body = self.rfile.read(n)
        captured.append((self.path, list(self.headers.items()), body))
        self.send_response(200)
        self.send_header('content-length', '0')
        self.end_headers()

    def log_message(self, *a):
        pass


def save(prefix, reqs):
    for i, (path, headers, body) in enumerate(reqs):
        name = os.path.join(HERE, f'{prefix}{i}')
        with open(name + '.req', 'w') as f:
            f.write(path + '\n')
            for k, v in headers:
                f.write(f'{k.lower()}: {v}\n')
        with open(name + '.body', 'wb') as f:
            f.write(body)


def run(args, prefix):
    captured.clear()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    url = f'http://127.0.0.1:{srv.server_address[1]}'
    subprocess.run(['node', os.path.join(ROOT, 'tests', 'js', 'pyroscope_push.js'), url] + args,
                   check=True, timeout=60)
    srv.shutdown()
    # wall and heap posts interleave; keep them in arrival order
    save(prefix, captured)
    print(f'{prefix}: {len(captured)} requests')


def serve():
    captured.clear()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}'


def run_go():
    """pyroscope-go's wire format (multipart, ns times) with real Go runtime profiles."""
    srv, url = serve()
    env = dict(os.environ, GOFLAGS='-mod=mod', GO111MODULE='on')
    subprocess.run(['go', 'run', '.', url], cwd=os.path.join(HERE, 'gogen'), env=env,
                   check=True, timeout=300)
    srv.shutdown()
    save('go_', captured)
    print(f'go_: {len(captured)} requests')


def run_python():
    """The Python example of grafana/pyroscope (examples/api/ingest_pprof.py): requests with
    files= (multipart `profile` + `sample_type_config`), Basic auth, only name= in the URL."""
    import json
    import requests
    srv, url = serve()
    with open(os.path.join(ROOT, 'tests', 'fuzz', 'corpus', 'pprof', 'cpu.pb.gz'), 'rb') as f:
        prof = f.read()
    cfg = {'cpu': {'units': 'samples', 'aggregation': 'sum', 'display-name': 'cpu_samples',
                   'sampled': True}}
    r = requests.post(f'{url}/ingest?name=pyapp', auth=('pyuser', 'pypass'),
                      files={'profile': ('example.pprof', prof),
                             'sample_type_config': ('config.json', json.dumps(cfg))})
    r.raise_for_status()
    # @pyroscope/nodejs 0.4.x: one multipart field `profile` (filename "profile"), no format
    with open(os.path.join(HERE, 'node_bearer_0.body'), 'rb') as f:
        nodeprof = f.read()
    boundary = '--------------------------' + '417384207931836452090337'
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="profile"; '
            f'filename="profile"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode() + nodeprof + f'\r\n--{boundary}--\r\n'.encode()
    q = ('name=nodeapp04%7Bregion%3Dlocal%7D&from=1796574775&until=1796574777'
         '&spyName=nodespy&sampleRate=100')
    r = requests.post(f'{url}/ingest?{q}', data=body,
                      headers={'Content-Type': f'multipart/form-data; boundary={boundary}',
                               'Authorization': 'Bearer tok123'})
    r.raise_for_status()
    srv.shutdown()
    save('py_', captured)
    print(f'py_: {len(captured)} requests')


FOLDED = b"""main;handle_request;parse_json 40
main;handle_request;render;escape_html 25
main;handle_request;render 10
main;idle 5
"""
LINES = b"""main;work;compute
main;work;compute
main;work;compute
main;work;io_wait
main;gc
"""


def run_curl():
    """What curl users send: folded (format=groups/folded, or none) and lines bodies."""
    srv, url = serve()
    for fmt, body, name, extra in (
            ('', FOLDED, 'curlapp.cpu{env=prod,team.name=core}', '&from=1796574700&until=1796574710'),
            ('groups', FOLDED, 'curlapp.wall', '&from=1796574700000&until=1796574710000&sampleRate=99'),
            ('lines', LINES, 'curlapp.cpu{env=prod}', '&from=now-10s&until=now'),
            ('lines', LINES, 'curlapp.alloc_space', '&from=20261206&until=20261207&units=bytes')):
        q = 'name=' + urllib.parse.quote(name, safe='') + extra + (f'&format={fmt}' if fmt else '')
        subprocess.run(['curl', '-sS', '-f', '-X', 'POST', '--data-binary', '@-',
                        f'{url}/ingest?{q}'], input=body, check=True, timeout=30)
    srv.shutdown()
    save('curl_', captured)
    print(f'curl_: {len(captured)} requests')


def main():
    run_go()
    run_curl()
    run(['--app', 'nodeapp', '--ms', '3500', '--flush', '1500', '--token', 'tok123',
         '--tenant', 'team-a', '--tag', 'region=local', '--tag', 'host=h1'], 'node_bearer_')
    run(['--app', 'nodeapp', '--ms', '1500', '--flush', '5000', '--basic', 'user:pw',
         '--cpu-time'], 'node_basic_')
    run_python()  # wraps node_bearer_0.body as 0.4's multipart
    return 0


if __name__ == '__main__':
    sys.exit(main())
