# SPDX-License-Identifier: MIT
"""--unwind-memory caps the kernel memory of the unwind tables.

clang-14 waits on its standard input with libLLVM (a 10 MB table) and libclang-cpp mapped.
Recorded with --pid and a 4 MiB budget, the big tables do not fit: they are counted in
unwind_files_over_budget (the process falls back to frame pointers there) and the loaded
tables stay within the budget. With the default budget (128 MiB) everything fits."""
import json
import os
import shutil
import subprocess
import tempfile

from aptest import agent, check, require_bpf, skip, wait_all

MIB = 1 << 20


def record(pid, tmp, tag, *extra):
    out = os.path.join(tmp, f"{tag}.json")
    agent("--mode", "cpu", "--pid", pid, "--duration", "1s", "--format", "json", "-o", out,
          *extra, timeout=120, env=dict(os.environ, APERTURE_CACHE_DIR=os.path.join(tmp, tag)))
    with open(out) as f:
        st = json.load(f)["stats"]
    print(f"{tag}: over budget {st['unwind_files_over_budget']}, failed "
          f"{st['unwind_files_failed']}, loaded {st['unwind_files_compiled']}, peak "
          f"{st['unwind_table_bytes_peak'] / MIB:.1f} MiB")
    return st


def main():
    require_bpf()
    clang = shutil.which("clang-14") or shutil.which("clang")
    if not clang:
        skip("clang is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([clang, "-x", "c", "-fsyntax-only", "-"], stdin=subprocess.PIPE)
        try:
            small = record(proc.pid, tmp, "small", "--unwind-memory", "4M")
            default = record(proc.pid, tmp, "default")
        finally:
            proc.kill()
            wait_all([proc])
    check(small["unwind_files_over_budget"] >= 1, f"nothing was over a 4 MiB budget: {small}")
    check(small["unwind_files_failed"] >= small["unwind_files_over_budget"], str(small))
    check(small["unwind_table_bytes_peak"] <= 4 * MIB,
          f"tables took {small['unwind_table_bytes_peak']} bytes with a 4 MiB budget")
    check(default["unwind_files_over_budget"] == 0, f"over the default budget: {default}")
    check(default["unwind_table_bytes_peak"] > 8 * MIB,
          f"libLLVM's table was not loaded with the default budget: {default}")
    check(default["unwind_files_compiled"] > small["unwind_files_compiled"], "same tables both ways")
    print("PASS")


if __name__ == "__main__":
    main()
