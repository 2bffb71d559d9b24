// SPDX-License-Identifier: MIT
/* aperture-aggregator's parsers: query times, durations, flags, token files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "server/server.h"

#define NS 1000000000ULL

static void test_times(void **state)
{
	const uint64_t now = 1796000000ULL * NS + 123;
	uint64_t t = 0;

	(void)state;
	assert_int_equal(ap_server_parse_time("now", now, &t), 0);
	assert_true(t == now);
	assert_int_equal(ap_server_parse_time("now-1h", now, &t), 0);
	assert_true(t == now - 3600 * NS);
	assert_int_equal(ap_server_parse_time("now-2d", now, &t), 0);
	assert_true(t == now - 2 * 86400 * NS);
	assert_int_equal(ap_server_parse_time("now-90", now, &t), 0); /* seconds */
	assert_true(t == now - 90 * NS);
	assert_int_equal(ap_server_parse_time("now+5m", now, &t), 0);
	assert_true(t == now + 300 * NS);
	/* the digit count picks the unit */
	assert_int_equal(ap_server_parse_time("1796000000", now, &t), 0);
	assert_true(t == 1796000000ULL * NS);
	assert_int_equal(ap_server_parse_time("1796000000123", now, &t), 0);
	assert_true(t == 1796000000123ULL * 1000000);
	assert_int_equal(ap_server_parse_time("1796000000123456", now, &t), 0);
	assert_true(t == 1796000000123456ULL * 1000);
	assert_int_equal(ap_server_parse_time("1796000000123456789", now, &t), 0);
	assert_true(t == 1796000000123456789ULL);
	/* RFC 3339 */
	assert_int_equal(ap_server_parse_time("2026-12-06T14:00:00Z", now, &t), 0);
	assert_true(t == 1796565600ULL * NS);
	assert_int_equal(ap_server_parse_time("2026-12-06T15:30:00+01:30", now, &t), 0);
	assert_true(t == 1796565600ULL * NS);
	assert_int_equal(ap_server_parse_time("2026-12-06T14:00:00.25Z", now, &t), 0);
	assert_true(t == 1796565600ULL * NS + 250000000);
	assert_int_equal(ap_server_parse_time("2026-12-06 14:00:00z", now, &t), 0);
	assert_true(t == 1796565600ULL * NS);
	/* refused */
	const char *bad[] = { "", "yesterday", "now-", "now-1x", "now*1h", "12345678901234567890",
			      "2026-12-06T14:00:00", "2026-13-06T14:00:00Z", "2026-12-06T14:00Z",
			      "2026-12-06T14:00:00Zjunk", "1796000000 ", "-5", "1e9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ap_server_parse_time(bad[i], now, &t), -EINVAL);
}

static void test_durations(void **state)
{
	uint64_t d = 0;

	(void)state;
	assert_int_equal(ap_server_parse_duration("7d", &d), 0);
	assert_true(d == 7 * 86400 * NS);
	assert_int_equal(ap_server_parse_duration("1.5d", &d), 0);
	assert_true(d == 36 * 3600 * NS);
	assert_int_equal(ap_server_parse_duration("60s", &d), 0);
	assert_true(d == 60 * NS);
	assert_int_equal(ap_server_parse_duration("250ms", &d), 0);
	assert_true(d == 250000000ULL);
	assert_int_not_equal(ap_server_parse_duration("0", &d), 0);
	assert_int_not_equal(ap_server_parse_duration("d", &d), 0);
	assert_int_not_equal(ap_server_parse_duration("7w", &d), 0);
	assert_int_not_equal(ap_server_parse_duration("", &d), 0);
	assert_int_not_equal(ap_server_parse_duration("99999999999999999d", &d), 0);
}

static int parse(struct ap_server_opts *o, const char *a1, const char *a2, const char *a3,
		 const char *a4)
{
	char *argv[6] = { "aperture-aggregator", (char *)a1, (char *)a2, (char *)a3, (char *)a4,
			  NULL };
	int argc = 1;

	while (argc < 5 && argv[argc])
		argc++;
	memset(o, 0, sizeof(*o));
	return ap_server_parse_args(argc, argv, o);
}

static void test_flags(void **state)
{
	struct ap_server_opts o;

	(void)state;
	assert_int_equal(parse(&o, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(o.listen_host, "127.0.0.1");
	assert_int_equal(o.port, 7070);
	assert_string_equal(o.storage, AP_SERVER_DEFAULT_STORAGE);
	assert_true(o.retention_ns == 7 * 86400 * NS);
	assert_true(o.max_body == 32ULL << 20);
	assert_true(o.max_inflated == 8 * (32ULL << 20));
	assert_true(o.threads >= 1);

	assert_int_equal(parse(&o, "--listen", "[::1]:8080", "--retention", "12h"), 0);
	assert_string_equal(o.listen_host, "::1");
	assert_int_equal(o.port, 8080);
	assert_true(o.retention_ns == 12 * 3600 * NS);
	assert_int_equal(parse(&o, "--listen", ":0", "--retention", "0"), 0);
	assert_string_equal(o.listen_host, "0.0.0.0");
	assert_true(o.retention_ns == 0);
	assert_int_equal(parse(&o, "--max-body", "1M", "--threads", "3"), 0);
	assert_true(o.max_body == 1 << 20 && o.max_inflated == 8 << 20 && o.threads == 3);
	/* a ClickHouse store waits on the network: more workers by default, never over --threads */
	assert_int_equal(parse(&o, "--storage", "clickhouse://ch:8123/db", NULL, NULL), 0);
	assert_true(o.threads >= AP_SERVER_CLICKHOUSE_THREADS);
	assert_int_equal(parse(&o, "--storage", "clickhouse://ch:8123/db", "--threads", "3"), 0);
	assert_int_equal(o.threads, 3);
	assert_int_equal(parse(&o, "-h", NULL, NULL, NULL), 0);
	assert_true(o.help);

	/* every mistake: exit status 2 (the message goes to stderr) */
	assert_int_equal(parse(&o, "--listen", "::1:80", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--listen", "127.0.0.1", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--listen", "1.2.3.4:65536", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--retention", "forever", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--max-body", "10", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--threads", "0", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--tls-key", "k.pem", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--storage", "x.db", NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--nope", NULL, NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "stray", NULL, NULL, NULL), AP_SERVER_EXIT_USAGE);
	assert_int_equal(parse(&o, "--threads", NULL, NULL, NULL), AP_SERVER_EXIT_USAGE);
}

static char *tmpfile_with(const char *text, mode_t mode)
{
	char *path = strdup("/tmp/ap-token-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
	return path;
}

static void test_tokens(void **state)
{
	char err[256], *tok = NULL, *p;

	(void)state;
	p = tmpfile_with("  s3cret \nsecond line\n", 0600);
	assert_int_equal(ap_server_read_token(p, &tok, err, sizeof(err)), 0);
	assert_string_equal(tok, "s3cret");
	free(tok);
	unlink(p);
	free(p);

	p = tmpfile_with(" \n", 0600);
	assert_int_equal(ap_server_read_token(p, &tok, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	unlink(p);
	free(p);

	p = tmpfile_with("tok\n", 0622);
	assert_int_equal(ap_server_read_token(p, &tok, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable"));
	unlink(p);
	free(p);

	p = tmpfile_with("to\x01k\n", 0600);
	assert_int_equal(ap_server_read_token(p, &tok, err, sizeof(err)), -EINVAL);
	unlink(p);
	free(p);

	assert_int_equal(ap_server_read_token("/nonexistent/token", &tok, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/token"));
	assert_int_equal(ap_server_read_token("/tmp", &tok, err, sizeof(err)), -EINVAL);
	assert_null(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
