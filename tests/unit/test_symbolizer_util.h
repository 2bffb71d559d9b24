/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the DWARF, JIT and debuginfod symbolizer tests: fixture processes (also in
 * private mount and pid namespaces), the "key 0xaddr" lines they print, source-line markers,
 * and frame checks. Include after cmocka.h.
 */
#ifndef AP_TEST_SYMBOLIZER_UTIL_H
#define AP_TEST_SYMBOLIZER_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/profile.h"
#include "symbol/symbolizer.h"

#define TU_UNUSED __attribute__((unused))
#define TU_TIMEOUT_MS 10000
#define TU_MAX_KV 8
#define TU_SRC AP_TEST_DATA_DIR "/symbolizer/"

extern char **environ;

struct tu_child {
	pid_t pid;    /* the fixture (host pid) */
	pid_t helper; /* namespace runs: the process that set the namespaces up */
	int in, out;
	size_t nkv;
	char keys[TU_MAX_KV][16];
	uint64_t vals[TU_MAX_KV];
};

TU_UNUSED static void tu_child_init(struct tu_child *c)
{
	memset(c, 0, sizeof(*c));
	c->in = c->out = -1;
}

TU_UNUSED static int tu_read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char ch;

		if (poll(&pfd, 1, TU_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		if (read(fd, &ch, 1) != 1)
			return -EIO;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return 0;
}

/* Read "key 0xaddr" lines up to "ready" (or one line when one_line). */
TU_UNUSED static void tu_read_kv(struct tu_child *c, bool one_line)
{
	char line[128], key[16];
	uint64_t v;

	for (;;) {
		assert_int_equal(tu_read_line(c->out, line, sizeof(line)), 0);
		if (!strcmp(line, "ready"))
			return;
		assert_int_equal(sscanf(line, "%15s %" SCNx64, key, &v), 2);
		assert_true(c->nkv < TU_MAX_KV);
		snprintf(c->keys[c->nkv], sizeof(c->keys[0]), "%s", key);
		c->vals[c->nkv++] = v;
		if (one_line)
			return;
	}
}

TU_UNUSED static uint64_t tu_val(const struct tu_child *c, const char *key)
{
	for (size_t i = 0; i < c->nkv; i++)
		if (!strcmp(c->keys[i], key)) {
			assert_true(c->vals[i] != 0);
			return c->vals[i];
		}
	fail_msg("fixture did not print %s", key);
	return 0;
}

TU_UNUSED static void tu_spawn(struct tu_child *c, const char *exe, const char *arg)
{
	int in[2], out[2];

	tu_child_init(c);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (!c->pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(126);
		execl(exe, exe, arg, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	tu_read_kv(c, false);
}

TU_UNUSED static void tu_copy(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	assert_int_equal(close(out), 0);
}

TU_UNUSED static int tu_ns_copy(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			return -1;
	close(in);
	return close(out);
}

/*
 * Run dir/<files[0]> as pid 1 of a new pid namespace, in a new mount namespace where dir is a
 * private tmpfs holding copies of files[] (host paths; the copies keep their basenames) and,
 * with private_tmp, /tmp is a private tmpfs too. The executable is deleted once open, before
 * it runs: the host sees neither the directory's contents nor the file. Returns false (the
 * caller skips) when namespaces cannot be made.
 */
TU_UNUSED static bool tu_spawn_ns(struct tu_child *c, const char *dir, const char *const *files,
				  size_t nfiles, bool private_tmp)
{
	int in[2], out[2], info[2];
	pid_t pid = 0;
	ssize_t got;

	tu_child_init(c);
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(info, O_CLOEXEC), 0);
	c->helper = fork();
	assert_true(c->helper >= 0);
	if (!c->helper) {
		char exe[PATH_MAX], to[PATH_MAX];
		pid_t g;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNS | CLONE_NEWPID) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("tmpfs", dir, "tmpfs", 0, "size=256m"))
			_exit(77);
		for (size_t i = 0; i < nfiles; i++) {
			snprintf(to, sizeof(to), "%s/%s", dir, strrchr(files[i], '/') + 1);
			if (tu_ns_copy(files[i], to))
				_exit(78);
		}
		snprintf(exe, sizeof(exe), "%s/%s", dir, strrchr(files[0], '/') + 1);
		if (private_tmp && mount("tmpfs", "/tmp", "tmpfs", 0, "size=16m"))
			_exit(77);
		g = fork();
		if (!g) {
			char *argv[] = { exe, NULL };
			int fd = open(exe, O_RDONLY);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (fd < 0 || unlink(exe) || dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
				_exit(126);
			fexecve(fd, argv, environ);
			_exit(127);
		}
		if (write(info[1], &g, sizeof(g)) != sizeof(g))
			_exit(79);
		waitpid(g, NULL, 0);
		_exit(0);
	}
	close(in[0]);
	close(out[1]);
	close(info[1]);
	c->in = in[1];
	c->out = out[0];
	got = read(info[0], &pid, sizeof(pid));
	close(info[0]);
	if (got != sizeof(pid) || pid <= 0) {
		int st = 0;

		waitpid(c->helper, &st, 0);
		c->helper = 0;
		return false;
	}
	c->pid = pid;
	tu_read_kv(c, false);
	return true;
}

TU_UNUSED static void tu_child_stop(struct tu_child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		if (!c->helper)
			waitpid(c->pid, NULL, 0);
	}
	if (c->helper > 0)
		waitpid(c->helper, NULL, 0);
	c->pid = c->helper = 0;
	if (c->in >= 0)
		close(c->in);
	if (c->out >= 0)
		close(c->out);
	c->in = c->out = -1;
}

/* Line of the "@line name" marker in a fixture source: expected lines are never hard-coded. */
TU_UNUSED static uint32_t tu_marker(const char *src, const char *name)
{
	char path[PATH_MAX], line[512], tag[96];
	uint32_t n = 0, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), TU_SRC "%s", src);
	snprintf(tag, sizeof(tag), "@line %s", name);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		const char *hit = strstr(line, tag);

		n++;
		/* the whole name: "@line a" must not find "@line ab" */
		if (hit && strchr(" \n*", hit[strlen(tag)])) {
			assert_int_equal(found, 0);
			found = n;
		}
	}
	fclose(f);
	assert_true(found > 0);
	return found;
}

TU_UNUSED static const char *tu_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Frame check: name, module, source file basename (NULL: no file) and line (0: none). */
TU_UNUSED static const struct ap_frame *tu_frame(struct ap_profile *p, uint32_t id,
						 const char *name, const char *module,
						 const char *file, uint32_t line)
{
	const struct ap_frame *f;

	assert_int_not_equal(id, UINT32_MAX);
	f = ap_profile_frame(p, id);
	assert_non_null(f);
	assert_int_equal(f->kind, AP_FRAME_USER);
	if (name)
		assert_string_equal(ap_profile_str(p, f->name), name);
	if (module)
		assert_string_equal(ap_profile_str(p, f->module), module);
	if (file)
		assert_string_equal(tu_base(ap_profile_str(p, f->file)), file);
	else
		assert_int_equal(f->file, 0);
	assert_int_equal(f->line, line);
	return f;
}

#endif
