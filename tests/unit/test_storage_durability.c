// SPDX-License-Identifier: MIT
/*
 * Durability of acknowledged writes: a child process writes pushes to a SQLite store without
 * pause and reports each one whose write() returned; the parent SIGKILLs it in the middle of
 * that, reopens the file and must find every acknowledged push, each exactly once (and at most
 * the one that was in flight besides). Four rounds, killed after different numbers of pushes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/profile.h"
#include "storage/storage.h"

#define T0 (3600000000000ULL * 500000)

static struct ap_profile *one_push(int i)
{
	struct ap_profile *p = ap_profile_new();
	char name[32];
	uint32_t f[2];
	struct ap_sample s = { 0 };

	snprintf(name, sizeof(name), "push_%d", i);
	ap_profile_add_value_type(p, "samples", "count");
	f[0] = ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
	f[1] = ap_profile_add_named_frame(p, "main", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, f, 2);
	s.comm = ap_profile_intern(p, "w");
	s.pid = 1;
	s.values[0] = 1;
	ap_profile_add_sample(p, &s);
	return p;
}

static int write_push(struct ap_store *s, int i, bool *dup, char *err, size_t errlen)
{
	struct ap_label_kv labels[] = { { "mode", "cpu" }, { "host", "h" } };
	struct ap_profile *p = one_push(i);
	char id[32];
	struct ap_store_write w = { .push_id = id, .labels = labels, .nlabels = 2,
				    .from_ns = T0 + (uint64_t)i * 1000000000ULL,
				    .until_ns = T0 + (uint64_t)(i + 1) * 1000000000ULL,
				    .profile = p };
	int ret;

	snprintf(id, sizeof(id), "d%d", i);
	ret = s->ops->write(s, &w, dup, err, errlen);
	ap_profile_free(p);
	return ret;
}

static void child(const char *spec, int fd, int start)
{
	struct ap_store *s;
	char err[512];
	bool dup;

	if (ap_store_open(spec, NULL, &s, err, sizeof(err)))
		_exit(2);
	for (int i = start;; i++) {
		if (write_push(s, i, &dup, err, sizeof(err)) || dup)
			_exit(3);
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(4);
	}
}

/* One round: returns the number acknowledged; checks the store holds them. */
static int round_trip(const char *spec, int start, int kill_after)
{
	int fds[2], i, acked = 0, last = start - 1, status;
	struct ap_store *s;
	struct ap_profile *m = NULL;
	struct ap_selector sel = { 0 };
	struct ap_store_query q = { .sel = &sel, .from_ns = T0, .until_ns = T0 + 3600000000000ULL };
	char err[512];
	uint64_t total;
	bool dup;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(fds[0]);
		child(spec, fds[1], start);
	}
	close(fds[1]);
	while (read(fds[0], &i, sizeof(i)) == sizeof(i)) {
		assert_int_equal(i, last + 1);
		last = i;
		if (++acked == kill_after)
			kill(pid, SIGKILL);
	}
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	assert_int_equal(ap_store_open(spec, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s->ops->merge(s, &q, &m, err, sizeof(err)), 0);
	total = ap_profile_nvalues(m) ? ap_profile_total(m, 0) : 0;
	/* everything acknowledged before, in this round and earlier ones, at most one more */
	assert_true(total >= (uint64_t)(last + 1));
	assert_true(total <= (uint64_t)(last + 2));
	ap_profile_free(m);
	/* each acknowledged push is there once: a retry is a duplicate */
	for (int k = 0; k <= last; k += 1 + last / 20) {
		assert_int_equal(write_push(s, k, &dup, err, sizeof(err)), 0);
		assert_true(dup);
	}
	ap_store_close(s);
	return (int)total;
}

static void test_sigkill(void **state)
{
	char dir[] = "/tmp/ap-durability-XXXXXX", spec[128], cmd[160];
	int stored = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "sqlite:%s/store.db", dir);
	for (int r = 0; r < 4; r++)
		stored = round_trip(spec, stored, 5 + r * 37);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
