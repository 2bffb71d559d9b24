// SPDX-License-Identifier: MIT
/* Opening files on a process's behalf (safe_open.h). */
#define _GNU_SOURCE /* fopencookie */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "safe_open.h"

static int path_fd(int dirfd, const char *path, int flags)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC};
	int fd;

	if (flags & AP_OPEN_NOFOLLOW)
		how.flags |= O_NOFOLLOW;
	if (!(flags & AP_OPEN_MAGIC))
		how.resolve |= RESOLVE_NO_MAGICLINKS;
	if (flags & AP_OPEN_IN_ROOT)
		how.resolve |= RESOLVE_IN_ROOT;
	if (flags & AP_OPEN_BENEATH)
		how.resolve |= RESOLVE_BENEATH;
	fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd >= 0 ? fd : -errno;
	/* before Linux 5.6: confinement to a root cannot be had, so it is refused */
	if (flags & (AP_OPEN_IN_ROOT | AP_OPEN_BENEATH))
		return -ENOSYS;
	fd = openat(dirfd, path, (int)how.flags);
	return fd >= 0 ? fd : -errno;
}

int ap_path_untrusted(int dirfd, const char *path, int flags, uint64_t max_size, struct stat *st)
{
	struct stat tmp;
	int pfd, err;

	if (!st)
		st = &tmp;
	pfd = path_fd(dirfd, path, flags);
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, st)) {
		err = -errno;
		goto fail;
	}
	/* O_PATH | O_NOFOLLOW opens a final symlink itself instead of failing */
	err = S_ISLNK(st->st_mode) ? -ELOOP : !S_ISREG(st->st_mode) ? -EINVAL : 0;
	if (!err && max_size && (uint64_t)st->st_size > max_size)
		err = -EFBIG;
	if (!err && (flags & AP_OPEN_OWNED) && st->st_uid != geteuid())
		err = -EPERM;
	if (!err)
		return pfd;
fail:
	close(pfd);
	return err;
}

int ap_reopen_untrusted(int pfd, const struct stat *st)
{
	struct stat got;
	char self[32];
	int fd;

	/* the inode checked before, nothing else: a rename in between cannot swap it */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &got) || got.st_dev != st->st_dev || got.st_ino != st->st_ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int ap_open_untrusted(int dirfd, const char *path, int flags, uint64_t max_size, struct stat *st)
{
	struct stat tmp;
	int pfd, fd;

	if (!st)
		st = &tmp;
	pfd = ap_path_untrusted(dirfd, path, flags, max_size, st);
	if (pfd < 0)
		return pfd;
	fd = ap_reopen_untrusted(pfd, st);
	close(pfd);
	return fd;
}

struct bounded {
	int fd;
	uint64_t left;
	bool bounded;
};

static ssize_t bounded_read(void *c, char *buf, size_t len)
{
	struct bounded *b = c;
	ssize_t n;

	if (b->bounded && !b->left) {
		char probe;

		/* exactly at the bound is fine; one byte more is a truncation */
		n = read(b->fd, &probe, 1);
		if (n <= 0)
			return n;
		errno = EFBIG;
		return -1;
	}
	if (b->bounded && len > b->left)
		len = (size_t)b->left;
	do
		n = read(b->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n > 0 && b->bounded)
		b->left -= (uint64_t)n;
	return n;
}

static int bounded_close(void *c)
{
	struct bounded *b = c;

	close(b->fd);
	free(b);
	return 0;
}

FILE *ap_fopen_untrusted(int dirfd, const char *path, int flags, uint64_t max_read)
{
	static const cookie_io_functions_t io = {.read = bounded_read, .close = bounded_close};
	struct bounded *b;
	int fd = ap_open_untrusted(dirfd, path, flags, 0, NULL);
	FILE *f;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	/* regular files only, so O_NONBLOCK changes nothing but is cleared for clarity */
	fcntl(fd, F_SETFL, 0);
	b = malloc(sizeof(*b));
	if (!b) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	b->fd = fd;
	b->left = max_read;
	b->bounded = max_read != 0;
	f = fopencookie(b, "r", io);
	if (!f) {
		close(fd);
		free(b);
		errno = ENOMEM;
	}
	return f;
}

int ap_open_proc_root(int pid)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

int ap_open_dir(const char *path)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	return fd >= 0 ? fd : -errno;
}

int ap_check_private_dir(int dirfd, const char *path)
{
	struct stat st;

	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return -EPERM;
	return 0;
}

int ap_safe_name(const char *name)
{
	return *name && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}
