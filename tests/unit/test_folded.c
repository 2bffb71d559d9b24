// SPDX-License-Identifier: MIT
/* Folded stacks: writer, reader, round trip, plus the format.c helpers they rely on. */
#include <errno.h>
#include <fcntl.h>
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

static uint32_t ufr(struct ap_profile *p, const char *name, const char *module)
{
	uint32_t id = ap_profile_add_named_frame(p, name, module, AP_FRAME_USER);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

static uint32_t kfr(struct ap_profile *p, const char *name)
{
	uint32_t id = ap_profile_add_named_frame(p, name, "[kernel.kallsyms]", AP_FRAME_KERNEL);

	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

/* frames: leaf first, as the model stores them */
static void add(struct ap_profile *p, const char *comm, uint32_t pid, const uint32_t *frames,
		size_t n, uint64_t v0, uint64_t v1)
{
	struct ap_sample s = {0};

	s.stack = ap_profile_add_stack(p, frames, n);
	assert_int_not_equal(s.stack, UINT32_MAX);
	s.pid = pid;
	s.tid = pid;
	s.comm = ap_profile_intern(p, comm);
	s.values[0] = v0;
	s.values[1] = v1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
}

static struct ap_profile *new_profile(void)
{
	struct ap_profile *p = ap_profile_new();

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	return p;
}

/* Writes p with the given value index into a malloc'ed string. */
static char *folded(const struct ap_profile *p, int value_index)
{
	struct ap_write_opts opts = {.value_index = value_index};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(ap_write_folded(p, f, &opts), 0);
	fclose(f);
	return buf;
}

static int read_str(const char *text, struct ap_profile *p, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int ret;

	assert_non_null(f);
	ret = ap_read_folded(f, p, err, errlen);
	fclose(f);
	return ret;
}

static void test_root_first_with_kernel_suffix(void **state)
{
	struct ap_profile *p = new_profile();
	/* leaf first: kernel leaf, kernel caller, user leaf, user root */
	uint32_t st[] = {kfr(p, "vfs_read"), kfr(p, "ksys_read"), ufr(p, "read_file", "app"),
			 ufr(p, "main", "app")};
	char *out;

	add(p, "app", 10, st, 4, 3, 30);
	out = folded(p, 0);
	assert_string_equal(out, "app;main;read_file;ksys_read_[k];vfs_read_[k] 3\n");
	free(out);
	/* -1 selects the last value type (cpu nanoseconds) */
	out = folded(p, -1);
	assert_string_equal(out, "app;main;read_file;ksys_read_[k];vfs_read_[k] 30\n");
	free(out);
	ap_profile_free(p);
}

static void test_merge_sort_and_zero_weights(void **state)
{
	struct ap_profile *p = new_profile();
	uint32_t a[] = {ufr(p, "work", "app"), ufr(p, "main", "app")};
	uint32_t b[] = {ufr(p, "idle", "app"), ufr(p, "main", "app")};
	uint32_t c[] = {ufr(p, "main", "app")};
	char *out;

	/* same comm and stack in two threads fold into one line */
	add(p, "app", 1, a, 2, 2, 0);
	add(p, "app", 2, a, 2, 5, 0);
	add(p, "app", 1, b, 2, 1, 0);
	add(p, "app", 1, c, 1, 4, 0);
	add(p, "zzz", 3, c, 1, 0, 9);	  /* zero weight in value 0: skipped */
	add(p, "bash", 4, NULL, 0, 6, 0); /* no stack: just the comm */
	out = folded(p, 0);
	assert_string_equal(out, "app;main 4\n"
				 "app;main;idle 1\n"
				 "app;main;work 7\n"
				 "bash 6\n");
	free(out);
	ap_profile_free(p);
}

static void test_sanitize_and_unknown(void **state)
{
	struct ap_profile *p = new_profile();
	uint32_t st[] = {ap_profile_add_named_frame(p, "[unknown]", "libc.so.6", AP_FRAME_USER),
			 ufr(p, "ns::f;g\nh\x1b[31m", "app"),
			 ap_profile_add_named_frame(p, "", "mystery", AP_FRAME_USER)};
	uint32_t kst[] = {
	    ap_profile_add_named_frame(p, "[unknown]", "[kernel.kallsyms]", AP_FRAME_KERNEL)};
	char *out;

	add(p, "we;ird", 1, st, 3, 1, 0);
	add(p, "", 2, kst, 1, 2, 0);
	out = folded(p, 0);
	assert_string_equal(out, "[unknown];[unknown] ([kernel.kallsyms])_[k] 2\n"
				 "we:ird;[unknown] (mystery);ns::f:g?h?[31m;"
				 "[unknown] (libc.so.6) 1\n");
	free(out);
	ap_profile_free(p);
}

static void test_bad_value_index(void **state)
{
	struct ap_profile *p = new_profile();
	struct ap_write_opts opts = {.value_index = 2};

	assert_int_equal(ap_write_folded(p, stdout, &opts), -EINVAL);
	ap_profile_free(p);
}

/* Write, read back, compare structure, and write again byte for byte. */
static void test_round_trip(void **state)
{
	struct ap_profile *p = new_profile(), *q = ap_profile_new();
	uint32_t s1[] = {kfr(p, "schedule"), kfr(p, "do_nanosleep"), ufr(p, "nanosleep", "libc"),
			 ufr(p, "std::vector<int>::push_back(int const&)", "app"),
			 ufr(p, "main", "app")};
	uint32_t s2[] = {ap_profile_add_named_frame(p, "[unknown]", "libfoo.so", AP_FRAME_USER),
			 ufr(p, "main", "app")};
	uint32_t s3[] = {ufr(p, "rec", "app"), ufr(p, "rec", "app"), ufr(p, "main", "app")};
	char err[256] = "", *first, *second;
	const uint32_t *ids;
	size_t n;

	add(p, "app", 1, s1, 5, 11, 0);
	add(p, "app", 1, s2, 2, 7, 0);
	add(p, "other thread", 2, s3, 3, 1000000, 0);
	first = folded(p, 0);

	assert_non_null(q);
	assert_int_equal(read_str(first, q, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_nvalues(q), 1);
	assert_string_equal(ap_profile_str(q, ap_profile_value_type(q, 0)->type), "samples");
	assert_string_equal(ap_profile_str(q, ap_profile_value_type(q, 0)->unit), "count");
	assert_int_equal(ap_profile_nsamples(q), 3);
	assert_int_equal(ap_profile_total(q, 0), 11 + 7 + 1000000);

	second = folded(q, -1);
	assert_string_equal(first, second);

	/* the first line is the "app" sample of s1 ("app;main;[unknown]..." sorts after it) */
	for (size_t i = 0; i < ap_profile_nsamples(q); i++) {
		const struct ap_sample *s = ap_profile_sample(q, i);
		const struct ap_frame *f;

		ids = ap_profile_stack(q, s->stack, &n);
		if (s->values[0] == 11) {
			assert_string_equal(ap_profile_str(q, s->comm), "app");
			assert_int_equal(n, 5);
			f = ap_profile_frame(q, ids[0]); /* leaf first, kernel first */
			assert_string_equal(ap_profile_str(q, f->name), "schedule");
			assert_int_equal(f->kind, AP_FRAME_KERNEL);
			assert_string_equal(ap_profile_str(q, f->module), "[kernel.kallsyms]");
			f = ap_profile_frame(q, ids[2]);
			assert_string_equal(ap_profile_str(q, f->name), "nanosleep");
			assert_int_equal(f->kind, AP_FRAME_USER);
			f = ap_profile_frame(q, ids[4]);
			assert_string_equal(ap_profile_str(q, f->name), "main");
		} else if (s->values[0] == 7) {
			assert_int_equal(n, 2);
			f = ap_profile_frame(q, ids[0]);
			assert_string_equal(ap_profile_str(q, f->name), "[unknown]");
			assert_string_equal(ap_profile_str(q, f->module), "libfoo.so");
		} else {
			assert_int_equal(s->values[0], 1000000);
			assert_string_equal(ap_profile_str(q, s->comm), "other thread");
			assert_int_equal(n, 3);
			assert_int_equal(ids[0], ids[1]); /* recursion kept: same frame twice */
		}
	}
	free(first);
	free(second);
	ap_profile_free(p);
	ap_profile_free(q);
}

static void test_reader_tolerates(void **state)
{
	struct ap_profile *p = ap_profile_new();
	char err[256] = "";

	/* blank lines, CRLF, tabs/spaces before the count, a lone comm, zero counts */
	assert_int_equal(read_str("\n  \r\nfoo;a;b_[k] 3\r\n\nbar 2\nbaz;x  0\nfoo;a;b_[k]\t 4\n",
				  p, err, sizeof(err)),
			 0);
	assert_int_equal(ap_profile_nsamples(p), 2);
	assert_int_equal(ap_profile_total(p, 0), 9);
	ap_profile_free(p);
}

static void expect_error(const char *text, const char *msg)
{
	struct ap_profile *p = ap_profile_new();
	char err[256] = "";

	assert_non_null(p);
	assert_int_equal(read_str(text, p, err, sizeof(err)), -EINVAL);
	if (!strstr(err, msg))
		fail_msg("error \"%s\" does not contain \"%s\"", err, msg);
	ap_profile_free(p);
}

static void test_reader_errors(void **state)
{
	expect_error("app;main\n", "line 1: missing count");
	expect_error("app;main 1\n\napp;f 12x\n", "line 3: invalid count \"12x\"");
	expect_error("app;main -3\n", "line 1: invalid count");
	expect_error("a 1\nb 2\napp;;f 3\n", "line 3: empty name in field 2");
	expect_error("app;f; 3\n", "line 1: empty name in field 3");
	expect_error("ok 1\n 5\n", "line 2: empty stack");
	expect_error("app;f 99999999999999999999999\n", "line 1: invalid count");
	expect_error("app;f\x01g 1\n", "line 1: control character 0x01");
}

static void test_reader_nul_byte(void **state)
{
	static const char text[] = "app;f 1\napp;\0g 2\n";
	struct ap_profile *p = ap_profile_new();
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");
	char err[256] = "";

	assert_int_equal(ap_read_folded(f, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 2: NUL byte"));
	fclose(f);
	ap_profile_free(p);
}

static void test_read_profile_file(void **state)
{
	char path[] = "/tmp/ap-test-folded-XXXXXX", err[512] = "";
	struct ap_profile *q = NULL;
	int fd = mkstemp(path);
	static const unsigned char junk[] = {0x0a, 0x03, 0x01, 0x02, 0xff, 0x00, 0x99};

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "app;main;f_[k] 5\n", 17), 17);
	close(fd);
	assert_int_equal(ap_read_profile_file(path, &q, err, sizeof(err)), 0);
	assert_non_null(q);
	assert_int_equal(ap_profile_total(q, 0), 5);
	ap_profile_free(q);
	q = NULL;

	/* text that is not folded: the error names the file and the line */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello world\n", 12), 12);
	close(fd);
	assert_int_equal(ap_read_profile_file(path, &q, err, sizeof(err)), -EINVAL);
	assert_null(q);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 1: invalid count"));

	/* binary junk goes to the pprof reader, which must reject it */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_true(ap_read_profile_file(path, &q, err, sizeof(err)) < 0);
	assert_null(q);
	assert_non_null(strstr(err, path));

	/* an empty file is an empty profile */
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	assert_int_equal(ap_read_profile_file(path, &q, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_nsamples(q), 0);
	ap_profile_free(q);
	q = NULL;

	unlink(path);
	assert_int_equal(ap_read_profile_file(path, &q, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
}

static void test_format_names(void **state)
{
	enum ap_format f = AP_FORMAT_NONE;

	assert_int_equal(ap_format_from_name("svg", &f), 0);
	assert_int_equal(f, AP_FORMAT_SVG);
	assert_int_equal(ap_format_from_name("folded", &f), 0);
	assert_int_equal(f, AP_FORMAT_FOLDED);
	assert_int_equal(ap_format_from_name("pprof", &f), 0);
	assert_int_equal(f, AP_FORMAT_PPROF);
	assert_int_equal(ap_format_from_name("json", &f), 0);
	assert_int_equal(f, AP_FORMAT_JSON);
	assert_int_equal(ap_format_from_name("text", &f), 0);
	assert_int_equal(f, AP_FORMAT_TEXT);
	assert_int_equal(ap_format_from_name("png", &f), -EINVAL);
	assert_int_equal(ap_format_from_name(NULL, &f), -EINVAL);

	assert_int_equal(ap_format_from_path("out/cpu.svg", &f), 0);
	assert_int_equal(f, AP_FORMAT_SVG);
	assert_int_equal(ap_format_from_path("x.folded", &f), 0);
	assert_int_equal(f, AP_FORMAT_FOLDED);
	assert_int_equal(ap_format_from_path("x.txt", &f), 0);
	assert_int_equal(f, AP_FORMAT_FOLDED);
	assert_int_equal(ap_format_from_path("x.pb.gz", &f), 0);
	assert_int_equal(f, AP_FORMAT_PPROF);
	assert_int_equal(ap_format_from_path("x.pprof", &f), 0);
	assert_int_equal(f, AP_FORMAT_PPROF);
	assert_int_equal(ap_format_from_path("x.pb", &f), 0);
	assert_int_equal(f, AP_FORMAT_PPROF);
	assert_int_equal(ap_format_from_path("X.JSON", &f), 0);
	assert_int_equal(f, AP_FORMAT_JSON);
	assert_int_equal(ap_format_from_path("x.gz", &f), -EINVAL);
	assert_int_equal(ap_format_from_path("profile", &f), -EINVAL);
	assert_int_equal(ap_format_from_path("dir/.svg", &f), -EINVAL);

	assert_string_equal(ap_format_name(AP_FORMAT_SVG), "svg");
	assert_string_equal(ap_format_name(AP_FORMAT_PPROF), "pprof");
	assert_string_equal(ap_format_name(AP_FORMAT_TEXT), "text");
	assert_string_equal(ap_format_name(AP_FORMAT_NONE), "none");
}

static void test_display_name(void **state)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t u = ufr(p, "main", "app"), k = kfr(p, "do_syscall_64");
	uint32_t unk = ap_profile_add_named_frame(p, "[unknown]", "libc.so.6", AP_FRAME_USER);
	uint32_t bare = ap_profile_add_named_frame(p, "[unknown]", "", AP_FRAME_USER);
	char buf[64], small[6];
	char *dup;

	assert_string_equal(ap_frame_display_name(p, u, buf, sizeof(buf)), "main");
	assert_string_equal(ap_frame_display_name(p, k, buf, sizeof(buf)), "do_syscall_64_[k]");
	assert_string_equal(ap_frame_display_name(p, unk, buf, sizeof(buf)),
			    "[unknown] (libc.so.6)");
	assert_string_equal(ap_frame_display_name(p, bare, buf, sizeof(buf)), "[unknown]");
	assert_string_equal(ap_frame_display_name(p, 999, buf, sizeof(buf)), "[unknown]");
	/* truncated, still terminated */
	assert_string_equal(ap_frame_display_name(p, k, small, sizeof(small)), "do_sy");
	dup = ap_frame_display_dup(p, k);
	assert_string_equal(dup, "do_syscall_64_[k]");
	free(dup);
	ap_profile_free(p);
}

static void test_write_dispatch(void **state)
{
	struct ap_profile *p = new_profile();
	uint32_t st[] = {ufr(p, "main", "app")};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	add(p, "app", 1, st, 1, 1, 2);
	f = open_memstream(&buf, &len);
	/* NULL opts: the last value type */
	assert_int_equal(ap_format_write(p, AP_FORMAT_FOLDED, f, NULL), 0);
	assert_int_equal(ap_format_write(p, AP_FORMAT_NONE, f, NULL), -EINVAL);
	fclose(f);
	assert_string_equal(buf, "app;main 2\n");
	free(buf);
	ap_profile_free(p);
}

static void test_utf8_and_count(void **state)
{
	char buf[32];

	assert_int_equal(ap_utf8_seq_len("a", 1), 1);
	assert_int_equal(ap_utf8_seq_len("\xc3\xa9", 2), 2);
	assert_int_equal(ap_utf8_seq_len("\xe2\x82\xac", 3), 3);
	assert_int_equal(ap_utf8_seq_len("\xf0\x9f\x94\xa5", 4), 4);
	assert_int_equal(ap_utf8_seq_len("\xc3", 1), 0);	 /* truncated */
	assert_int_equal(ap_utf8_seq_len("\xc0\xaf", 2), 0);	 /* overlong */
	assert_int_equal(ap_utf8_seq_len("\xed\xa0\x80", 3), 0); /* surrogate */
	assert_int_equal(ap_utf8_seq_len("\xff", 1), 0);
	assert_int_equal(ap_utf8_seq_len("\x80", 1), 0);
	assert_string_equal(ap_format_count(0, buf, sizeof(buf)), "0");
	assert_string_equal(ap_format_count(999, buf, sizeof(buf)), "999");
	assert_string_equal(ap_format_count(1000, buf, sizeof(buf)), "1,000");
	assert_string_equal(ap_format_count(1234567, buf, sizeof(buf)), "1,234,567");
	assert_string_equal(ap_format_count(UINT64_MAX, buf, sizeof(buf)),
			    "18,446,744,073,709,551,615");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_root_first_with_kernel_suffix),
	    cmocka_unit_test(test_merge_sort_and_zero_weights),
	    cmocka_unit_test(test_sanitize_and_unknown),
	    cmocka_unit_test(test_bad_value_index),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_reader_tolerates),
	    cmocka_unit_test(test_reader_errors),
	    cmocka_unit_test(test_reader_nul_byte),
	    cmocka_unit_test(test_read_profile_file),
	    cmocka_unit_test(test_format_names),
	    cmocka_unit_test(test_display_name),
	    cmocka_unit_test(test_write_dispatch),
	    cmocka_unit_test(test_utf8_and_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
