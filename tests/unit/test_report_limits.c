// SPDX-License-Identifier: MIT
/* Hardening of the profile readers behind `aperture report` (issue #9): bounded inputs, the
 * writer and reader agreeing on limits, saturating merges, format sniffing with clear
 * messages, the JSON reader, long names on the terminal, and the WASM instrumenter on a
 * module that was never validated. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/json_parse.h"
#include "lib/profile.h"
#include "filter/wasm_module.h"

static char tmp_path[64];

static void write_tmp(const void *data, size_t len)
{
	int fd;

	snprintf(tmp_path, sizeof(tmp_path), "/tmp/ap-test-report-XXXXXX");
	fd = mkstemp(tmp_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *mem_write(const struct ap_profile *p, enum ap_format fmt, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(ap_format_write(p, fmt, f, NULL), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_device_refused(void **state)
{
	struct ap_profile *q = NULL;
	char err[512] = "";
	double t0 = now_s();

	(void)state;
	/* /dev/zero never ends: refused before reading a byte, not after filling memory */
	assert_int_equal(ap_read_profile_file("/dev/zero", &q, err, sizeof(err)), -ENODEV);
	assert_null(q);
	assert_non_null(strstr(err, "/dev/zero"));
	assert_non_null(strstr(err, "not a regular file"));
	assert_true(now_s() - t0 < 5.0);
	assert_int_equal(ap_read_profile_file("/tmp", &q, err, sizeof(err)), -EISDIR);
}

static void test_input_size_cap(void **state)
{
	struct ap_read_limits lim = {.max_input = 4096};
	struct ap_profile *q = NULL;
	char line[64], err[512] = "";
	char *text = malloc(8192);
	size_t n = 0;

	(void)state;
	assert_non_null(text);
	while (n + sizeof(line) < 8192) {
		int k = snprintf(line, sizeof(line), "app;main;f%zu 1\n", n);

		memcpy(text + n, line, (size_t)k);
		n += (size_t)k;
	}
	write_tmp(text, n);
	assert_int_equal(ap_read_profile_file_limited(tmp_path, &lim, &q, err, sizeof(err)),
			 -EFBIG);
	assert_null(q);
	assert_non_null(strstr(err, "refusing"));
	assert_non_null(strstr(err, "--max-size"));
	/* the default limit takes it */
	assert_int_equal(ap_read_profile_file(tmp_path, &q, err, sizeof(err)), 0);
	ap_profile_free(q);
	unlink(tmp_path);
	free(text);
}

/* gzip of `n` zero bytes: a 1000:1 bomb */
static uint8_t *gzip_zeros(size_t n, size_t *outlen)
{
	z_stream zs = {0};
	uint8_t *in = calloc(1, n), *out = malloc(n / 100 + 1024);

	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = in;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)(n / 100 + 1024);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	free(in);
	return out;
}

static void test_gzip_bomb(void **state)
{
	struct ap_profile *p = ap_profile_new();
	size_t len;
	uint8_t *gz = gzip_zeros(8u << 20, &len);
	char err[512] = "";

	(void)state;
	assert_true(len < 64 * 1024);
	/* an honest trailer (8 MiB) over a 1 MiB limit: refused before inflating (as bad
	 * data: a truncated file's last bytes read the same) */
	assert_int_equal(ap_read_pprof_limited(gz, len, 1u << 20, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "8 MiB"));
	assert_non_null(strstr(err, "--max-size"));
	/* a lying trailer (1 KiB): inflating stops at the cap all the same */
	gz[len - 4] = 0;
	gz[len - 3] = 4;
	gz[len - 2] = 0;
	gz[len - 1] = 0;
	assert_int_equal(ap_read_pprof_limited(gz, len, 1u << 20, p, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "inflates beyond 1 MiB"));
	assert_non_null(strstr(err, "--max-size"));
	/* through the file reader the limits travel from ap_read_limits */
	write_tmp(gz, len);
	{
		struct ap_read_limits lim = {.max_inflated = 2u << 20};
		struct ap_profile *q = NULL;

		assert_int_equal(
		    ap_read_profile_file_limited(tmp_path, &lim, &q, err, sizeof(err)), -EFBIG);
		assert_non_null(strstr(err, "inflates beyond 2 MiB"));
	}
	unlink(tmp_path);
	free(gz);
	ap_profile_free(p);
}

/* "app;f0;f1;...;f{n-1} 1\n" */
static char *deep_line(size_t n, size_t *len)
{
	char *s = malloc(n * 12 + 32);
	size_t o = 0;

	assert_non_null(s);
	o += (size_t)sprintf(s, "app");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, ";f%zu", i);
	o += (size_t)sprintf(s + o, " 1\n");
	*len = o;
	return s;
}

static void test_stack_depth_agrees(void **state)
{
	struct ap_profile *p = ap_profile_new(), *q;
	char err[512] = "", *buf;
	size_t len, n;
	char *line;
	FILE *in;

	(void)state;
	/* one frame over the limit: the folded reader refuses it with a line number */
	line = deep_line(AP_FORMAT_MAX_STACK_DEPTH + 1, &len);
	in = fmemopen(line, len, "r");
	assert_int_equal(ap_read_folded(in, p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1: stack deeper than 65536 frames"));
	fclose(in);
	free(line);
	ap_profile_free(p);

	/* at the limit: read, written as pprof, read back whole */
	p = ap_profile_new();
	line = deep_line(AP_FORMAT_MAX_STACK_DEPTH, &len);
	in = fmemopen(line, len, "r");
	assert_int_equal(ap_read_folded(in, p, err, sizeof(err)), 0);
	fclose(in);
	free(line);
	buf = mem_write(p, AP_FORMAT_PPROF, &len);
	q = ap_profile_new();
	assert_int_equal(ap_read_pprof(buf, len, q, err, sizeof(err)), 0);
	ap_profile_stack(q, ap_profile_sample(q, 0)->stack, &n);
	assert_int_equal(n, AP_FORMAT_MAX_STACK_DEPTH);
	free(buf);
	ap_profile_free(q);
	ap_profile_free(p);

	/* a deeper model stack (built by hand) is cut by the writer, leaf side kept, and
	 * counted, so the file reads back */
	{
		size_t depth = AP_FORMAT_MAX_STACK_DEPTH + 100;
		uint32_t *ids = calloc(depth, sizeof(*ids));
		struct ap_sample s = {.values = {3}};
		char name[32];
		const uint32_t *st;

		assert_non_null(ids);
		p = ap_profile_new();
		assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
		for (size_t i = 0; i < depth; i++) {
			snprintf(name, sizeof(name), "g%zu", i);
			ids[i] = ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
		}
		s.stack = ap_profile_add_stack(p, ids, depth);
		assert_int_equal(ap_profile_add_sample(p, &s), 0);
		buf = mem_write(p, AP_FORMAT_PPROF, &len);
		q = ap_profile_new();
		assert_int_equal(ap_read_pprof(buf, len, q, err, sizeof(err)), 0);
		st = ap_profile_stack(q, ap_profile_sample(q, 0)->stack, &n);
		assert_int_equal(n, AP_FORMAT_MAX_STACK_DEPTH);
		assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[0])->name), "g0");
		assert_int_equal(ap_profile_get_stat(q, "pprof_stacks_truncated"), 1);
		free(buf);
		free(ids);
		ap_profile_free(q);
		ap_profile_free(p);
	}
}

static void test_merge_saturates(void **state)
{
	static const char text[] = "app;main;hot 18446744073709551615\n"
				   "app;main;hot 7\n"
				   "app;main;cold 1\n";
	struct ap_profile *p = ap_profile_new(), *q;
	char err[512] = "", *buf;
	size_t len;
	FILE *in = fmemopen((void *)text, sizeof(text) - 1, "r");

	(void)state;
	assert_int_equal(ap_read_folded(in, p, err, sizeof(err)), 0);
	fclose(in);
	/* the hot stack stays the hottest instead of wrapping to 6 */
	assert_int_equal(ap_profile_nsamples(p), 2);
	assert_true(ap_profile_sample(p, 0)->values[0] == UINT64_MAX);
	assert_int_equal(ap_profile_get_stat(p, AP_STAT_VALUES_SATURATED), 1);
	assert_true(ap_profile_total(p, 0) == UINT64_MAX);
	/* pprof holds int64: clamped and counted, and the file still reads */
	buf = mem_write(p, AP_FORMAT_PPROF, &len);
	q = ap_profile_new();
	assert_int_equal(ap_read_pprof(buf, len, q, err, sizeof(err)), 0);
	assert_true(ap_profile_sample(q, 0)->values[0] == INT64_MAX);
	assert_int_equal(ap_profile_get_stat(q, "pprof_values_clamped"), 1);
	assert_int_equal(ap_profile_get_stat(q, AP_STAT_VALUES_SATURATED), 1);
	free(buf);
	ap_profile_free(q);
	ap_profile_free(p);
}

/* The writers' own sums (folded lines that merge, flamegraph boxes, the text table) saturate
 * like the model's merges: two processes at UINT64_MAX on one stack stay at UINT64_MAX. */
static void test_writers_saturate(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_sample s = {.values = {UINT64_MAX}};
	uint32_t id;
	size_t len;
	char *out;

	(void)state;
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	id = ap_profile_add_named_frame(p, "hot", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, &id, 1);
	s.comm = ap_profile_intern(p, "app");
	s.pid = 1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	s.pid = 2;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	assert_true(ap_profile_total(p, 0) == UINT64_MAX);
	out = mem_write(p, AP_FORMAT_FOLDED, &len);
	assert_string_equal(out, "app;hot 18446744073709551615\n");
	free(out);
	out = mem_write(p, AP_FORMAT_TEXT, &len);
	assert_non_null(strstr(out, "18,446,744,073,709,551,615"));
	free(out);
	out = mem_write(p, AP_FORMAT_SVG, &len);
	assert_non_null(strstr(out, "data-total=\"18446744073709551615\""));
	free(out);
	ap_profile_free(p);

	/* only empty stacks: the frame pool was never allocated */
	p = ap_profile_new();
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	s.stack = ap_profile_add_stack(p, NULL, 0);
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	{
		size_t n = 1;

		assert_non_null(ap_profile_stack(p, s.stack, &n));
		assert_int_equal(n, 0);
	}
	ap_profile_free(p);
}

static struct ap_profile *rich_profile(void)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_mapping m = {.start = 0x400000, .limit = 0x401000, .offset = 0x1000};
	struct ap_frame f = {0};
	struct ap_label l[2] = {{0}};
	struct ap_sample s = {0};
	uint32_t ids[3], mid;

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	ap_profile_set_default_value(p, 0);
	ap_profile_set_period(p, "cpu", "nanoseconds", 10101010);
	ap_profile_set_time(p, 1700000000123456789ull, 5000000000ull);
	assert_int_equal(ap_profile_set_meta(p, "mode", "cpu"), 0);
	assert_int_equal(ap_profile_set_stat(p, "lost_samples", 2), 0);
	m.file = ap_profile_intern(p, "/usr/bin/app");
	m.build_id = ap_profile_intern(p, "4f1c");
	mid = ap_profile_add_mapping(p, &m);
	f.addr = 0x400123;
	f.rel_addr = 0x123;
	f.name = ap_profile_intern(p, "inner\xff\"q\"");
	f.module = ap_profile_intern(p, "app");
	f.file = ap_profile_intern(p, "main.c");
	f.line = 42;
	f.mapping = mid;
	f.flags = AP_FRAME_INLINED;
	ids[0] = ap_profile_add_frame(p, &f);
	f.flags = 0;
	f.name = ap_profile_intern(p, "main");
	ids[1] = ap_profile_add_frame(p, &f);
	ids[2] = ap_profile_add_named_frame(p, "do_syscall_64", "[kernel.kallsyms]",
					    AP_FRAME_KERNEL);
	s.stack = ap_profile_add_stack(p, ids, 3);
	s.pid = 100;
	s.tid = 101;
	s.comm = ap_profile_intern(p, "app");
	l[0].key = ap_profile_intern(p, "thread");
	l[0].str = ap_profile_intern(p, "io");
	l[1].key = ap_profile_intern(p, "bytes");
	l[1].num = -4096;
	l[1].num_unit = ap_profile_intern(p, "bytes");
	s.labels = ap_profile_add_labels(p, l, 2);
	s.values[0] = 7;
	s.values[1] = 70707070;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	s.stack = ap_profile_add_stack(p, NULL, 0);
	s.labels = 0;
	s.values[0] = 1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	return p;
}

static void test_json_round_trip(void **state)
{
	struct ap_profile *p = rich_profile(), *q = NULL;
	size_t len, len2;
	char *json = mem_write(p, AP_FORMAT_JSON, &len), *json2, err[512] = "";

	(void)state;
	/* aperture report reads its own JSON output, sniffed by its leading '{' */
	write_tmp(json, len);
	assert_int_equal(ap_read_profile_file(tmp_path, &q, err, sizeof(err)), 0);
	unlink(tmp_path);
	assert_int_equal(ap_profile_nsamples(q), 2);
	assert_int_equal(ap_profile_default_value(q), 0);
	assert_true(ap_profile_total(q, 1) == ap_profile_total(p, 1));
	assert_true(ap_profile_total(q, 0) == 8);
	/* nothing lost: the invalid byte came back as the U+FFFD the writer put in its place,
	 * and from then on writing and reading is a fixed point, byte for byte */
	json2 = mem_write(q, AP_FORMAT_JSON, &len2);
	assert_non_null(strstr(json2, "\"inner\xef\xbf\xbd\\\"q\\\"\""));
	ap_profile_free(q);
	q = ap_profile_new();
	assert_int_equal(ap_read_json(json2, len2, 0, q, err, sizeof(err)), 0);
	{
		size_t len3;
		char *json3 = mem_write(q, AP_FORMAT_JSON, &len3);

		assert_int_equal(len2, len3);
		assert_memory_equal(json2, json3, len2);
		/* and it differs from the first only in that one escape (6 bytes -> 3) */
		assert_int_equal(len, len2 + 3);
		free(json3);
	}
	free(json2);
	ap_profile_free(q);

	/* a stack naming a frame that does not exist: refused with a position */
	{
		static const char bad[] =
		    "{\"format\": \"aperture-profile\", \"version\": 1, \"value_types\": [],\n"
		    " \"frames\": [], \"stacks\": [[0]], \"samples\": []}";
		struct ap_profile *r = ap_profile_new();

		assert_int_equal(ap_read_json(bad, sizeof(bad) - 1, 0, r, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "json: line 2"));
		assert_non_null(strstr(err, "does not exist"));
		ap_profile_free(r);
	}
	/* a time beyond int64 (pprof's type for it): refused, not written negative */
	{
		static const char big[] =
		    "{\"format\": \"aperture-profile\", \"version\": 1,\n"
		    " \"start_ns\": 17965658616785326933, \"value_types\": [],\n"
		    " \"frames\": [], \"stacks\": [], \"samples\": []}";
		struct ap_profile *r = ap_profile_new();

		assert_int_equal(ap_read_json(big, sizeof(big) - 1, 0, r, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "\"start_ns\" is not an integer in 0..9223372036854775807"));
		ap_profile_free(r);
	}
	/* another JSON document: says what it expected */
	{
		static const char other[] = "{\"traceEvents\": []}";

		write_tmp(other, sizeof(other) - 1);
		assert_int_equal(ap_read_profile_file(tmp_path, &q, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "json:"));
		assert_non_null(strstr(err, "missing \"format\""));
		assert_null(strstr(err, "folded"));
		unlink(tmp_path);
	}
	free(json);
	ap_profile_free(p);
}

static void test_sniff_messages(void **state)
{
	struct ap_profile *p = rich_profile(), *q = NULL;
	char err[512] = "", *svg;
	size_t len;

	(void)state;
	/* our own SVG: an output-only format, and the message lists what is accepted */
	svg = mem_write(p, AP_FORMAT_SVG, &len);
	write_tmp(svg, len);
	assert_int_equal(ap_read_profile_file(tmp_path, &q, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "SVG"));
	assert_non_null(strstr(err, "pprof"));
	assert_non_null(strstr(err, "Aperture JSON"));
	assert_null(q);
	unlink(tmp_path);
	free(svg);

	/* a JSON memory bomb: many values in few bytes, refused by value count */
	{
		size_t n = 4u << 20;
		char *arr = malloc(n);
		struct ap_profile *r = ap_profile_new();

		assert_non_null(arr);
		arr[0] = '[';
		for (size_t i = 1; i + 1 < n; i += 2)
			memcpy(arr + i, "0,", 2);
		arr[n - 2] = '0';
		arr[n - 1] = ']';
		assert_int_equal(ap_read_json(arr, n, 1u << 20, r, err, sizeof(err)), -EFBIG);
		assert_non_null(strstr(err, "--max-size"));
		ap_profile_free(r);
		free(arr);
	}
	ap_profile_free(p);
}

static void test_text_long_name(void **state)
{
	struct ap_profile *p = ap_profile_new();
	size_t n = 1u << 20, len;
	char *name = malloc(n + 1), *out, *line;
	struct ap_sample s = {.values = {1}};
	uint32_t id;

	(void)state;
	assert_non_null(name);
	memset(name, 'x', n);
	name[n] = '\0';
	memcpy(name + 500, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 12);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	id = ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, &id, 1);
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	out = mem_write(p, AP_FORMAT_TEXT, &len);
	/* the whole table stays small, the name ends in "..." on a character boundary */
	assert_true(len < 4 * AP_FORMAT_MAX_TEXT_NAME);
	line = strstr(out, "xxx");
	assert_non_null(line);
	assert_non_null(strstr(line, "...  app"));
	for (char *c = line; *c != '.'; c++)
		assert_true((unsigned char)*c == 'x' || (unsigned char)*c >= 0x80);
	{
		char *dots = strstr(line, "...");

		/* the byte before the dots ends a character: not a lone lead byte 0xc3 */
		assert_true((unsigned char)dots[-1] != 0xc3);
	}
	free(out);
	free(name);
	ap_profile_free(p);
}

/* A module the parser accepts (it checks structure, not call targets) whose only function
 * calls function 5: the instrumenter must refuse it, not read past its function table. */
static void test_wasm_instrument_bad_call(void **state)
{
	static const uint8_t mod[] = {
	    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, /* magic, version */
	    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,		    /* type 0: () -> () */
	    0x03, 0x02, 0x01, 0x00,			    /* function 0: type 0 */
	    0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x05, 0x0b, /* code: call 5; end */
	};
	struct wasm_limits lim = {.max_module_bytes = 1u << 20,
				  .max_functions = 100,
				  .max_locals = 100,
				  .max_memory_pages = 16,
				  .max_table_elems = 100};
	struct wasm_instrument_opts io = {.max_call_depth = 10, .max_memory_pages = 16};
	struct wasm_module m = {0};
	uint8_t *out = NULL;
	size_t outlen = 0;
	char err[256] = "";

	(void)state;
	assert_int_equal(wasm_module_parse(&m, mod, sizeof(mod), &lim, err, sizeof(err)), 0);
	assert_int_equal(wasm_instrument(&m, &io, &out, &outlen, err, sizeof(err)), -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err, "calls function 5, which does not exist"));
	wasm_module_release(&m);

	/* a function whose type index is past the type table (a hand-made module struct) */
	assert_int_equal(wasm_module_parse(&m, mod, sizeof(mod), &lim, err, sizeof(err)), 0);
	m.funcs[0].type = 7;
	assert_int_equal(wasm_instrument(&m, &io, &out, &outlen, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "type 7"));
	m.funcs[0].type = 0;
	wasm_module_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_device_refused),   cmocka_unit_test(test_input_size_cap),
	    cmocka_unit_test(test_gzip_bomb),	     cmocka_unit_test(test_stack_depth_agrees),
	    cmocka_unit_test(test_merge_saturates),  cmocka_unit_test(test_writers_saturate),
	    cmocka_unit_test(test_json_round_trip),
	    cmocka_unit_test(test_sniff_messages),   cmocka_unit_test(test_text_long_name),
	    cmocka_unit_test(test_wasm_instrument_bad_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
