// SPDX-License-Identifier: MIT
/* ap_open_untrusted and friends (src/lib/safe_open.c): what a planted file can and cannot
 * make the agent open. A temporary tree plays a container root with hostile links in it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/cache_dir.h"
#include "lib/safe_open.h"

static char dir[64], root[128], host[128];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *at(const char *base, const char *rel)
{
	static char buf[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, rel);
	return buf[i];
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ap_safe_open.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(host, sizeof(host), "%s/host_secret", dir);
	mkdir(root, 0755);
	mkdir(at(root, "lib"), 0755);
	mkdir(at(root, "tmp"), 0755);
	put(host, "HOST");
	put(at(root, "lib/real.so"), "CONTAINER");
	put(at(root, "host_secret"), "CONTAINER-UP");
	/* the host file's absolute path, inside the root too */
	mkdir(at(root, "tmp"), 0755);
	mkdir(at(root, dir + 1), 0755);
	put(at(root, host + 1), "CONTAINER-SAME-NAME");
	/* hostile links, as a container would hold them */
	symlink(host, at(root, "lib/abs.so"));	      /* absolute: means the container's path */
	symlink("../../../../../../host_secret", at(root, "lib/up.so"));
	symlink("real.so", at(root, "lib/rel.so"));
	symlink("/proc/self/root/host_secret", at(root, "lib/magic.so"));
	mkfifo(at(root, "lib/fifo.so"), 0644);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void read_all(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	assert_true(n >= 0);
	buf[n] = '\0';
}

static void test_in_root_stays_in_root(void **state)
{
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;
	char buf[64];

	(void)state;
	assert_true(rfd >= 0);
	/* an absolute symlink and ".." resolve inside the root: the container's file of that
	 * name, never the host's */
	fd = ap_open_untrusted(rfd, "/lib/abs.so", AP_OPEN_IN_ROOT, 0, NULL);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "CONTAINER-SAME-NAME");
	close(fd);
	fd = ap_open_untrusted(rfd, "/lib/up.so", AP_OPEN_IN_ROOT, 0, NULL);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "CONTAINER-UP");
	close(fd);
	/* the same names through the host's resolution do reach the host file */
	fd = ap_open_untrusted(AT_FDCWD, at(root, "lib/abs.so"), 0, 0, NULL);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "HOST");
	close(fd);
	/* a relative link inside is fine unless the last component must not be a link */
	fd = ap_open_untrusted(rfd, "lib/rel.so", AP_OPEN_IN_ROOT, 0, NULL);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "CONTAINER");
	close(fd);
	assert_int_equal(ap_open_untrusted(rfd, "lib/rel.so", AP_OPEN_IN_ROOT | AP_OPEN_NOFOLLOW,
					   0, NULL),
			 -ELOOP);
	/* /proc magic links are refused: they would jump out of any root */
	assert_int_equal(ap_open_untrusted(AT_FDCWD, at(root, "lib/magic.so"), 0, 0, NULL),
			 -ELOOP);
	close(rfd);
}

static void test_beneath_refuses_escape(void **state)
{
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);

	(void)state;
	assert_int_equal(ap_open_untrusted(rfd, "lib/up.so", AP_OPEN_BENEATH, 0, NULL), -EXDEV);
	assert_int_equal(ap_open_untrusted(rfd, "../host_secret", AP_OPEN_BENEATH, 0, NULL),
			 -EXDEV);
	assert_int_equal(ap_open_untrusted(rfd, "lib/abs.so", AP_OPEN_BENEATH, 0, NULL), -EXDEV);
	close(rfd);
}

static void test_only_regular_files(void **state)
{
	char buf[16];
	int fd;

	(void)state;
	/* a FIFO: refused at once (no open() of it at all, so it cannot block) */
	assert_int_equal(ap_open_untrusted(AT_FDCWD, at(root, "lib/fifo.so"), 0, 0, NULL), -EINVAL);
	assert_int_equal(ap_open_untrusted(AT_FDCWD, "/dev/null", 0, 0, NULL), -EINVAL);
	assert_int_equal(ap_open_untrusted(AT_FDCWD, root, 0, 0, NULL), -EINVAL);
	/* map_files-like magic links only when asked for */
	assert_int_equal(ap_open_untrusted(AT_FDCWD, "/proc/self/exe", 0, 0, NULL), -ELOOP);
	fd = ap_open_untrusted(AT_FDCWD, "/proc/self/exe", AP_OPEN_MAGIC, 0, NULL);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* size bound */
	assert_int_equal(ap_open_untrusted(AT_FDCWD, host, 0, 3, NULL), -EFBIG);
	fd = ap_open_untrusted(AT_FDCWD, host, 0, 4, NULL);
	assert_true(fd >= 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "HOST");
	close(fd);
}

static void test_owner_check(void **state)
{
	char *p = at(dir, "nobody");
	struct stat st;

	(void)state;
	put(p, "x");
	assert_true(ap_open_untrusted(AT_FDCWD, p, AP_OPEN_OWNED, 0, &st) >= 0);
	assert_int_equal(chown(p, 65534, 65534), 0);
	assert_int_equal(ap_open_untrusted(AT_FDCWD, p, AP_OPEN_OWNED, 0, &st), -EPERM);
}

static void test_fopen_bound(void **state)
{
	char line[64];
	FILE *f;

	(void)state;
	/* past the bound: a read error (EFBIG), not a silently short file */
	f = ap_fopen_untrusted(AT_FDCWD, host, 0, 2);
	assert_non_null(f);
	errno = 0;
	assert_null(fgets(line, sizeof(line), f));
	assert_true(ferror(f));
	assert_int_equal(errno, EFBIG);
	fclose(f);
	f = ap_fopen_untrusted(AT_FDCWD, host, 0, 4); /* exactly the size: no error */
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "HOST");
	assert_null(fgets(line, sizeof(line), f));
	assert_false(ferror(f));
	fclose(f);
	/* procfs files have no size: the bound applies to what is read */
	f = ap_fopen_untrusted(AT_FDCWD, "/proc/self/status", AP_OPEN_NOFOLLOW, 1 << 20);
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_null(ap_fopen_untrusted(AT_FDCWD, at(root, "lib/fifo.so"), 0, 0));
	assert_int_equal(errno, EINVAL);
}

static void test_private_dirs(void **state)
{
	char *d = at(dir, "cache"), *l = at(dir, "cache_link"), *w = at(dir, "open");
	char *sub = at(dir, "cache/sub");

	(void)state;
	assert_int_equal(ap_mkdir_p(sub), 0);
	assert_int_equal(ap_check_private_dir(AT_FDCWD, d), 0);
	/* a symlink to a directory is not the directory */
	assert_int_equal(symlink(d, l), 0);
	assert_int_equal(ap_mkdir_p(l), -ELOOP);
	/* a world-writable one, or another user's, is not ours */
	assert_int_equal(mkdir(w, 0777), 0);
	assert_int_equal(chmod(w, 0777), 0);
	assert_int_equal(ap_mkdir_p(w), -EPERM);
	assert_int_equal(chmod(w, 0700), 0);
	assert_int_equal(ap_mkdir_p(w), 0);
	assert_int_equal(chown(w, 65534, 65534), 0);
	assert_int_equal(ap_mkdir_p(w), -EPERM);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(ap_safe_name("libc.so.6.debug"));
	assert_false(ap_safe_name(""));
	assert_false(ap_safe_name("."));
	assert_false(ap_safe_name(".."));
	assert_false(ap_safe_name("../x"));
	assert_false(ap_safe_name("a/b"));
	assert_false(ap_cache_valid_id("../../etc/x", 20));
	assert_false(ap_cache_valid_id("ABCD", 20));
	assert_false(ap_cache_valid_id("00112233445566778899aabbccddeeff0011223344", 20));
	assert_true(ap_cache_valid_id("00112233445566778899aabbccddeeff00112233", 20));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_root_stays_in_root),
		cmocka_unit_test(test_beneath_refuses_escape),
		cmocka_unit_test(test_only_regular_files),
		cmocka_unit_test(test_owner_check),
		cmocka_unit_test(test_fopen_bound),
		cmocka_unit_test(test_private_dirs),
		cmocka_unit_test(test_names),
	};

	if (geteuid() != 0) {
		printf("SKIP: chown to another user needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
