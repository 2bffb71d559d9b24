// SPDX-License-Identifier: MIT
/* Output files (src/agent/output.c): names per mode, regular files replaced only when
 * complete, devices written in place, link rules, the real errno of a failed write. */
#include <dirent.h>
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

#include "agent/output.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ap_output_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, ".."));
	closedir(d);
	return n;
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void test_paths(void **state)
{
	char buf[256];

	(void)state;
	ap_output_path("out.svg", "cpu", false, buf, sizeof(buf));
	assert_string_equal(buf, "out.svg");
	ap_output_path("d/out.pb.gz", "lock", true, buf, sizeof(buf));
	assert_string_equal(buf, "d/out.lock.pb.gz");
	ap_output_path("d.x/out", "cpu", true, buf, sizeof(buf));
	assert_string_equal(buf, "d.x/out.cpu");
	/* devices take every mode's profile: no /dev/null.cpu files */
	ap_output_path("/dev/null", "cpu", true, buf, sizeof(buf));
	assert_string_equal(buf, "/dev/null");
	ap_output_path("-", "cpu", true, buf, sizeof(buf));
	assert_string_equal(buf, "-");
}

/* A regular file appears only at commit, complete; a discarded one never; no temporaries. */
static void test_regular(void **state)
{
	struct ap_output o;
	char path[128], msg[256], buf[64];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/p.folded", dir);
	f = fopen(path, "w");
	fputs("old\n", f);
	fclose(f);

	assert_int_equal(ap_output_open(&o, path, msg, sizeof(msg)), 0);
	fputs("new\n", o.f);
	fflush(o.f);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "old\n"); /* still the old one while writing */
	assert_int_equal(ap_output_commit(&o), 0);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "new\n");
	assert_int_equal(count_entries(), 1);

	assert_int_equal(ap_output_open(&o, path, msg, sizeof(msg)), 0);
	fputs("partial", o.f);
	ap_output_discard(&o);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "new\n");
	assert_int_equal(count_entries(), 1);
	unlink(path);
}

static void test_devices(void **state)
{
	struct ap_output o;
	struct stat st0, st1;
	char msg[256];

	(void)state;
	assert_int_equal(stat("/dev/null", &st0), 0);
	assert_int_equal(ap_output_open(&o, "/dev/null", msg, sizeof(msg)), 0);
	assert_int_equal(o.kind, AP_OUTPUT_IN_PLACE);
	fputs("x\n", o.f);
	assert_int_equal(ap_output_commit(&o), 0);
	assert_int_equal(lstat("/dev/null", &st1), 0);
	assert_true(S_ISCHR(st1.st_mode) && st1.st_ino == st0.st_ino);

	/* a full device: ENOSPC, also where a writer only saw a failed stream (-EIO) */
	assert_int_equal(ap_output_open(&o, "/dev/full", msg, sizeof(msg)), 0);
	for (int i = 0; i < 20000; i++)
		fputs("0123456789", o.f);
	assert_true(ferror(o.f));
	assert_int_equal(ap_output_error(&o, -EIO), -ENOSPC);
	assert_int_equal(ap_output_commit(&o), -ENOSPC);

	assert_int_equal(ap_output_open(&o, dir, msg, sizeof(msg)), -EISDIR);
	assert_non_null(strstr(msg, "is a directory"));
}

static void test_links(void **state)
{
	struct ap_output o;
	char link[128], target[128], msg[256], buf[64];

	(void)state;
	snprintf(link, sizeof(link), "%s/l.folded", dir);
	snprintf(target, sizeof(target), "%s/t.folded", dir);
	/* one's own link to a file not written yet: the target is created */
	assert_int_equal(symlink("t.folded", link), 0);
	assert_int_equal(ap_output_open(&o, link, msg, sizeof(msg)), 0);
	fputs("through\n", o.f);
	assert_int_equal(ap_output_commit(&o), 0);
	slurp(target, buf, sizeof(buf));
	assert_string_equal(buf, "through\n");
	assert_int_equal(readlink(link, buf, sizeof(buf)), 8); /* still the link */

	/* another user's link is refused (needs root to make one) */
	if (geteuid() == 0) {
		assert_int_equal(lchown(link, 65534, 65534), 0);
		assert_int_equal(ap_output_open(&o, link, msg, sizeof(msg)), -EPERM);
		assert_non_null(strstr(msg, "owned by uid 65534"));
	}
	unlink(link);
	unlink(target);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_regular),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_links),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
