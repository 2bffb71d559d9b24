// SPDX-License-Identifier: MIT
/* The multipart/form-data parser (src/server/multipart.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/multipart.h"

static void test_boundary(void **state)
{
	static const struct {
		const char *ct, *want;
	} ok[] = {
		{"multipart/form-data; boundary=abc", "abc"},
		{"Multipart/Form-Data;BOUNDARY=abc", "abc"},
		{"multipart/form-data; charset=utf-8; boundary=\"a b:c\"", "a b:c"},
		{"multipart/form-data; boundary=\"q\\\"x\";", "q\"x"},
		{"  multipart/form-data ; boundary=--------------------------4173842079", "--------------------------4173842079"},
	};
	static const char *const notform[] = {"application/octet-stream", "multipart/mixed; boundary=a",
					      "multipart/form-datax; boundary=a", ""};
	static const char *const bad[] = {
		"multipart/form-data",
		"multipart/form-data; boundary=",
		"multipart/form-data; boundary=\"unterminated",
		"multipart/form-data; boundary=a; boundary=b",
		"multipart/form-data; boundary=01234567890123456789012345678901234567890123456789012345678901234567890",
		"multipart/form-data; =x",
	};
	char b[AP_MP_MAX_BOUNDARY + 1], err[256];
	(void)state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (ap_mp_boundary(ok[i].ct, b, sizeof(b), err, sizeof(err)))
			fail_msg("%s: %s", ok[i].ct, err);
		assert_string_equal(b, ok[i].want);
	}
	assert_int_equal(ap_mp_boundary(NULL, b, sizeof(b), err, sizeof(err)), -ENOENT);
	for (size_t i = 0; i < sizeof(notform) / sizeof(notform[0]); i++)
		assert_int_equal(ap_mp_boundary(notform[i], b, sizeof(b), err, sizeof(err)),
				 -ENOENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (ap_mp_boundary(bad[i], b, sizeof(b), err, sizeof(err)) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_true(strlen(err) > 10);
	}
}

static int parse(const char *body, const char *boundary, struct ap_mp_part *parts, size_t max,
		 size_t *n, char *err, size_t errlen)
{
	return ap_mp_parse((const uint8_t *)body, strlen(body), boundary, parts, max, n, err,
			   errlen);
}

static void test_parts_ok(void **state)
{
	static const char body[] =
	    "preamble to ignore\r\n"
	    "--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "X-Other: ignored\r\n"
	    "\r\n"
	    "bin\r\ndata with --XyZ inside a line\r\n--XyZnot a delimiter: data\r\n"
	    "--XyZ  \r\n"
	    "content-disposition: FORM-DATA; name=sample_type_config\r\n"
	    "\r\n"
	    "{}\r\n"
	    "--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"q\\\"uote\"\r\n"
	    "\r\n"
	    "\r\n"
	    "--XyZ--\r\n"
	    "epilogue --XyZ\r\n";
	static const char lf[] = "--b\nContent-Disposition: form-data; name=a\n\nx\n--b--";
	struct ap_mp_part p[4];
	size_t n;
	char err[256];
	(void)state;

	if (parse(body, "XyZ", p, 4, &n, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].name, "profile");
	assert_string_equal(p[0].filename, "profile.pprof");
	assert_string_equal(p[0].content_type, "application/octet-stream");
	assert_int_equal(p[0].len, strlen("bin\r\ndata with --XyZ inside a line\r\n--XyZnot a delimiter: data"));
	assert_memory_equal(p[0].data, "bin\r\ndata with --XyZ inside a line\r\n--XyZnot a delimiter: data", p[0].len);
	/* no copies: the data is the body's bytes */
	assert_true(p[0].data > (const uint8_t *)body &&
		    p[0].data < (const uint8_t *)body + sizeof(body));
	assert_int_equal(p[0].offset, (size_t)(p[0].data - (const uint8_t *)body));
	assert_string_equal(p[1].name, "sample_type_config");
	assert_string_equal(p[1].filename, "");
	assert_int_equal(p[1].len, 2);
	assert_string_equal(p[2].name, "q\"uote");
	assert_int_equal(p[2].len, 0);
	assert_ptr_equal(ap_mp_find(p, n, "sample_type_config"), &p[1]);
	assert_null(ap_mp_find(p, n, "nope"));

	/* bare LF line endings (lenient, as Go's reader) */
	if (parse(lf, "b", p, 4, &n, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].len, 1);
	assert_int_equal(p[0].data[0], 'x');
}

static void test_malformed(void **state)
{
	static const struct {
		const char *body, *needle;
	} bad[] = {
		{"", "holds no delimiter"},
		{"no delimiter here", "holds no delimiter"},
		{"--b\r\n", "not terminated by an empty line"},
		{"--b\r\nContent-Disposition: form-data; name=a\r\n\r\ndata", "not ended by"},
		{"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b", "without the close"},
		{"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "no Content-Disposition"},
		{"--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", "expected form-data"},
		{"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "has no name"},
		{"--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--b--", "has no name"},
		{"--b\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nx\r\n--b--", "two name"},
		{"--b\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
		 "name=a\r\n\r\nx\r\n--b--",
		 "two Content-Disposition"},
		{"--b\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\nx\r\n--b--", "folded"},
		{"--b\r\nno colon\r\n\r\nx\r\n--b--", "without a name"},
		{"--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--b--", "malformed"},
		/* a line that only starts like a delimiter is not one */
		{"--bx\r\n", "holds no delimiter"},
	};
	struct ap_mp_part p[4];
	size_t n;
	char err[256], big[4096];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i].body, "b", p, 4, &n, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted #%zu", i);
		if (!strstr(err, bad[i].needle))
			fail_msg("#%zu: \"%s\" does not say \"%s\"", i, err, bad[i].needle);
	}
	/* a header line over the limit */
	n = (size_t)snprintf(big, sizeof(big), "--b\r\nX-Long: ");
	memset(big + n, 'a', AP_MP_MAX_HEADER_LINE);
	strcpy(big + n + AP_MP_MAX_HEADER_LINE, "\r\n\r\nx\r\n--b--");
	assert_int_equal(parse(big, "b", p, 4, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	/* too many header lines */
	n = (size_t)snprintf(big, sizeof(big), "--b\r\n");
	for (int i = 0; i <= AP_MP_MAX_HEADERS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-H%d: v\r\n", i);
	snprintf(big + n, sizeof(big) - n, "\r\nx\r\n--b--");
	assert_int_equal(parse(big, "b", p, 4, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "header lines"));
	/* more parts than room: -E2BIG */
	n = 0;
	for (int i = 0; i < 5; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "--b\r\nContent-Disposition: form-data; name=p%d\r\n\r\nx\r\n",
				      i);
	snprintf(big + n, sizeof(big) - n, "--b--\r\n");
	assert_int_equal(parse(big, "b", p, 4, &n, err, sizeof(err)), -E2BIG);
	assert_int_equal(n, 4);
	/* a NUL byte in a header line */
	{
		static const char nul[] = "--b\r\nContent-Disposition: form-data; name=a\0x\r\n\r\nx"
					  "\r\n--b--";

		assert_int_equal(ap_mp_parse((const uint8_t *)nul, sizeof(nul) - 1, "b", p, 4, &n,
					     err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "NUL"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_parts_ok),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
