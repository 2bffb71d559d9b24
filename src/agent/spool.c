// SPDX-License-Identifier: MIT
/*
 * The push spool: pushes that could not be delivered wait here, one file per push, named by
 * a sequence number (the time it was spooled, in ns) so that the oldest sorts first. A file is
 * written to a temporary, synced and renamed in, so a crash leaves whole pushes or nothing;
 * every open is relative to the directory's descriptor and never follows a link. The spool
 * is bounded in bytes: to make room the oldest pushes go first (counted).
 *
 * File: "APERTURE-PUSH 1\n", then "id ID\n", "mode MODE\n", "content-type CT\n",
 * "query QUERY\n", an empty line, and the body.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/cache_dir.h"
#include "push.h"

#define MAGIC "APERTURE-PUSH 1\n"
#define SUFFIX ".push"
#define TMP_PREFIX ".tmp-"
#define MAX_HEADER 16384

struct spool_file {
	char name[96];
	uint64_t size;
};

struct ap_spool {
	int dirfd;
	uint64_t max_bytes, bytes;
	struct spool_file *files; /* oldest first */
	size_t n, cap;
	uint64_t last_seq;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct spool_file *)a)->name, ((const struct spool_file *)b)->name);
}

static bool spool_name_ok(const char *name)
{
	size_t n = strlen(name), sl = strlen(SUFFIX);

	/* 20 digits, '-', the id, ".push" */
	if (n != 20 + 1 + AP_PUSH_ID_LEN + sl || strcmp(name + n - sl, SUFFIX) != 0)
		return false;
	for (size_t i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return name[20] == '-';
}

static int add_file(struct ap_spool *s, const char *name, uint64_t size)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct spool_file *f = realloc(s->files, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		s->files = f;
		s->cap = cap;
	}
	snprintf(s->files[s->n].name, sizeof(s->files[s->n].name), "%s", name);
	s->files[s->n].size = size;
	s->n++;
	s->bytes += size;
	return 0;
}

static void remove_at(struct ap_spool *s, size_t i)
{
	unlinkat(s->dirfd, s->files[i].name, 0);
	s->bytes -= s->files[i].size;
	memmove(&s->files[i], &s->files[i + 1], (s->n - i - 1) * sizeof(s->files[0]));
	s->n--;
}

/* What an earlier run left: whole pushes (indexed), temporaries of a crash (removed). */
static int scan(struct ap_spool *s)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	int err = 0;

	if (!d) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	while (!err && (e = readdir(d))) {
		struct stat st;

		if (fstatat(s->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
			unlinkat(s->dirfd, e->d_name, 0);
		else if (spool_name_ok(e->d_name))
			err = add_file(s, e->d_name, (uint64_t)st.st_size);
	}
	closedir(d);
	if (s->n)
		qsort(s->files, s->n, sizeof(s->files[0]), cmp_name);
	if (s->n)
		s->last_seq = strtoull(s->files[s->n - 1].name, NULL, 10);
	return err;
}

struct ap_spool *ap_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t len)
{
	struct ap_spool *s = calloc(1, sizeof(*s));
	int e;

	if (!s) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	s->dirfd = -1;
	s->max_bytes = max_bytes;
	e = ap_mkdir_p(dir);
	if (e) {
		snprintf(err, len, "cannot use spool directory '%s': %s%s", dir, strerror(-e),
			 e == -EPERM   ? " (it must be ours, not group/world-writable)"
			 : e == -ELOOP ? " (a symlink)"
				       : "");
		goto fail;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->dirfd < 0) {
		e = -errno;
		snprintf(err, len, "cannot open spool directory '%s': %s", dir, strerror(-e));
		goto fail;
	}
	e = scan(s);
	if (e) {
		snprintf(err, len, "cannot read spool directory '%s': %s", dir, strerror(-e));
		goto fail;
	}
	return s;
fail:
	ap_spool_close(s);
	errno = -e;
	return NULL;
}

void ap_spool_close(struct ap_spool *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->files);
	free(s);
}

size_t ap_spool_count(const struct ap_spool *s) { return s->n; }

uint64_t ap_spool_bytes(const struct ap_spool *s) { return s->bytes; }

static int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Drop the oldest files until `size` more bytes fit. */
static void make_room(struct ap_spool *s, uint64_t size, uint64_t *dropped)
{
	while (s->n && s->bytes + size > s->max_bytes) {
		remove_at(s, 0);
		(*dropped)++;
	}
}

void ap_spool_trim(struct ap_spool *s, uint64_t *dropped) { make_room(s, 0, dropped); }

int ap_spool_put(struct ap_spool *s, struct ap_push *p, uint64_t *dropped)
{
	char header[MAX_HEADER], tmp[128], name[96];
	struct timespec ts;
	uint64_t seq, size;
	int hn, fd, err;

	hn = snprintf(header, sizeof(header), MAGIC "id %s\nmode %s\ncontent-type %s\nquery %s\n\n",
		      p->id, p->mode, p->content_type, p->query);
	if (hn < 0 || (size_t)hn >= sizeof(header))
		return -E2BIG;
	size = (uint64_t)hn + p->body_len;
	if (size > s->max_bytes)
		return -EFBIG;
	make_room(s, size, dropped); /* the oldest go first */
	clock_gettime(CLOCK_REALTIME, &ts);
	seq = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (seq <= s->last_seq)
		seq = s->last_seq + 1;
	snprintf(name, sizeof(name), "%020llu-%s" SUFFIX, (unsigned long long)seq, p->id);
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", name);

	fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = write_all(fd, header, (size_t)hn);
	if (!err)
		err = write_all(fd, p->body, p->body_len);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(s->dirfd, tmp, s->dirfd, name))
		err = -errno;
	if (err) {
		unlinkat(s->dirfd, tmp, 0);
		return err;
	}
	fsync(s->dirfd); /* the rename itself */
	err = add_file(s, name, size);
	if (err) {
		unlinkat(s->dirfd, name, 0);
		return err;
	}
	s->last_seq = seq;
	snprintf(p->spool_name, sizeof(p->spool_name), "%s", name);
	return 0;
}

/* "key value\n" at *pos: the value (NUL-terminated in place), or NULL. */
static char *header_field(char **pos, char *end, const char *key)
{
	size_t kn = strlen(key);
	char *nl, *v;

	if ((size_t)(end - *pos) <= kn + 1 || memcmp(*pos, key, kn) != 0 || (*pos)[kn] != ' ')
		return NULL;
	v = *pos + kn + 1;
	nl = memchr(v, '\n', (size_t)(end - v));
	if (!nl)
		return NULL;
	*nl = '\0';
	*pos = nl + 1;
	return v;
}

static int parse(char *data, size_t size, struct ap_push *p)
{
	char *pos = data, *end = data + size, *id, *mode, *ct, *q;
	size_t ml = strlen(MAGIC);

	if (size < ml || memcmp(data, MAGIC, ml) != 0)
		return -EINVAL;
	pos += ml;
	id = header_field(&pos, end, "id");
	mode = id ? header_field(&pos, end, "mode") : NULL;
	ct = mode ? header_field(&pos, end, "content-type") : NULL;
	q = ct ? header_field(&pos, end, "query") : NULL;
	if (!q || pos >= end || *pos != '\n' || strlen(id) != AP_PUSH_ID_LEN ||
	    strlen(ct) >= sizeof(p->content_type) || strncmp(q, "push_id=", 8) != 0)
		return -EINVAL;
	pos++;
	memcpy(p->id, id, AP_PUSH_ID_LEN + 1);
	snprintf(p->mode, sizeof(p->mode), "%s", mode);
	snprintf(p->content_type, sizeof(p->content_type), "%s", ct);
	p->query = strdup(q);
	p->body_len = (size_t)(end - pos);
	p->body = malloc(p->body_len ? p->body_len : 1);
	if (!p->query || !p->body)
		return -ENOMEM;
	memcpy(p->body, pos, p->body_len);
	return 0;
}

static int read_file(struct ap_spool *s, const struct spool_file *f, struct ap_push **out)
{
	int fd = openat(s->dirfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct ap_push *p = NULL;
	struct stat st;
	char *data = NULL;
	int err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > s->max_bytes) {
		err = -EINVAL;
		goto out;
	}
	data = malloc((size_t)st.st_size + 1);
	p = calloc(1, sizeof(*p));
	err = data && p ? ap_pread_full(fd, data, (size_t)st.st_size, 0) : -ENOMEM;
	if (!err)
		err = parse(data, (size_t)st.st_size, p);
	if (!err) {
		snprintf(p->spool_name, sizeof(p->spool_name), "%s", f->name);
		*out = p;
		p = NULL;
	}
out:
	ap_push_free(p);
	free(data);
	close(fd);
	return err;
}

int ap_spool_oldest(struct ap_spool *s, struct ap_push **out, uint64_t *dropped)
{
	*out = NULL;
	while (s->n) {
		int err = read_file(s, &s->files[0], out);

		if (!err)
			return 0;
		if (err == -ENOMEM)
			return err;
		/* unreadable or not a push (truncated by hand, replaced): it cannot be sent */
		remove_at(s, 0);
		(*dropped)++;
	}
	return 0;
}

void ap_spool_remove(struct ap_spool *s, const struct ap_push *p)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->files[i].name, p->spool_name) == 0) {
			remove_at(s, i);
			return;
		}
	}
}
