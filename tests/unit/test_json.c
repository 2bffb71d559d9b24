// SPDX-License-Identifier: MIT
/*
 * JSON writer: python3's json module must accept the output, and what it decodes must be the
 * profile that was written (totals, frames, stacks leaf first, labels, strings byte-exact or
 * with U+FFFD where the input was not UTF-8).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"

/* argv[1]: the JSON file; argv[2]: which checks. Exits non-zero with a message on mismatch. */
static const char check_py[] =
    "import sys, json\n"
    "d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
    "def eq(a, b, what):\n"
    "    if a != b:\n"
    "        sys.exit('%s: %r != %r' % (what, a, b))\n"
    "eq(d['format'], 'aperture-profile', 'format')\n"
    "eq(d['version'], 1, 'version')\n"
    "keys = ['format', 'version', 'meta', 'start_ns', 'duration_ns', 'period', 'value_types',\n"
    "        'default_value', 'totals', 'stats', 'mappings', 'frames', 'stacks', 'samples']\n"
    "eq(list(d.keys()), keys, 'top-level keys')\n"
    "assert d['default_value'] == 0 or 0 <= d['default_value'] < len(d['value_types'])\n"
    "for i, f in enumerate(d['frames']):\n"
    "    eq(f['id'], i, 'frame id')\n"
    "for st in d['stacks']:\n"
    "    for fid in st:\n"
    "        assert 0 <= fid < len(d['frames'])\n"
    "for i, vt in enumerate(d['value_types']):\n"
    "    eq(d['totals'][i], sum(s['values'][i] for s in d['samples']), 'total %d' % i)\n"
    "if sys.argv[2] == 'inlined':\n"
    "    eq([f.get('inlined') for f in d['frames']], [True, None, None], 'inlined')\n"
    "    eq(list(d['frames'][0])[-1], 'inlined', 'inlined comes last')\n"
    "    eq(d['frames'][0]['addr'], d['frames'][1]['addr'], 'one address')\n"
    "    sys.exit(0)\n"
    "if sys.argv[2] == 'empty':\n"
    "    eq(d['samples'], [], 'samples'); eq(d['frames'], [], 'frames')\n"
    "    eq(d['meta'], {}, 'meta'); eq(d['stats'], {}, 'stats'); eq(d['mappings'], [], 'maps')\n"
    "    sys.exit(0)\n"
    "eq(d['meta'], {'mode': 'cpu', 'host': 'box \"1\"\\\\x'}, 'meta')\n"
    "eq(d['start_ns'], 1700000000123456789, 'start_ns')\n"
    "eq(d['duration_ns'], 5000000000, 'duration_ns')\n"
    "eq(d['period'], {'type': 'cpu', 'unit': 'nanoseconds', 'value': 10101010}, 'period')\n"
    "eq(d['value_types'], [{'type': 'samples', 'unit': 'count'},\n"
    "                      {'type': 'cpu', 'unit': 'nanoseconds'}], 'value_types')\n"
    "eq(d['totals'], [10, 101010100], 'totals')\n"
    "eq(d['stats'], {'lost_samples': 2, 'errors': 0}, 'stats')\n"
    "eq(d['mappings'], [{'id': 1, 'start': '0x400000', 'limit': '0x401000', 'offset': '0x0',\n"
    "                    'file': '/usr/bin/app', 'build_id': 'abcd'}], 'mappings')\n"
    "eq([f for f in d['frames'] if 'inlined' in f], [], 'no inlined frames')\n"
    "names = [f['name'] for f in d['frames']]\n"
    "eq(names, ['do_syscall_64', 'main', 'we\"ird\\\\\\n\\t\\x01\\x1f\\u00e9', 'bad\\ufffdx',\n"
    "           '[unknown]'], 'frame names')\n"
    "k = d['frames'][0]\n"
    "eq((k['kind'], k['module'], k['addr']), ('kernel', '[kernel.kallsyms]',\n"
    "   '0xffffffff81000010'), 'kernel frame')\n"
    "m = d['frames'][1]\n"
    "eq((m['kind'], m['addr'], m['rel_addr'], m['file'], m['line'], m['mapping']),\n"
    "   ('user', '0x400123', '0x123', 'main.c', 42, 1), 'user frame')\n"
    "eq(d['stacks'], [[0, 2, 1], [4, 3, 1]], 'stacks leaf first')\n"
    "s0, s1 = d['samples']\n"
    "eq((s0['stack'], s0['pid'], s0['tid'], s0['comm'], s0['values']),\n"
    "   (0, 100, 101, 'app', [7, 70707070]), 'sample 0')\n"
    "eq(s0['labels'], {'thread': 'io', 'bytes': {'value': 4096, 'unit': 'bytes'},\n"
    "                  'delta': -5}, 'labels')\n"
    "eq((s1['stack'], s1['comm'], s1['labels'], s1['values']),\n"
    "   (1, 'x\\u2028\\ufffd', {}, [3, 30303030]), 'sample 1')\n";

static void check(const struct ap_profile *p, const char *which)
{
	char json[] = "/tmp/ap-test-json-XXXXXX", py[] = "/tmp/ap-test-json-py-XXXXXX";
	char cmd[256];
	int fd = mkstemp(json), pfd = mkstemp(py), rc;
	FILE *f;

	assert_true(fd >= 0 && pfd >= 0);
	f = fdopen(fd, "w");
	assert_int_equal(ap_write_json(p, f, NULL), 0);
	fclose(f);
	f = fdopen(pfd, "w");
	fputs(check_py, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 %s %s %s", py, json, which);
	rc = system(cmd);
	unlink(py);
	if (rc != 0)
		fail_msg("json check failed; output kept in %s", json);
	unlink(json);
}

static void test_full_profile(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_mapping m = {0};
	struct ap_frame f = {0};
	struct ap_label labels[3] = {0};
	struct ap_sample s = {0};
	uint32_t fr[5], st[3];

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	ap_profile_set_period(p, "cpu", "nanoseconds", 10101010);
	ap_profile_set_time(p, 1700000000123456789ULL, 5000000000ULL);
	assert_int_equal(ap_profile_set_meta(p, "mode", "cpu"), 0);
	assert_int_equal(ap_profile_set_meta(p, "host", "box \"1\"\\x"), 0);
	assert_int_equal(ap_profile_set_stat(p, "lost_samples", 2), 0);
	assert_int_equal(ap_profile_set_stat(p, "errors", 0), 0);

	m.start = 0x400000;
	m.limit = 0x401000;
	m.file = ap_profile_intern(p, "/usr/bin/app");
	m.build_id = ap_profile_intern(p, "abcd");
	assert_int_equal(ap_profile_add_mapping(p, &m), 1);

	f.addr = 0xffffffff81000010ULL;
	f.name = ap_profile_intern(p, "do_syscall_64");
	f.module = ap_profile_intern(p, "[kernel.kallsyms]");
	f.kind = AP_FRAME_KERNEL;
	fr[0] = ap_profile_add_frame(p, &f);
	memset(&f, 0, sizeof(f));
	f.addr = 0x400123;
	f.rel_addr = 0x123;
	f.name = ap_profile_intern(p, "main");
	f.module = ap_profile_intern(p, "app");
	f.file = ap_profile_intern(p, "main.c");
	f.line = 42;
	f.mapping = 1;
	fr[1] = ap_profile_add_frame(p, &f);
	fr[2] =
	    ap_profile_add_named_frame(p, "we\"ird\\\n\t\x01\x1f\xc3\xa9", "app", AP_FRAME_USER);
	fr[3] = ap_profile_add_named_frame(p, "bad\xffx", "app", AP_FRAME_USER);
	fr[4] = ap_profile_add_named_frame(p, "[unknown]", "libz.so", AP_FRAME_USER);

	st[0] = fr[0];
	st[1] = fr[2];
	st[2] = fr[1];
	s.stack = ap_profile_add_stack(p, st, 3);
	s.pid = 100;
	s.tid = 101;
	s.comm = ap_profile_intern(p, "app");
	labels[0].key = ap_profile_intern(p, "thread");
	labels[0].str = ap_profile_intern(p, "io");
	labels[1].key = ap_profile_intern(p, "bytes");
	labels[1].num = 4096;
	labels[1].num_unit = ap_profile_intern(p, "bytes");
	labels[2].key = ap_profile_intern(p, "delta");
	labels[2].num = -5;
	s.labels = ap_profile_add_labels(p, labels, 3);
	s.values[0] = 7;
	s.values[1] = 70707070;
	s.values[2] = 999; /* beyond the value types: not written */
	assert_int_equal(ap_profile_add_sample(p, &s), 0);

	memset(&s, 0, sizeof(s));
	st[0] = fr[4];
	st[1] = fr[3];
	st[2] = fr[1];
	s.stack = ap_profile_add_stack(p, st, 3);
	s.comm = ap_profile_intern(p, "x\xe2\x80\xa8\xc0");
	s.values[0] = 3;
	s.values[1] = 30303030;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);

	check(p, "full");
	ap_profile_free(p);
}

/* An inlined frame says so; the frame it is inlined into and ordinary frames do not. */
static void test_inlined(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_frame f = {0};
	struct ap_sample s = {0};
	uint32_t st[3];

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	f.addr = 0x400123;
	f.module = ap_profile_intern(p, "app");
	f.name = ap_profile_intern(p, "helper");
	f.flags = AP_FRAME_INLINED;
	st[0] = ap_profile_add_frame(p, &f);
	f.name = ap_profile_intern(p, "work");
	f.flags = 0;
	st[1] = ap_profile_add_frame(p, &f);
	st[2] = ap_profile_add_named_frame(p, "main", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, st, 3);
	s.values[0] = 1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	check(p, "inlined");
	ap_profile_free(p);
}

static void test_empty_profile(void **state)
{
	struct ap_profile *p = ap_profile_new();

	assert_non_null(p);
	check(p, "empty");
	ap_profile_free(p);
}

/* A failing stream must be reported, not ignored, with the reason (a full disk). */
static void test_write_error(void **state)
{
	struct ap_profile *p = ap_profile_new();
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		ap_profile_free(p);
		skip();
	}
	assert_int_equal(ap_write_json(p, f, NULL), -ENOSPC);
	fclose(f);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_profile),
	    cmocka_unit_test(test_inlined),
	    cmocka_unit_test(test_empty_profile),
	    cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
