# SPDX-License-Identifier: MIT
"""`aperture report` on hostile and foreign inputs: every one ends within seconds, in bounded
memory, with exit status != 0 and a message that says what is wrong and what to do.

usage: report_cli_test.py APERTURE
"""
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib

aperture = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="aperture-report-")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run(*args, rc=None, stdin=None, max_rss_mb=None):
    """Runs aperture report alone in a child, so its peak RSS is the child's own."""
    pid_r, pid_w = os.pipe()
    t0 = time.monotonic()
    child = os.fork()
    if child == 0:
        os.close(pid_r)
        p = subprocess.run([aperture, "report", *args], capture_output=True, input=stdin,
                           timeout=120)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        os.write(pid_w, repr((p.returncode, p.stdout, p.stderr, ru.ru_maxrss)).encode())
        os._exit(0)
    os.close(pid_w)
    data = b""
    while chunk := os.read(pid_r, 1 << 20):
        data += chunk
    os.waitpid(child, 0)
    code, out, err, rss_kb = eval(data)  # noqa: S307 (our own repr)
    took = time.monotonic() - t0
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if rc is not None and code != rc:
        fail(f"report {args}: exit {code}, want {rc}\nstdout: {out[:2000]}\nstderr: {err}")
    if max_rss_mb is not None and os.environ.get("AP_SANITIZER") == "address":
        # ASan keeps freed memory in quarantine (256 MiB by default) and adds shadow memory:
        # the bound is about our allocations, so allow for the sanitizer's own
        max_rss_mb = 2 * max_rss_mb + 256
    if max_rss_mb is not None and rss_kb > max_rss_mb * 1024:
        fail(f"report {args}: peak RSS {rss_kb // 1024} MiB, over {max_rss_mb} MiB")
    print(f"report {' '.join(args)[:60]}: exit {code} in {took:.1f}s, "
          f"peak RSS {rss_kb // 1024} MiB: {err.strip()[:160]}")
    return code, out, err


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def expect(text, *words):
    for w in words:
        if w not in text:
            fail(f"expected {w!r} in: {text}")


# /dev/zero never ends: refused at once, not read until the OOM killer
code, _, err = run("/dev/zero", rc=1, max_rss_mb=64)
expect(err, "/dev/zero", "not a regular file", "'-'")

# a gzip bomb (~1000:1): 600 MiB of zeros in well under 1 MiB of file
z = zlib.compressobj(9, zlib.DEFLATED, 31)
chunk = bytes(1 << 20)
bomb = b"".join(z.compress(chunk) for _ in range(600)) + z.flush()
honest = write("bomb.pb.gz", bomb)
code, _, err = run(honest, max_rss_mb=64)
if code == 0:
    fail("the gzip bomb was read")
expect(err, "600 MiB", "256 MiB", "--max-size")
# the same with a lying trailer (size 1 KiB): inflating itself must stop at the cap
liar = write("liar.pb.gz", bomb[:-4] + (1024).to_bytes(4, "little"))
code, _, err = run(liar, rc=1, max_rss_mb=400)
expect(err, "inflates beyond 256 MiB", "refusing", "--max-size")
code, _, err = run(liar, "--max-size", "16M", rc=1, max_rss_mb=80)
expect(err, "inflates beyond 16 MiB")
code, _, err = run(honest, "--max-size", "100K", rc=1, max_rss_mb=64)
expect(err, "larger than 100 KiB", "--max-size")

# a folded profile, from stdin and from a file, converted to JSON and read back
folded = b"app;main;work;spin 30\napp;main;idle 10\nbash;main;do_syscall_64_[k] 5\n"
code, out, _ = run("-", rc=0, stdin=folded)
expect(out, "spin", "Total: 45")
src = write("in.folded", folded)
jpath = os.path.join(tmp, "out.json")
run(src, "-o", jpath, rc=0)
code, out, _ = run(jpath, rc=0)
expect(out, "spin", "Total: 45", "do_syscall_64_[k]")
# JSON -> pprof -> folded keeps every sample
ppath = os.path.join(tmp, "out.pb.gz")
run(jpath, "-o", ppath, rc=0)
code, out, _ = run(ppath, "--format", "folded", "-o", "-", rc=0)
if sorted(out.splitlines()) != sorted(folded.decode().splitlines()):
    fail(f"JSON -> pprof -> folded changed the profile:\n{out}")

# JSON that is not ours: a JSON error, not a folded-format one
code, _, err = run(write("trace.json", b'{"traceEvents": []}'))
if code == 0:
    fail("a foreign JSON document was read")
expect(err, "json:", "missing \"format\"")
if "folded" in err:
    fail(f"JSON input got a folded-format message: {err}")

# our own SVG is output only: say so and list the formats that are read
svg = os.path.join(tmp, "out.svg")
run(src, "-o", svg, rc=0)
code, _, err = run(svg)
if code == 0:
    fail("an SVG was read")
expect(err, "SVG", "pprof", "Aperture JSON", "folded")

# merged values saturate instead of wrapping, and the run says so
code, out, _ = run(write("wrap.folded", b"app;hot 18446744073709551615\napp;hot 7\napp;cold 1\n"),
                   rc=0)
expect(out, "values_saturated=1")
hot = [line for line in out.splitlines() if " hot " in line]
if not hot or "18,446,744,073,709,551,615" not in hot[0]:
    fail(f"the saturated stack is not at its maximum:\n{out}")

# deeper than the pprof reader takes: refused on read, not written into an unreadable file
deep = b"app;" + b";".join(b"f%d" % i for i in range(65537)) + b" 1\n"
code, _, err = run(write("deep.folded", deep))
if code == 0:
    fail("a 65537-frame stack was read")
expect(err, "line 1", "deeper than 65536")

# a 64 MiB function name: the terminal gets a few hundred bytes of it
code, out, _ = run(write("long.folded", b"app;" + b"x" * (64 << 20) + b" 3\n"), rc=0,
                   max_rss_mb=1024)
if len(out) > 8192:
    fail(f"text output of a 64 MiB name is {len(out)} bytes")
expect(out, "xxx...")
print("PASS")
