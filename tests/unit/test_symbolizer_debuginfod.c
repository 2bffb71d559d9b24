// SPDX-License-Identifier: MIT
/*
 * Debug info through debuginfod: elfutils' debuginfod serves the DWARF of a stripped fixture
 * (dwfix.nolink, whose debug file is nowhere the symbolizer would look locally) on loopback,
 * in a network namespace of this test's own when it can make one. The symbolizer must get the
 * inline chain and file:line through it, make no request unless asked to, and not hang on a
 * server that is not there. Skips (77) when debuginfod is not installed or will not start.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "test_symbolizer_util.h"

#define FIX AP_DWFIX_DIR "/"
#define START_TIMEOUT_S 30

struct server {
	pid_t pid;
	int port;
	char dir[64];
	char bid[160];
};

static struct server srv;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Our own network namespace with lo up: the server is reachable from this process only. */
static bool private_loopback(void)
{
	struct ifreq ifr = { 0 };
	int fd;
	bool ok;

	if (unshare(CLONE_NEWNET))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	ok = !ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	ok = ok && !ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return ok;
}

/* HTTP status of GET path on 127.0.0.1:port, or -1. */
static int http_status(int port, const char *path)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[320], line[128];
	int fd, code = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    write(fd, req, strlen(req)) == (ssize_t)strlen(req) &&
	    !tu_read_line(fd, line, sizeof(line)))
		sscanf(line, "HTTP/%*s %d", &code);
	close(fd);
	return code;
}

static void read_build_id(const char *elf, char *out, size_t len)
{
	char cmd[PATH_MAX + 64], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", elf);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "Build ID: ");

		if (p)
			sscanf(p + 10, "%159s", out);
	}
	pclose(f);
	assert_true(strlen(out) > 8 && strlen(out) < len);
}

static bool start_on(int port)
{
	char dbfile[96], served[96], portarg[16], url[256];
	uint64_t end = mono_ms() + START_TIMEOUT_S * 1000;

	snprintf(dbfile, sizeof(dbfile), "%s/db.sqlite", srv.dir);
	snprintf(served, sizeof(served), "%s/srv", srv.dir);
	snprintf(portarg, sizeof(portarg), "%d", port);
	srv.pid = fork();
	assert_true(srv.pid >= 0);
	if (!srv.pid) {
		int log;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(url, sizeof(url), "%s/server.log", srv.dir);
		log = open(url, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(126);
		/* one scan at start, no rescans or grooming */
		execlp("debuginfod", "debuginfod", "-F", served, "-p", portarg, "-d", dbfile, "-t",
		       "0", "-g", "0", (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "/buildid/%s/debuginfo", srv.bid);
	while (mono_ms() < end) {
		int st;

		if (http_status(port, url) == 200) {
			srv.port = port;
			return true;
		}
		if (waitpid(srv.pid, &st, WNOHANG) == srv.pid) {
			srv.pid = 0;
			return false;
		}
		usleep(100 * 1000);
	}
	kill(srv.pid, SIGKILL);
	waitpid(srv.pid, NULL, 0);
	srv.pid = 0;
	return false;
}

static int group_setup(void **state)
{
	char path[128];

	if (system("command -v debuginfod >/dev/null 2>&1")) {
		print_message("SKIP: debuginfod is not installed (Debian package debuginfod)\n");
		return 0;
	}
	if (!private_loopback())
		print_message("note: no private network namespace; using the host's loopback\n");
	/* libcurl would send even loopback requests to a proxy named in the environment */
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	setenv("NO_PROXY", "127.0.0.1,localhost", 1);
	snprintf(srv.dir, sizeof(srv.dir), "/tmp/ap-dbgd-XXXXXX");
	if (!mkdtemp(srv.dir))
		return -1;
	snprintf(path, sizeof(path), "%s/srv", srv.dir);
	if (mkdir(path, 0755))
		return -1;
	/* only the debug file is served: the binary the test runs is stripped */
	snprintf(path, sizeof(path), "%s/srv/dwfix.debug", srv.dir);
	tu_copy(FIX "dwfix.debug", path);
	read_build_id(FIX "dwfix.nolink", srv.bid, sizeof(srv.bid));
	srandom((unsigned)(getpid() ^ time(NULL)));
	for (int i = 0; i < 3 && !srv.port; i++)
		if (!start_on(20000 + (int)(random() % 40000)))
			print_message("debuginfod did not come up (see %s/server.log)\n", srv.dir);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	if (srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		waitpid(srv.pid, NULL, 0);
	}
	if (srv.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv.dir);
		if (system(cmd))
			print_message("could not remove %s\n", srv.dir);
	}
	return 0;
}

static void need_server(void)
{
	if (!srv.port) {
		print_message("SKIP: no debuginfod server\n");
		skip();
	}
}

static struct ap_symbolizer *new_symbolizer(const char *url, const char *cache)
{
	struct ap_symbolizer *s = ap_symbolizer_new();
	char dir[128];

	assert_non_null(s);
	/* nothing local: /usr/lib/debug is not searched */
	assert_int_equal(ap_symbolizer_set_debug_dirs(s, NULL, 0), 0);
	if (url) {
		snprintf(dir, sizeof(dir), "%s/%s", srv.dir, cache);
		assert_int_equal(ap_symbolizer_set_debuginfod_options(s, dir, 3000, 5000), 0);
		assert_int_equal(ap_symbolizer_set_debuginfod(s, url), 0);
	}
	return s;
}

/* Requests for the fixture's debug info the server has logged so far. */
static int server_requests(void)
{
	char path[128], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/server.log", srv.dir);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, srv.bid) && strstr(line, "GET ");
	fclose(f);
	return n;
}

static struct ap_symbolizer_stats stats(struct ap_symbolizer *s)
{
	struct ap_symbolizer_stats st;

	ap_symbolizer_get_stats(s, &st);
	return st;
}

static void test_no_requests_by_default(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_symbolizer *s;
	struct tu_child kid;
	int before;
	uint32_t id;

	need_server();
	before = server_requests();
	/* DEBUGINFOD_URLS in the environment is not an opt-in (Debian sets it for every
	 * login shell) */
	assert_int_equal(setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1", 1), 0);
	s = new_symbolizer(NULL, NULL);
	tu_spawn(&kid, FIX "dwfix.nolink", NULL);
	id = ap_symbolizer_user_frame(s, p, kid.pid, tu_val(&kid, "main_ret"), true);
	tu_frame(p, id, "ap_dwm_outer", "dwfix.nolink", NULL, 0);
	tu_child_stop(&kid);
	assert_int_equal(stats(s).debuginfod_fetched + stats(s).debuginfod_failed, 0);
	assert_int_equal(server_requests(), before);
	ap_symbolizer_free(s);
	ap_profile_free(p);
	unsetenv("DEBUGINFOD_URLS");
}

static void test_chain_through_debuginfod(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_symbolizer *s;
	struct tu_child kid;
	char url[64], cached[256];
	uint32_t ids[8];
	uint64_t ret;
	int pid;

	need_server();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	s = new_symbolizer(url, "cache");
	tu_spawn(&kid, FIX "dwfix.nolink", NULL);
	pid = kid.pid;
	ret = tu_val(&kid, "main_ret");
	/* the fetch is queued at the snapshot; the process is gone before it is used */
	assert_int_equal(ap_symbolizer_snapshot_pid(s, pid), 0);
	tu_child_stop(&kid);

	/* the lookup waits (boundedly) for the fetch in flight */
	assert_int_equal(ap_symbolizer_user_frames(s, p, pid, ret, true, ids, 8), 3);
	tu_frame(p, ids[0], "ap_dwfix_mix", "dwfix.nolink", "dwarf_fix.h",
		 tu_marker("dwarf_fix.h", "mix_call"));
	tu_frame(p, ids[1], "dwm_mid", "dwfix.nolink", "dwarf_main.c",
		 tu_marker("dwarf_main.c", "dwm_mid_call"));
	tu_frame(p, ids[2], "ap_dwm_outer", "dwfix.nolink", "dwarf_main.c",
		 tu_marker("dwarf_main.c", "dwm_outer_call"));
	assert_true(stats(s).debuginfod_fetched >= 1);
	assert_true(server_requests() >= 1);
	snprintf(cached, sizeof(cached), "%s/cache/%s/debuginfo", srv.dir, srv.bid);
	assert_int_equal(access(cached, R_OK), 0);
	/* every other fetch (libc, ld.so: the server has none) ends, as a failure */
	ap_symbolizer_debuginfod_wait(s, 10000);
	assert_true(stats(s).debuginfod_failed >= 1);
	ap_symbolizer_free(s);
	ap_profile_free(p);
}

static void test_unreachable_server(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_symbolizer *s;
	struct tu_child kid;
	char url[64];
	uint64_t t0;
	uint32_t ids[8];

	need_server();
	/* a port nobody listens on */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port == 65535 ? 1 : srv.port + 1);
	s = new_symbolizer(url, "cache-unreachable");
	tu_spawn(&kid, FIX "dwfix.nolink", NULL);
	t0 = mono_ms();
	assert_int_equal(ap_symbolizer_user_frames(s, p, kid.pid, tu_val(&kid, "main_ret"), true,
						   ids, 8),
			 1);
	tu_frame(p, ids[0], "ap_dwm_outer", "dwfix.nolink", NULL, 0);
	/* never longer than the wait budget (5 s here) */
	assert_true(mono_ms() - t0 < 6000);
	tu_child_stop(&kid);
	ap_symbolizer_debuginfod_wait(s, 10000);
	assert_true(stats(s).debuginfod_failed >= 1);
	assert_int_equal(stats(s).debuginfod_fetched, 0);
	ap_symbolizer_free(s);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_requests_by_default),
		cmocka_unit_test(test_chain_through_debuginfod),
		cmocka_unit_test(test_unreachable_server),
	};
	int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);

	/* every test skipped for want of a server: say so to CTest */
	return !rc && !srv.port ? 77 : rc;
}
