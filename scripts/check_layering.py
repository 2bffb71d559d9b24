#!/usr/bin/env python3
"""Build-time check of the module map in docs/design.md: which src/ module may include which.

Every source under src/<module>/ may include headers of its own module by bare name
("x.h") and public headers of the modules it depends on as "module/x.h". A header named
*_internal.h, or listed in PRIVATE, belongs to its module alone. Generated headers (BPF
skeletons, vmlinux.h, protoc-c output, embedded sources) are not under src/ and pass.
Exit 1 with one line per violation, so the build fails where a dependency points the
wrong way."""
import os
import re
import sys

# module -> modules it may include. Keep in step with the table in docs/design.md.
DEPS = {
    'lib': ['bpf'],  # bpf/*.h: formats shared with the BPF programs (histogram slots)
    'bpf': [],
    'format': ['lib'],
    'symbol': ['lib'],
    'unwind': ['lib', 'bpf'],
    'filter': ['lib'],  # only what ONLY allows: the filter library stays standalone
    'agent': ['lib', 'bpf', 'format', 'symbol', 'unwind', 'filter', 'gpu'],
    'cli': ['lib', 'format', 'symbol', 'filter', 'agent'],
    'storage': ['lib', 'format'],
    'server': ['lib', 'format', 'storage'],
    # gpu/inject/ is built apart (it runs inside CUDA processes) and includes none of ours
    'gpu': ['lib', 'bpf', 'symbol', 'format'],
}
# (module, dependency) -> the only headers of the dependency it may include.
ONLY = {
    ('filter', 'lib'): {'hash.h', 'errbuf.h'},  # header-only: nothing of ap_lib is linked
}
# Headers that are a module's own business although not named *_internal.h.
PRIVATE = {
    'filter': {'engine.h', 'wasm_module.h', 'wasm_reader.h', 'aot_glue.h', 'aot_wasm_rt.h'},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main(src):
    headers = {}
    for mod in os.listdir(src):
        d = os.path.join(src, mod)
        if os.path.isdir(d):
            headers[mod] = {f for f in os.listdir(d) if f.endswith('.h')}
    errors = []
    for mod in sorted(headers):
        if mod not in DEPS:
            errors.append('src/%s/: module missing from the table in scripts/check_layering.py'
                          % mod)
            continue
        d = os.path.join(src, mod)
        for f in sorted(os.listdir(d)):
            if not re.search(r'\.(c|h|cc)$', f):
                continue
            text = open(os.path.join(d, f), encoding='utf-8', errors='replace').read()
            for inc in INCLUDE.findall(text):
                where = 'src/%s/%s: #include "%s"' % (mod, f, inc)
                if '/' not in inc:
                    for other, hs in headers.items():
                        if other != mod and inc in hs:
                            errors.append('%s: a header of src/%s/ needs its module path '
                                          '("%s/%s")' % (where, other, other, inc))
                    continue
                dep, _, name = inc.partition('/')
                if dep not in headers or name not in headers[dep]:
                    continue  # not ours (aperture/filter_abi.h, wabt/..., generated)
                if dep == mod:
                    continue
                if dep not in DEPS[mod]:
                    errors.append('%s: src/%s may not depend on src/%s (docs/design.md)'
                                  % (where, mod, dep))
                elif name.endswith('_internal.h') or name in PRIVATE.get(dep, ()):
                    errors.append('%s: %s is private to src/%s' % (where, name, dep))
                elif (mod, dep) in ONLY and name not in ONLY[(mod, dep)]:
                    errors.append('%s: src/%s may use only %s of src/%s' %
                                  (where, mod, ', '.join(sorted(ONLY[(mod, dep)])), dep))
    for e in errors:
        print('layering: ' + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else 'src'))
