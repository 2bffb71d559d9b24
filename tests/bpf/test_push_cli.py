# SPDX-License-Identifier: MIT
"""Continuous mode's flags fail early with a clear message: bad values are usage errors
(exit 2), an unreadable or empty token file and an unsafe spool directory fail the start
(exit 1) before anything is recorded; the token is never echoed."""
import os
import tempfile

from aptest import agent, check, require_bpf

require_bpf()


def refused(code, want, *args):
    r = agent("-m", "cpu", *args, check_rc=False)
    check(r.returncode == code, f"{args}: exit {r.returncode}, want {code}\n{r.stderr}")
    check(want in r.stderr, f"{args}: {want!r} not in:\n{r.stderr}")
    return r


with tempfile.TemporaryDirectory() as tmp:
    url = "http://127.0.0.1:9"
    refused(2, "invalid --server", "--server", "gopher://x")
    refused(2, "needs --server", "--label", "a=b")
    refused(2, "invalid --label", "--server", url, "--label", "9lives=x")
    refused(2, "the agent sets mode", "--server", url, "--label", "mode=x")
    refused(2, "invalid --push-interval", "--server", url, "--push-interval", "10ms")
    refused(2, "--output is for one-shot runs", "--server", url, "-o", "x.pb.gz")
    refused(1, "cannot read --token-file", "--server", url, "--token-file",
            os.path.join(tmp, "missing"))
    empty = os.path.join(tmp, "empty")
    open(empty, "w").close()
    refused(1, "empty", "--server", url, "--token-file", empty)
    bad = os.path.join(tmp, "bad")
    with open(bad, "w") as f:
        f.write("secret part\x01x\n")
    r = refused(1, "cannot go into an HTTP header", "--server", url, "--token-file", bad)
    check("secret" not in r.stderr, "the token was echoed")
    # a spool directory that is a symlink, or writable by others
    real = os.path.join(tmp, "real")
    os.mkdir(real, 0o700)
    link = os.path.join(tmp, "link")
    os.symlink(real, link)
    refused(1, "spool directory", "--server", url, "--spool-dir", link)
    os.chmod(real, 0o777)
    refused(1, "spool directory", "--server", url, "--spool-dir", real)
    # the help lists the flags
    r = agent("--help")
    for flag in ("--server", "--push-interval", "--label", "--token-file", "--spool-dir",
                 "--spool-max", "--ca-file", "--shutdown-timeout"):
        check(flag in r.stdout, f"--help lacks {flag}")
print("PASS")
