// SPDX-License-Identifier: MIT
/* Output files: stdout, devices and FIFOs in place, regular files through a safe temporary. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "output.h"

#define OUTPUT_BUFFER (64 * 1024)
#define MAX_NAMED_TMPS 8

/* Named temporaries that exist right now, for ap_output_remove_temporaries() in a signal
 * handler: written before the file is created and cleared after it is gone. */
static const char *volatile named_tmps[MAX_NAMED_TMPS];

static void track_tmp(const char *tmp, bool on)
{
	sigset_t all, old;

	/* the handler must never see a half-updated table */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (size_t i = 0; i < MAX_NAMED_TMPS; i++) {
		if (on && !named_tmps[i]) {
			named_tmps[i] = tmp;
			break;
		}
		if (!on && named_tmps[i] == tmp)
			named_tmps[i] = NULL;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void ap_output_remove_temporaries(void)
{
	for (size_t i = 0; i < MAX_NAMED_TMPS; i++)
		if (named_tmps[i])
			unlink(named_tmps[i]);
}

static bool is_stdout_name(const char *path)
{
	return !path || strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0;
}

void ap_output_path(const char *output, const char *mode, bool several, char *buf, size_t len)
{
	const char *base = strrchr(output, '/'), *ext;
	struct stat st;

	/* devices, FIFOs and stdout take every mode's profile, one after the other */
	if (!several || is_stdout_name(output) || (stat(output, &st) == 0 && !S_ISREG(st.st_mode))) {
		snprintf(buf, len, "%s", output);
		return;
	}
	base = base ? base + 1 : output;
	ext = strstr(base, ".pb.gz");
	if (!ext)
		ext = strrchr(base, '.');
	if (!ext || ext == base)
		snprintf(buf, len, "%s.%s", output, mode);
	else
		snprintf(buf, len, "%.*s.%s%s", (int)(ext - output), output, mode, ext);
}

/* The stream's sink: write(2) until done, remembering the errno of a failure. */
static ssize_t stream_write(void *cookie, const char *buf, size_t size)
{
	struct ap_output *o = cookie;
	size_t done = 0;

	if (o->write_err) { /* failed once (or discarded): write nothing more */
		errno = o->write_err;
		return 0;
	}
	while (done < size) {
		ssize_t n = write(o->fd, buf + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!o->write_err)
				o->write_err = n < 0 ? errno : EIO;
			errno = o->write_err;
			return 0; /* fopencookie: 0 is an error */
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int open_stream(struct ap_output *o)
{
	static const cookie_io_functions_t io = { .write = stream_write };

	o->f = fopencookie(o, "w", io);
	if (!o->f)
		return -errno;
	setvbuf(o->f, NULL, _IOFBF, OUTPUT_BUFFER);
	return 0;
}

static void split_dir(const char *path, char *dir, size_t dlen, const char **base)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		snprintf(dir, dlen, ".");
		*base = path;
	} else if (slash == path) {
		snprintf(dir, dlen, "/");
		*base = slash + 1;
	} else {
		snprintf(dir, dlen, "%.*s", (int)(slash - path), path);
		*base = slash + 1;
	}
}

/* A name for the temporary: random, so nobody can plant anything at it beforehand (and
 * O_EXCL/linkat refuse to go through anything planted there anyway). */
static int tmp_name(const struct ap_output *o, char *buf, size_t len)
{
	static unsigned int seq;
	struct timespec ts;
	char dir[PATH_MAX];
	const char *base;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	split_dir(o->path, dir, sizeof(dir), &base);
	n = snprintf(buf, len, "%s/.%.200s.%08x", dir, base,
		     (unsigned int)(ts.tv_nsec ^ (getpid() << 12) ^ (++seq * 2654435761u)));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int open_regular(struct ap_output *o)
{
	char dir[PATH_MAX];
	const char *base;
	mode_t mask;
	int n;

	split_dir(o->path, dir, sizeof(dir), &base);
	/* anonymous: nothing to follow, nothing left behind if the agent is killed */
	o->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
	if (o->fd >= 0) {
		o->kind = AP_OUTPUT_TMPFILE;
		return 0;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	/* the filesystem has no O_TMPFILE: a new file, O_EXCL (never through a link) */
	n = snprintf(o->tmp, sizeof(o->tmp), "%s/.%.200s.XXXXXX", dir, base);
	if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
		o->tmp[0] = '\0';
		return -ENAMETOOLONG;
	}
	track_tmp(o->tmp, true);
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int err = -errno;

		track_tmp(o->tmp, false);
		o->tmp[0] = '\0';
		return err;
	}
	o->kind = AP_OUTPUT_NAMED_TMP;
	/* mkostemp makes 0600; the output gets what a plain creat would give it */
	mask = umask(0);
	umask(mask);
	fchmod(o->fd, 0666 & ~mask);
	return 0;
}

/* A trusted link to a file not written yet: the target's directory must exist, the file is
 * created there. (realpath() refuses dangling links.) */
static int resolve_dangling(const char *link, char *resolved)
{
	char target[PATH_MAX], full[2 * PATH_MAX + 2], dir[PATH_MAX], real_dir[PATH_MAX];
	const char *base;
	ssize_t n;
	int len;

	if (errno != ENOENT)
		return -1;
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return -1;
	target[n] = '\0';
	if (target[0] == '/') {
		snprintf(full, sizeof(full), "%s", target);
	} else {
		split_dir(link, dir, sizeof(dir), &base);
		snprintf(full, sizeof(full), "%s/%s", dir, target);
	}
	split_dir(full, dir, sizeof(dir), &base);
	if (!*base || !realpath(dir, real_dir))
		return -1;
	len = snprintf(resolved, PATH_MAX, "%s/%s", strcmp(real_dir, "/") ? real_dir : "", base);
	if (len < 0 || len >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	errno = 0;
	return 0;
}

int ap_output_open(struct ap_output *o, const char *path, char *msg, size_t len)
{
	char resolved[PATH_MAX];
	struct stat st;
	int err;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	msg[0] = '\0';
	if (is_stdout_name(path)) {
		o->kind = AP_OUTPUT_STDOUT;
		o->fd = STDOUT_FILENO;
		snprintf(o->path, sizeof(o->path), "stdout");
		return open_stream(o);
	}
	snprintf(o->path, sizeof(o->path), "%s", path);
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		if (st.st_uid != 0 && st.st_uid != getuid()) {
			snprintf(msg, len, "'%s' is a symbolic link owned by uid %u, not by you or "
				 "root: not following it (give the target's path)",
				 path, (unsigned int)st.st_uid);
			return -EPERM;
		}
		if (!realpath(path, resolved) && resolve_dangling(path, resolved) != 0) {
			/* a trusted link to something without a path (/dev/stderr on a pipe) */
			if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
				goto in_place;
			err = -errno;
			snprintf(msg, len, "cannot follow the symbolic link '%s': %s", path,
				 strerror(-err));
			return err;
		}
		snprintf(o->path, sizeof(o->path), "%s", resolved);
	}
	if (lstat(o->path, &st) == 0) {
		if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
			goto in_place;
		if (S_ISDIR(st.st_mode)) {
			snprintf(msg, len, "'%s' is a directory", path);
			return -EISDIR;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(msg, len, "'%s' is not a regular file, character device or FIFO",
				 path);
			return -EINVAL;
		}
	} else if (errno != ENOENT) {
		return -errno;
	}
	err = open_regular(o);
	if (err)
		return err;
	err = open_stream(o);
	if (err)
		ap_output_discard(o);
	return err;

in_place:
	/* a FIFO's open waits for its reader, as any writer's would */
	o->fd = open(o->path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (o->fd < 0)
		return -errno;
	o->kind = AP_OUTPUT_IN_PLACE;
	err = open_stream(o);
	if (err)
		ap_output_discard(o);
	return err;
}

int ap_output_error(const struct ap_output *o, int err)
{
	/* ECANCELED is a discarded stream's marker, not a failure */
	return err == -EIO && o->write_err && o->write_err != ECANCELED ? -o->write_err : err;
}

static int close_stream(struct ap_output *o)
{
	int err = 0;

	if (!o->f)
		return 0;
	if (fflush(o->f) != 0)
		err = o->write_err ? -o->write_err : -errno;
	fclose(o->f); /* the cookie stream: the descriptor stays open */
	o->f = NULL;
	return err;
}

/* Give the anonymous temporary a (random) name; linkat never replaces or follows. */
static int link_tmpfile(struct ap_output *o)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
	for (int tries = 0; tries < 16; tries++) {
		if (tmp_name(o, o->tmp, sizeof(o->tmp))) {
			o->tmp[0] = '\0';
			return -ENAMETOOLONG;
		}
		track_tmp(o->tmp, true);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0 ||
		    /* no /proc: the same by descriptor (needs CAP_DAC_READ_SEARCH) */
		    (errno == ENOENT && linkat(o->fd, "", AT_FDCWD, o->tmp, AT_EMPTY_PATH) == 0))
			return 0;
		track_tmp(o->tmp, false);
		if (errno != EEXIST) {
			o->tmp[0] = '\0';
			return -errno;
		}
	}
	o->tmp[0] = '\0';
	return -EEXIST;
}

static void sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	int fd;

	split_dir(path, dir, sizeof(dir), &base);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd); /* the rename survives a crash; a failure here loses no data */
		close(fd);
	}
}

int ap_output_commit(struct ap_output *o)
{
	int err;

	if (o->kind == AP_OUTPUT_NONE)
		return 0;
	err = close_stream(o);
	if (err)
		goto fail;
	if (o->kind == AP_OUTPUT_STDOUT) {
		o->kind = AP_OUTPUT_NONE;
		o->fd = -1; /* descriptor 1 is not ours to close */
		return 0;
	}
	if ((o->kind == AP_OUTPUT_TMPFILE || o->kind == AP_OUTPUT_NAMED_TMP) && fsync(o->fd)) {
		err = -errno;
		goto fail;
	}
	if (o->kind == AP_OUTPUT_TMPFILE) {
		err = link_tmpfile(o);
		if (err)
			goto fail;
	}
	if (o->kind != AP_OUTPUT_IN_PLACE) {
		if (rename(o->tmp, o->path) != 0) {
			err = -errno;
			goto fail;
		}
		track_tmp(o->tmp, false);
		o->tmp[0] = '\0';
	}
	if (close(o->fd) != 0 && errno != EINTR) {
		o->fd = -1;
		err = -errno;
		goto fail;
	}
	o->fd = -1;
	if (o->kind != AP_OUTPUT_IN_PLACE)
		sync_dir(o->path);
	o->kind = AP_OUTPUT_NONE;
	return 0;
fail:
	ap_output_discard(o);
	return err;
}

void ap_output_discard(struct ap_output *o)
{
	if (o->f) {
		if (!o->write_err)
			o->write_err = ECANCELED; /* fclose must not flush a failed run's rest */
		fclose(o->f);
		o->f = NULL;
	}
	if (o->tmp[0]) {
		unlink(o->tmp);
		track_tmp(o->tmp, false);
		o->tmp[0] = '\0';
	}
	if (o->fd >= 0 && o->kind != AP_OUTPUT_STDOUT)
		close(o->fd);
	o->fd = -1;
	o->kind = AP_OUTPUT_NONE;
}
