#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the syscall and errno name tables of the target architecture.

The numbers come from the target's own kernel UAPI headers, read through the target C
compiler's preprocessor (`cc -E -dM`), so a cross build gets the target's numbers and a macro
that refers to another one (arm64's `__NR_fcntl __NR3264_fcntl`) is resolved like C would.

Usage: gen_syscalls.py --cc CC --arch ARCH --out FILE.c

ARCH is the Aperture architecture name chosen by cmake/syscalls.cmake (x86_64, arm64). The
script checks that the compiler really targets it, and fails on anything else: a table that
silently belongs to another architecture would mislabel every syscall.
"""
import argparse
import os
import re
import subprocess
import sys

# arch -> (macro the compiler must define, native header, compat ABI name, compat header)
ARCHES = {
    "x86_64": ("__x86_64__", "asm/unistd.h", "ia32", "asm/unistd_32.h"),
    "arm64": ("__aarch64__", "asm/unistd.h", None, None),
}

# errno aliases: keep the canonical name (glibc's strerrorname_np picks these too)
ERRNO_ALIASES = {"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"}

DEFINE = re.compile(r"^#define\s+(\w+)\s+(.+?)\s*$")
TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(.))")


def die(msg):
    sys.stderr.write(f"gen_syscalls.py: {msg}\n")
    sys.exit(1)


def macros(cc, header, extra=()):
    """All macros defined after including `header`, as {name: replacement text}."""
    cmd = [*cc.split(), *extra, "-E", "-dM", "-x", "c", "-"]
    try:
        res = subprocess.run(cmd, input=f"#include <{header}>\n", capture_output=True,
                             text=True, check=False)
    except OSError as e:
        die(f"cannot run {cmd[0]}: {e}")
    if res.returncode != 0:
        die(f"{' '.join(cmd)} failed on <{header}>:\n{res.stderr}")
    out = {}
    for line in res.stdout.splitlines():
        m = DEFINE.match(line)
        if m and "(" not in m.group(1):
            out[m.group(1)] = m.group(2)
    return out


def evaluate(expr, defs, depth=0):
    """Evaluate an integer macro body made of numbers, names, + - | << and parentheses.
    Returns None for anything else (function-like or unrelated macros)."""
    if depth > 16:
        return None
    toks = []
    pos = 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        num, name, op = m.groups()
        if num:
            toks.append(str(int(num, 0)))
        elif name:
            if name not in defs:
                return None
            v = evaluate(defs[name], defs, depth + 1)
            if v is None:
                return None
            toks.append(str(v))
        elif op in "+-|()<" or op == ">":
            toks.append(op)
        elif op.strip():
            return None
    text = "".join(toks).replace("<<", " << ")
    if not text or not re.fullmatch(r"[0-9+\-|() <]+", text):
        return None
    try:
        return int(eval(text, {"__builtins__": {}}))  # digits and operators only
    except (SyntaxError, ValueError, TypeError):
        return None


def syscall_table(defs):
    table = {}
    for name, body in defs.items():
        if not name.startswith("__NR_") or name.startswith("__NR3264"):
            continue
        nr = evaluate(body, defs)
        if nr is None or nr < 0 or nr >= 4096:
            continue
        sysname = name[len("__NR_"):]
        # two names for one number (arm64 fstatat/newfstatat): keep the first alphabetically
        if nr not in table or sysname < table[nr]:
            table[nr] = sysname
    if len(table) < 200:
        die(f"only {len(table)} syscalls found: wrong or missing kernel headers?")
    return table


def errno_table(defs):
    table = {}
    for name, body in defs.items():
        if not re.fullmatch(r"E[A-Z0-9]+", name) or name in ERRNO_ALIASES:
            continue
        v = evaluate(body, defs)
        if v is None or v <= 0 or v >= 4096:
            continue
        if v not in table or name < table[v]:
            table[v] = name
    if len(table) < 100:
        die(f"only {len(table)} errno values found: wrong or missing kernel headers?")
    return table


def c_array(name, table):
    size = max(table) + 1 if table else 0
    lines = [f"static const char *const {name}[{max(size, 1)}] = {{"]
    for nr in sorted(table):
        lines.append(f"\t[{nr}] = \"{table[nr]}\",")
    lines.append("};")
    return "\n".join(lines), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True)
    ap.add_argument("--arch", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.arch not in ARCHES:
        die(f"no syscall table for architecture '{a.arch}' (known: {', '.join(ARCHES)})")
    arch_macro, header, compat_abi, compat_header = ARCHES[a.arch]

    defs = macros(a.cc, header)
    if arch_macro not in defs:
        die(f"the compiler '{a.cc}' does not target {a.arch} ({arch_macro} is not defined): "
            "the syscall table would belong to another architecture")
    native = syscall_table(defs)
    compat = syscall_table(macros(a.cc, compat_header)) if compat_header else {}
    errnos = errno_table(macros(a.cc, "asm/errno.h"))

    parts = [
        "/* Generated by cmake/gen_syscalls.py from the target's kernel UAPI headers. */",
        "/* Do not edit: rebuilt with the build tree. */",
        "#include <stddef.h>",
        "",
        f'const char *const ap_syscalls_gen_arch = "{a.arch}";',
        "const char *const ap_syscalls_gen_compat_abi = %s;"
        % (f'"{compat_abi}"' if compat_abi else "NULL"),
    ]
    for var, table in (("native", native), ("compat", compat), ("errno", errnos)):
        body, size = c_array(f"gen_{var}", table)
        parts += ["", body,
                  f"const char *const *const ap_syscalls_gen_{var} = gen_{var};",
                  f"const unsigned int ap_syscalls_gen_{var}_size = {size}u;"]
    text = "\n".join(parts) + "\n"
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
