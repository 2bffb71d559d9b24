// SPDX-License-Identifier: MIT
/*
 * JIT code named through perf map files (/tmp/perf-PID.map): the parser, lookups in a file as
 * it grows, a live JIT process (tests/data/symbolizer/jit_main.c) before and after it exits,
 * and one running as pid 1 of its own pid namespace with a private /tmp, deleted after start.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "symbol/symbol_internal.h"
#include "test_symbolizer_util.h"

#define JITFIX AP_DWFIX_DIR "/jitfix"
#define NAME_A "LazyCompile:*jitA /app/a.js:1"

struct ctx {
	struct ap_symbolizer *s;
	struct ap_profile *p;
	struct tu_child kid;
	char tmp[64]; /* a file or directory removed at teardown */
	char map[64]; /* a perf map the fixture left behind */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	tu_child_init(&c->kid);
	c->s = ap_symbolizer_new();
	c->p = ap_profile_new();
	*state = c;
	return c->s && c->p ? 0 : -1;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	tu_child_stop(&c->kid);
	if (c->map[0])
		unlink(c->map);
	if (c->tmp[0] && unlink(c->tmp))
		rmdir(c->tmp);
	ap_symbolizer_free(c->s);
	ap_profile_free(c->p);
	free(c);
	return 0;
}

static void test_parse_line(void **state)
{
	uint64_t start, size;
	const char *name;
	size_t len;

	assert_int_equal(ap_perfmap_parse_line("7f0012 1a0 LazyCompile:*foo a.js:3\n", &start,
					       &size, &name, &len),
			 0);
	assert_int_equal(start, 0x7f0012);
	assert_int_equal(size, 0x1a0);
	/* names keep their spaces, up to the newline */
	assert_int_equal(len, strlen("LazyCompile:*foo a.js:3"));
	assert_memory_equal(name, "LazyCompile:*foo a.js:3", len);
	assert_int_equal(ap_perfmap_parse_line("0x1000 0x10 f", &start, &size, &name, &len), 0);
	assert_int_equal(start, 0x1000);
	assert_int_equal(size, 0x10);
	assert_int_equal(len, 1);

	assert_int_equal(ap_perfmap_parse_line("", &start, &size, &name, &len), -EINVAL);
	assert_int_equal(ap_perfmap_parse_line("1000 10\n", &start, &size, &name, &len), -EINVAL);
	assert_int_equal(ap_perfmap_parse_line("1000 0 empty\n", &start, &size, &name, &len),
			 -EINVAL);
	assert_int_equal(ap_perfmap_parse_line("zz 10 f\n", &start, &size, &name, &len), -EINVAL);
	/* extra blanks between the numbers are tolerated */
	assert_int_equal(ap_perfmap_parse_line("1000  10 f\n", &start, &size, &name, &len), 0);
	assert_int_equal(size, 0x10);
}

static void append(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void test_map_file(void **state)
{
	struct ctx *c = *state;
	struct ap_perfmap *m;
	uint64_t start = 0;
	int fd;

	snprintf(c->tmp, sizeof(c->tmp), "/tmp/ap-perfmap-XXXXXX");
	fd = mkostemp(c->tmp, O_CLOEXEC);
	assert_true(fd >= 0);
	append(fd, "1000 100 first\njunk line\n2000 10 second\n");
	m = ap_perfmap_open_path(c->tmp);
	assert_non_null(m);
	assert_int_equal(ap_perfmap_count(m), 2);
	assert_string_equal(ap_perfmap_find(m, 0x10ff, &start), "first");
	assert_int_equal(start, 0x1000);
	assert_null(ap_perfmap_find(m, 0x1100, NULL));
	assert_null(ap_perfmap_find(m, 0xfff, NULL));
	assert_string_equal(ap_perfmap_find(m, 0x2000, NULL), "second");

	/* appended later, half a line at a time; recompiled code at an address wins */
	append(fd, "1000 80 first_v2\n3000 2");
	assert_int_equal(ap_perfmap_update(m), 0);
	assert_string_equal(ap_perfmap_find(m, 0x1010, NULL), "first_v2");
	/* the newest entry does not cover 0x10f0: the older one still does */
	assert_string_equal(ap_perfmap_find(m, 0x10f0, NULL), "first");
	assert_null(ap_perfmap_find(m, 0x3000, NULL));
	append(fd, "0 third\n");
	assert_int_equal(ap_perfmap_update(m), 0);
	assert_string_equal(ap_perfmap_find(m, 0x301f, NULL), "third");
	assert_int_equal(ap_perfmap_count(m), 4);
	assert_string_equal(ap_perfmap_module(m), strrchr(c->tmp, '/') + 1);

	/* rewritten from scratch */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "5000 10 fresh\n", 14, 0), 14);
	assert_int_equal(ap_perfmap_update(m), 0);
	assert_int_equal(ap_perfmap_count(m), 1);
	assert_null(ap_perfmap_find(m, 0x1000, NULL));
	assert_string_equal(ap_perfmap_find(m, 0x5000, NULL), "fresh");
	ap_perfmap_free(m);
	close(fd);

	/* not a regular file (a FIFO would block a naive reader) */
	unlink(c->tmp);
	assert_int_equal(mkfifo(c->tmp, 0600), 0);
	assert_null(ap_perfmap_open_path(c->tmp));
}

static const struct ap_frame *jit_frame(struct ctx *c, int pid, uint64_t addr, const char *name,
					const char *module)
{
	uint32_t ids[4];

	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, pid, addr, false, ids, 4), 1);
	return tu_frame(c->p, ids[0], name, module, NULL, 0);
}

static void test_jit_process(void **state)
{
	struct ctx *c = *state;
	struct ap_symbolizer_stats st;
	char module[32];
	uint64_t a, b, cc;
	int pid;

	tu_spawn(&c->kid, JITFIX, NULL);
	pid = c->kid.pid;
	snprintf(c->map, sizeof(c->map), "/tmp/perf-%d.map", pid);
	snprintf(module, sizeof(module), "perf-%d.map", pid);
	a = tu_val(&c->kid, "jit_a");
	b = tu_val(&c->kid, "jit_b");
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);

	jit_frame(c, pid, a, NAME_A, module);
	jit_frame(c, pid, b + 3, "jit_b_function", module);
	/* past the 4 bytes the map gives it: nobody's, in the anonymous mapping */
	jit_frame(c, pid, b + 4, "[unknown]", "[anon]");

	/* compiled after the map was read: found from the next drain on */
	assert_int_equal(write(c->kid.in, "more\n", 5), 5);
	tu_read_kv(&c->kid, true);
	cc = tu_val(&c->kid, "jit_c");
	ap_symbolizer_gc(c->s);
	jit_frame(c, pid, cc + 1, "jit_c_function", module);

	/* the process dies: its map was read while it lived */
	tu_child_stop(&c->kid);
	jit_frame(c, pid, a + 2, NAME_A, module);
	st = (ap_symbolizer_get_stats(c->s, &st), st);
	assert_int_equal(st.jit_resolved, 4);
}

/* Code the runtime lists only later (V8 buffers its map): unnamed when first seen, named by
 * ap_symbolizer_resolve_pending() once its line is in the map, in every stack holding it. */
static void test_jit_published_late(void **state)
{
	struct ctx *c = *state;
	struct ap_symbolizer_stats st;
	uint32_t id, again;
	char module[32];
	uint64_t d;
	int pid;

	tu_spawn(&c->kid, JITFIX, NULL);
	pid = c->kid.pid;
	snprintf(c->map, sizeof(c->map), "/tmp/perf-%d.map", pid);
	snprintf(module, sizeof(module), "perf-%d.map", pid);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	jit_frame(c, pid, tu_val(&c->kid, "jit_a"), NAME_A, module);

	assert_int_equal(write(c->kid.in, "late\n", 5), 5);
	tu_read_kv(&c->kid, true);
	d = tu_val(&c->kid, "jit_d");
	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, pid, d + 1, false, &id, 1), 1);
	tu_frame(c->p, id, "[unknown]", "[anon]", NULL, 0);
	assert_int_equal(ap_profile_npending(c->p), 1);
	/* seen again: the same frame, not pended twice */
	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, pid, d + 1, false, &again, 1), 1);
	assert_int_equal(again, id);
	assert_int_equal(ap_profile_npending(c->p), 1);
	/* not listed yet: it keeps waiting */
	ap_symbolizer_gc(c->s);
	ap_symbolizer_resolve_pending(c->s, c->p);
	assert_int_equal(ap_profile_npending(c->p), 1);
	tu_frame(c->p, id, "[unknown]", "[anon]", NULL, 0);

	assert_int_equal(write(c->kid.in, "publish\n", 8), 8);
	tu_read_kv(&c->kid, true);
	ap_symbolizer_gc(c->s); /* the next drain */
	ap_symbolizer_resolve_pending(c->s, c->p);
	assert_int_equal(ap_profile_npending(c->p), 0);
	tu_frame(c->p, id, "jit_d_function", module, NULL, 0);
	st = (ap_symbolizer_get_stats(c->s, &st), st);
	assert_int_equal(st.jit_resolved_late, 1);
	tu_child_stop(&c->kid);
}

static void test_jit_namespace(void **state)
{
	struct ctx *c = *state;
	const char *files[] = { JITFIX };
	uint64_t a;
	int pid;

	snprintf(c->tmp, sizeof(c->tmp), "/var/tmp/ap-jitns-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	if (!tu_spawn_ns(&c->kid, c->tmp, files, 1, true)) {
		print_message("SKIP: cannot create mount and pid namespaces\n");
		skip();
	}
	pid = c->kid.pid;
	a = tu_val(&c->kid, "jit_a");
	/* pid 1 inside: its map is /tmp/perf-1.map of its own /tmp, not ours */
	assert_true(pid != 1);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	jit_frame(c, pid, a, NAME_A, "perf-1.map");
	tu_child_stop(&c->kid);
	jit_frame(c, pid, tu_val(&c->kid, "jit_b") + 1, "jit_b_function", "perf-1.map");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test_setup_teardown(test_map_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jit_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jit_published_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jit_namespace, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
