// SPDX-License-Identifier: MIT
/*
 * Pyroscope's /ingest decoder (src/server/ingest_pyroscope.c) on what real clients sent
 * (tests/data/pyroscope, recorded by capture.py): @pyroscope/nodejs 0.6.4 (raw gzipped pprof,
 * format=pprof, s times, Bearer/Basic, X-Scope-OrgID), pyroscope-go's wire format with real Go
 * runtime profiles (multipart + sample_type_config, ns times), the Python example (multipart,
 * name only), @pyroscope/nodejs 0.4's multipart, and curl's folded/lines bodies; then every
 * kind of malformed input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <cmocka.h>

#include "test_ingest_util.h"

#define NS 1000000000ull

static uint64_t arg_u64(const struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->req.nargs; i++)
		if (!strcmp(f->args[i].name, name))
			return strtoull(f->args[i].value, NULL, 10);
	fail_msg("fixture has no argument %s", name);
	return 0;
}

static bool has_arg(const struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->req.nargs; i++)
		if (!strcmp(f->args[i].name, name))
			return true;
	return false;
}

static void decode_ok(struct fixture *f, const char *name, struct ap_ingest *in)
{
	char err[512] = "";
	int rc;

	assert_int_equal(fix_load(f, name), 0);
	rc = ap_ingest_decode_pyroscope(&f->req, in, err, sizeof(err));
	if (rc)
		fail_msg("%s: %d: %s", name, rc, err);
	assert_null(in->push_id);
	assert_non_null(in->profile);
}

static void test_nodejs_06(void **state)
{
	char name[64];
	size_t wall = 0, memory = 0;
	(void)state;

	for (int i = 0; i < 5; i++) {
		struct fixture f;
		struct ap_ingest in;
		const char *mode;

		snprintf(name, sizeof(name), "pyroscope/node_bearer_%d", i);
		decode_ok(&f, name, &in);
		assert_string_equal(f.authorization, "Bearer tok123");
		assert_string_equal(fix_label(&in, "service_name"), "nodeapp");
		/* the client's own labels keep their names, dots included */
		assert_string_equal(fix_label(&in, "otel.scope.name"), "com.grafana.pyroscope/nodejs");
		assert_string_equal(fix_label(&in, "process.runtime.name"), "nodejs");
		assert_string_equal(fix_label(&in, "region"), "local");
		assert_string_equal(fix_label(&in, "host"), "h1");
		assert_string_equal(fix_label(&in, "tenant"), "team-a");
		/* from/until in seconds (10 digits) */
		assert_int_equal(in.from_ns, arg_u64(&f, "from") * NS);
		assert_int_equal(in.until_ns, arg_u64(&f, "until") * NS);
		mode = fix_label(&in, "mode");
		assert_non_null(mode);
		/* the wall profiler sends sampleRate, the heap profiler does not */
		if (has_arg(&f, "sampleRate")) {
			assert_string_equal(mode, "wall");
			assert_int_equal(ap_profile_value_index(in.profile, "wall"), 1);
			assert_true(ap_profile_total(in.profile, 0) > 0);
			assert_true(fix_has_frame(in.profile, "aperture_pyro_burn"));
			/* wrapWithLabels: a sample label, not a push label */
			assert_true(fix_has_sample_label(in.profile, "endpoint", "/burn"));
			assert_null(fix_label(&in, "endpoint"));
			wall++;
		} else {
			assert_string_equal(mode, "memory");
			assert_true(ap_profile_value_index(in.profile, "inuse_space") >= 0);
			memory++;
		}
		ap_ingest_free(&in);
		fix_free(&f);
	}
	assert_true(wall >= 2);
	assert_true(memory >= 1);
}

static void test_nodejs_basic_cputime(void **state)
{
	struct fixture f;
	struct ap_ingest in;
	(void)state;

	decode_ok(&f, "pyroscope/node_basic_0", &in);
	assert_true(!strncmp(f.authorization, "Basic ", 6));
	assert_null(fix_label(&in, "tenant"));
	/* wall + collectCpuTime: samples, wall and cpu; any wall type makes it wall */
	assert_string_equal(fix_label(&in, "mode"), "wall");
	assert_true(ap_profile_value_index(in.profile, "cpu") >= 0);
	ap_ingest_free(&in);
	fix_free(&f);
}

static void test_go(void **state)
{
	static const struct {
		const char *name, *mode, *vtype;
	} want[] = {
		{"pyroscope/go_0", "process_cpu", "cpu"},
		{"pyroscope/go_1", "memory", "alloc_space"},
		/* sample_type_config renames contentions/delay to mutex_count/mutex_duration */
		{"pyroscope/go_2", "mutex", "mutex_duration"},
		{"pyroscope/go_3", "goroutines", "goroutines"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct fixture f;
		struct ap_ingest in;

		decode_ok(&f, want[i].name, &in);
		assert_string_equal(fix_label(&in, "mode"), want[i].mode);
		assert_string_equal(fix_label(&in, "service_name"), "goapp");
		assert_string_equal(fix_label(&in, "k8s.pod"), "pod-1");
		assert_string_equal(fix_label(&in, "env"), "test");
		assert_string_equal(fix_label(&in, "tenant"), "team-go");
		/* 19 digits: nanoseconds as they are */
		assert_int_equal(in.from_ns, arg_u64(&f, "from"));
		assert_int_equal(in.until_ns, arg_u64(&f, "until"));
		assert_true(ap_profile_value_index(in.profile, want[i].vtype) >= 0);
		if (i == 0) {
			assert_true(fix_has_frame(in.profile, "main.apertureGoBurn"));
			assert_true(ap_profile_total(in.profile, 1) > 0);
		}
		if (i == 2) { /* the pprof's own unit is kept */
			int vi = ap_profile_value_index(in.profile, "mutex_duration");

			assert_string_equal(
			    ap_profile_str(in.profile,
					   ap_profile_value_type(in.profile, (size_t)vi)->unit),
			    "nanoseconds");
			assert_int_equal(ap_profile_value_index(in.profile, "delay"), -1);
		}
		ap_ingest_free(&in);
		fix_free(&f);
	}
}

static void test_python_and_node04(void **state)
{
	struct fixture f, g;
	struct ap_ingest in, ref;
	(void)state;

	/* the Python example: multipart, only name=; the profile's own time is used */
	decode_ok(&f, "pyroscope/py_0", &in);
	assert_string_equal(fix_label(&in, "service_name"), "pyapp");
	assert_string_equal(fix_label(&in, "mode"), "process_cpu");
	assert_true(ap_profile_value_index(in.profile, "cpu_samples") >= 0);
	assert_int_equal(in.from_ns, ap_profile_start_ns(in.profile));
	assert_true(in.from_ns > 0 && in.until_ns >= in.from_ns);
	ap_ingest_free(&in);
	fix_free(&f);

	/* 0.4's multipart around the same pprof as 0.6's raw body: the same profile */
	decode_ok(&f, "pyroscope/py_1", &in);
	decode_ok(&g, "pyroscope/node_bearer_0", &ref);
	assert_string_equal(fix_label(&in, "service_name"), "nodeapp04");
	assert_string_equal(fix_label(&in, "mode"), fix_label(&ref, "mode"));
	assert_int_equal(ap_profile_nsamples(in.profile), ap_profile_nsamples(ref.profile));
	assert_int_equal(ap_profile_total(in.profile, 0), ap_profile_total(ref.profile, 0));
	ap_ingest_free(&in);
	ap_ingest_free(&ref);
	fix_free(&f);
	fix_free(&g);
}

static void test_curl_text(void **state)
{
	struct fixture f;
	struct ap_ingest in;
	struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 6};
	(void)state;

	/* folded without format=: groups */
	decode_ok(&f, "pyroscope/curl_0", &in);
	assert_string_equal(fix_label(&in, "service_name"), "curlapp");
	assert_string_equal(fix_label(&in, "mode"), "process_cpu");
	assert_string_equal(fix_label(&in, "team.name"), "core");
	assert_int_equal(ap_profile_total(in.profile, 0), 40 + 25 + 10 + 5);
	assert_string_equal(fix_vtype(in.profile, 0), "samples");
	assert_true(fix_has_frame(in.profile, "escape_html"));
	assert_int_equal(in.from_ns, arg_u64(&f, "from") * NS);
	assert_int_equal(ap_profile_period(in.profile), NS / 100);
	ap_ingest_free(&in);
	fix_free(&f);

	/* groups, wall, 13 digits = ms, sampleRate 99 */
	decode_ok(&f, "pyroscope/curl_1", &in);
	assert_string_equal(fix_label(&in, "mode"), "wall");
	assert_int_equal(in.from_ns, arg_u64(&f, "from") * 1000000);
	assert_int_equal(in.until_ns, arg_u64(&f, "until") * 1000000);
	assert_int_equal(ap_profile_period(in.profile), NS / 99);
	ap_ingest_free(&in);
	fix_free(&f);

	/* lines: one sample per line; now-10s */
	decode_ok(&f, "pyroscope/curl_2", &in);
	assert_string_equal(fix_label(&in, "mode"), "process_cpu");
	assert_int_equal(ap_profile_total(in.profile, 0), 5);
	assert_int_equal(in.from_ns, f.req.now_ns - 10 * NS);
	assert_int_equal(in.until_ns, f.req.now_ns);
	ap_ingest_free(&in);
	fix_free(&f);

	/* lines, memory type from the app name's suffix, 8-digit dates */
	decode_ok(&f, "pyroscope/curl_3", &in);
	assert_string_equal(fix_label(&in, "service_name"), "curlapp");
	assert_string_equal(fix_label(&in, "mode"), "memory");
	assert_string_equal(fix_vtype(in.profile, 0), "alloc_space");
	assert_int_equal(in.from_ns, (uint64_t)timegm(&tm) * NS);
	assert_int_equal(in.until_ns - in.from_ns, 86400 * NS);
	ap_ingest_free(&in);
	fix_free(&f);
}

/* A request built in the test: query string, content type, body. */
static int decode_q(const char *query, const char *ctype, const void *body, size_t len,
		    uint64_t max_inflated, struct ap_ingest *in, char *err, size_t errlen)
{
	struct fixture f;
	int rc;

	memset(&f, 0, sizeof(f));
	f.req.args = f.args;
	fix_set_query(&f, query);
	f.req.content_type = ctype;
	f.req.body = body;
	f.req.len = len;
	f.req.now_ns = 1796574800ull * NS;
	f.req.max_inflated = max_inflated;
	rc = ap_ingest_decode_pyroscope(&f.req, in, err, errlen);
	fix_free(&f);
	return rc;
}

static void expect_einval(const char *query, const char *ctype, const char *body,
			  const char *needle)
{
	struct ap_ingest in;
	char err[512] = "";
	int rc = decode_q(query, ctype, body, strlen(body), 1 << 20, &in, err, sizeof(err));

	if (rc != -EINVAL)
		fail_msg("%s: expected -EINVAL, got %d (%s)", query, rc, err);
	if (!strstr(err, needle))
		fail_msg("%s: message \"%s\" does not say \"%s\"", query, err, needle);
	/* the output is left empty */
	assert_null(in.profile);
	assert_int_equal(in.nlabels, 0);
}

static void test_time_rules(void **state)
{
	static const struct {
		const char *from;
		uint64_t ns;
	} cases[] = {
		{"1796574700", 1796574700ull * NS},
		{"1796574700123", 1796574700123ull * 1000000},
		{"1796574700123456", 1796574700123456ull * 1000},
		{"1796574700123456789", 1796574700123456789ull},
		{"now", 1796574800ull * NS},
		{"now-1h", (1796574800ull - 3600) * NS},
		{"now-2d", (1796574800ull - 2 * 86400) * NS},
		{"20261206", 0}, /* computed below */
		/* 8 digits that are no date: seconds */
		{"99999999", 99999999ull * NS},
	};
	struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 6};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ap_ingest in;
		char q[128], err[512] = "";
		uint64_t want = cases[i].ns ? cases[i].ns : (uint64_t)timegm(&tm) * NS;
		int rc;

		snprintf(q, sizeof(q), "name=t.cpu&from=%s&until=1796574900", cases[i].from);
		rc = decode_q(q, NULL, "a;b 1\n", 6, 0, &in, err, sizeof(err));
		if (rc)
			fail_msg("%s: %s", cases[i].from, err);
		assert_int_equal(in.from_ns, want);
		ap_ingest_free(&in);
	}
	expect_einval("name=t&from=12ab", NULL, "a 1", "from=\"12ab\"");
	expect_einval("name=t&from=now-1y", NULL, "a 1", "now-1h");
	expect_einval("name=t&from=1796574900&until=1796574800", NULL, "a 1", "before");
	/* 11 digits are seconds: 1.8e19 ns does not fit pprof's int64 times (fuzz_ingest_pyroscope
	 * found the round trip failing) */
	expect_einval("name=t&from=1796574700&until=17965747102", NULL, "a 1", "year 2262");
}

static void test_malformed(void **state)
{
	static const char form_nopro[] = "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n"
					 "\r\nx\r\n--b--\r\n";
	static const char form_prev[] =
	    "--b\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\n"
	    "x\r\n--b\r\nContent-Disposition: form-data; name=\"prev_profile\"\r\n\r\ny\r\n--b--";
	char big[1200], many[1024];
	size_t n = 0;
	(void)state;

	expect_einval("format=pprof", NULL, "x", "name is missing");
	expect_einval("name=", NULL, "a 1", "name is missing");
	expect_einval("name=%7Ba%3Db%7D", NULL, "a 1", "no application name");
	expect_einval("name=app%7Ba%3Db", NULL, "a 1", "do not end with '}'");
	expect_einval("name=app%7Bab%7D", NULL, "a 1", "has no '='");
	expect_einval("name=app%7B1x%3Dy%7D", NULL, "a 1", "\"1x\" is not valid");
	expect_einval("name=app%7Bbad-name%3Dy%7D", NULL, "a 1", "bad-name");
	expect_einval("name=app%7Bk%3D%7D", NULL, "a 1", "k is empty");
	expect_einval("name=app%7Bk%3Da%2Ck%3Db%7D", NULL, "a 1", "twice");
	expect_einval("name=app%7Bmode%3Dx%7D", NULL, "a 1", "mode is reserved");
	expect_einval("name=app.cpu", NULL, "a;b 1\na;b\n", "line 2");
	expect_einval("name=app.cpu", NULL, "a;;b 1\n", "empty frame name");
	expect_einval("name=app.cpu", NULL, "a;b x\n", "line 1");
	expect_einval("name=app.cpu&format=lines", NULL, "a\x01;b\n", "control character");
	expect_einval("name=my.app", NULL, "a 1\n", "unknown profile type \"app\"");
	expect_einval("name=app&format=jfr", NULL, "x", "not supported");
	expect_einval("name=app&format=trie", NULL, "x", "trie/tree");
	expect_einval("name=app&format=bogus", NULL, "x", "unknown format");
	expect_einval("name=app&format=pprof", NULL, "not a profile", "pprof");
	expect_einval("name=app", "multipart/form-data; boundary=b", form_nopro,
		      "no field \"profile\"");
	expect_einval("name=app", "multipart/form-data; boundary=b", form_prev,
		      "unsupported client version");
	expect_einval("name=app", "multipart/form-data", "x", "without a boundary");
	expect_einval("name=app", "multipart/form-data; boundary=b", "--b\r\nbroken",
		      "multipart");

	/* a label value over AP_STORE_MAX_LABEL_VALUE, and too many labels */
	memset(big, 'v', sizeof(big));
	snprintf(big, sizeof(big), "name=app%%7Bk%%3D");
	memset(big + strlen(big), 'v', AP_STORE_MAX_LABEL_VALUE + 1);
	big[16 + AP_STORE_MAX_LABEL_VALUE + 1] = '\0';
	strcat(big, "%7D");
	expect_einval(big, NULL, "a 1", "longer than");
	n = (size_t)snprintf(many, sizeof(many), "name=app%%7B");
	for (int i = 0; i < AP_STORE_MAX_LABELS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%sl%d%%3Dv", i ? "%2C" : "", i);
	snprintf(many + n, sizeof(many) - n, "%%7D");
	expect_einval(many, NULL, "a 1", "more than");
}

/* gzip `len` zero bytes; optionally lie in the trailer about the size */
static uint8_t *gzip_zeros(size_t len, bool lie, size_t *out_len)
{
	z_stream zs = {0};
	size_t cap = len / 500 + 1024;
	uint8_t *in = calloc(1, len), *out = malloc(cap);

	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	free(in);
	if (lie) /* the trailer's size mod 2^32: claim 100 bytes */
		memcpy(out + *out_len - 4, "\x64\0\0\0", 4);
	return out;
}

static void test_gzip_bomb(void **state)
{
	static const char *const q[] = {"name=app&format=pprof", "name=app"};
	(void)state;

	for (int lie = 0; lie < 2; lie++) {
		size_t len;
		uint8_t *bomb = gzip_zeros(16 << 20, lie, &len);

		for (size_t i = 0; i < 2; i++) {
			struct ap_ingest in;
			char err[512] = "", *form = NULL;
			const char *ct = NULL;
			const void *body = bomb;
			size_t blen = len;
			int rc;

			if (i == 1) { /* the same inside a multipart form */
				static const char head[] =
				    "--b\r\nContent-Disposition: form-data; name=\"profile\"; "
				    "filename=\"profile.pprof\"\r\n\r\n";

				form = malloc(len + 64 + sizeof(head));
				memcpy(form, head, sizeof(head) - 1);
				memcpy(form + sizeof(head) - 1, bomb, len);
				memcpy(form + sizeof(head) - 1 + len, "\r\n--b--\r\n", 9);
				blen = sizeof(head) - 1 + len + 9;
				body = form;
				ct = "multipart/form-data; boundary=b";
			}
			rc = decode_q(q[i], ct, body, blen, 1 << 20, &in, err, sizeof(err));
			if (rc != -EFBIG)
				fail_msg("lie=%d form=%zu: expected -EFBIG, got %d: %s", lie, i, rc,
					 err);
			assert_non_null(strstr(err, "limit of 1 MiB"));
			assert_null(in.profile);
			free(form);
		}
		free(bomb);
	}
}

static void test_sample_rate_fallback(void **state)
{
	struct ap_ingest in;
	char err[256];
	(void)state;

	/* Pyroscope takes a bad sampleRate as 100; so does this */
	assert_int_equal(decode_q("name=a.cpu&sampleRate=-5", NULL, "x 1", 3, 0, &in, err,
				  sizeof(err)),
			 0);
	assert_int_equal(ap_profile_period(in.profile), NS / 100);
	ap_ingest_free(&in);
	/* service_name given as a label wins over the app name; the tenant header is a label */
	{
		struct fixture f;

		memset(&f, 0, sizeof(f));
		f.req.args = f.args;
		fix_set_query(&f, "name=a%7Bservice_name%3Dsvc%7D");
		f.req.body = (const uint8_t *)"x 1";
		f.req.len = 3;
		f.req.tenant = "t1";
		assert_int_equal(ap_ingest_decode_pyroscope(&f.req, &in, err, sizeof(err)), 0);
		assert_string_equal(fix_label(&in, "service_name"), "svc");
		assert_string_equal(fix_label(&in, "tenant"), "t1");
		assert_int_equal(in.nlabels, 3);
		ap_ingest_free(&in);
		fix_free(&f);
	}
}

static void test_shapes(void **state)
{
	struct fixture f, g;
	struct ap_ingest in, ref;
	char err[512] = "";
	(void)state;

	/* a form sent with format=pprof is read as the form its Content-Type says it is */
	assert_int_equal(fix_load(&f, "pyroscope/py_1"), 0);
	decode_ok(&g, "pyroscope/node_bearer_0", &ref);
	fix_set_query(&f, "format=pprof");
	assert_int_equal(ap_ingest_decode_pyroscope(&f.req, &in, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_total(in.profile, 0), ap_profile_total(ref.profile, 0));
	ap_ingest_free(&in);
	/* a text body with a Content-Encoding is refused (Pyroscope does not decode it) */
	{
		struct fixture t;

		memset(&t, 0, sizeof(t));
		t.req.args = t.args;
		fix_set_query(&t, "name=a.cpu");
		t.req.body = (const uint8_t *)"a;b 1\n";
		t.req.len = 6;
		t.req.content_encoding = "gzip";
		assert_int_equal(ap_ingest_decode_pyroscope(&t.req, &in, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "Content-Encoding gzip"));
		/* the same pprof body is recognised by its magic bytes whatever the header says */
		t.req.body = g.body;
		t.req.len = g.len;
		fix_set_query(&t, "format=pprof");
		assert_int_equal(ap_ingest_decode_pyroscope(&t.req, &in, err, sizeof(err)), 0);
		ap_ingest_free(&in);
		fix_free(&t);
	}
	ap_ingest_free(&ref);
	fix_free(&f);
	fix_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodejs_06),
		cmocka_unit_test(test_nodejs_basic_cputime),
		cmocka_unit_test(test_go),
		cmocka_unit_test(test_python_and_node04),
		cmocka_unit_test(test_curl_text),
		cmocka_unit_test(test_time_rules),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_gzip_bomb),
		cmocka_unit_test(test_sample_rate_fallback),
		cmocka_unit_test(test_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
