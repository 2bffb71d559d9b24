// SPDX-License-Identifier: MIT
/*
 * JIT symbols from perf map files: "/tmp/perf-PID.map", one "START SIZE NAME" line per
 * compiled function, appended by the runtime as it compiles (Node --perf-basic-prof, JVM
 * agents, LuaJIT, ...). PID is the process's id in its own pid namespace and /tmp the one of its
 * mount namespace, so the file is opened through /proc/PID/root.
 *
 * The descriptor stays open: the file can be read (and re-read as it grows) after the process
 * and its container are gone. Reading is incremental from the last offset; the entries are
 * sorted lazily at the next lookup. A function recompiled at the same address is listed again:
 * the newest line wins. Memory is bounded by a cap on entries and on bytes read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/safe_open.h"
#include "symbol_internal.h"

/* caps (symbol_internal.h): a hit is counted once per map (entries, bytes) or per line */
#define MAX_ENTRIES AP_SYM_MAX_PERFMAP_ENTRIES
#define MAX_READ_BYTES AP_SYM_MAX_PERFMAP_BYTES
#define MAX_LINE AP_SYM_MAX_PERFMAP_LINE /* longer lines are skipped */
#define OVERLAP_SCAN 16 /* entries looked at below the best start, for overlapping code */

struct pm_ent {
	uint64_t start;
	uint64_t size;
	uint32_t name; /* offset in names */
	uint32_t seq;  /* line number: later lines replace earlier ones */
};

struct ap_perfmap {
	struct pm_ent *v;
	char *names;
	char *partial; /* an incomplete last line, kept until its newline arrives */
	size_t n, cap;
	size_t names_len, names_cap;
	size_t partial_len;
	uint64_t offset; /* bytes consumed */
	uint32_t seq;
	int fd;
	bool sorted;
	bool full; /* a cap was hit (counted once) */
	char module[32];
};

int ap_perfmap_parse_line(const char *line, uint64_t *start, uint64_t *size, const char **name,
			  size_t *name_len)
{
	char *end;
	size_t len;

	errno = 0;
	*start = strtoull(line, &end, 16);
	if (errno || end == line || *end != ' ')
		return -EINVAL;
	line = end + 1;
	*size = strtoull(line, &end, 16);
	if (errno || end == line || *end != ' ' || !*size)
		return -EINVAL;
	line = end + 1;
	len = strcspn(line, "\n");
	if (!len)
		return -EINVAL;
	*name = line;
	*name_len = len;
	return 0;
}

static int add_line(struct ap_perfmap *m, const char *line)
{
	uint64_t start, size;
	const char *name;
	size_t len;

	if (ap_perfmap_parse_line(line, &start, &size, &name, &len))
		return 0; /* junk lines are skipped, as perf does */
	if (m->n >= MAX_ENTRIES) {
		if (!m->full)
			ap_sym_limit_hit(AP_SYM_LIMIT_PERFMAP_ENTRIES);
		m->full = true;
		return -E2BIG;
	}
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		struct pm_ent *v = realloc(m->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = ncap;
	}
	if (m->names_len + len + 1 > m->names_cap) {
		size_t ncap = m->names_cap ? m->names_cap * 2 : 4096;
		char *p;

		while (ncap < m->names_len + len + 1)
			ncap *= 2;
		p = realloc(m->names, ncap);
		if (!p)
			return -ENOMEM;
		m->names = p;
		m->names_cap = ncap;
	}
	memcpy(m->names + m->names_len, name, len);
	m->names[m->names_len + len] = '\0';
	m->v[m->n].start = start;
	m->v[m->n].size = size;
	m->v[m->n].name = (uint32_t)m->names_len;
	m->v[m->n].seq = m->seq++;
	m->names_len += len + 1;
	m->n++;
	m->sorted = false;
	return 0;
}

/* Feed bytes: complete lines are parsed, a trailing partial one is kept. */
static int feed(struct ap_perfmap *m, const char *buf, size_t len)
{
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) + 1 : len;
		int err = 0;

		if (m->partial_len + take <= MAX_LINE) {
			char *p = realloc(m->partial, m->partial_len + take + 1);

			if (!p)
				return -ENOMEM;
			m->partial = p;
			memcpy(p + m->partial_len, buf, take);
			p[m->partial_len + take] = '\0';
		}
		/* an over-long line keeps growing partial_len without being stored */
		m->partial_len += take;
		if (nl) {
			if (m->partial_len <= MAX_LINE)
				err = add_line(m, m->partial);
			else
				ap_sym_limit_hit(AP_SYM_LIMIT_PERFMAP_LINE);
			m->partial_len = 0;
		}
		if (err)
			return err;
		buf += take;
		len -= take;
	}
	return 0;
}

int ap_perfmap_update(struct ap_perfmap *m)
{
	char buf[16384];
	struct stat st;

	if (!m)
		return -EINVAL;
	if (fstat(m->fd, &st))
		return -errno;
	/* truncated and rewritten: start over */
	if ((uint64_t)st.st_size < m->offset) {
		m->n = m->names_len = m->partial_len = 0;
		m->offset = 0;
		m->full = false;
	}
	if (m->offset >= MAX_READ_BYTES && (uint64_t)st.st_size > m->offset && !m->full) {
		ap_sym_limit_hit(AP_SYM_LIMIT_PERFMAP_ENTRIES);
		m->full = true;
	}
	while (m->offset < (uint64_t)st.st_size && m->offset < MAX_READ_BYTES) {
		size_t want = sizeof(buf);
		ssize_t got;
		int err;

		if (want > MAX_READ_BYTES - m->offset)
			want = MAX_READ_BYTES - m->offset;
		got = pread(m->fd, buf, want, (off_t)m->offset);
		if (got < 0)
			return errno == EINTR ? 0 : -errno;
		if (!got)
			break;
		m->offset += (uint64_t)got;
		err = feed(m, buf, (size_t)got);
		if (err == -E2BIG)
			return 0; /* full: what we have is kept */
		if (err)
			return err;
	}
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct pm_ent *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

const char *ap_perfmap_find(struct ap_perfmap *m, uint64_t addr, uint64_t *start)
{
	const struct pm_ent *best = NULL;
	size_t lo = 0, hi;

	if (!m || !m->n)
		return NULL;
	if (!m->sorted) {
		if (m->n > 1) /* qsort(NULL, 0) is UB */
			qsort(m->v, m->n, sizeof(*m->v), ent_cmp);
		m->sorted = true;
	}
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* entries below the last start <= addr may still cover it (overlapping code); the
	 * newest covering one wins */
	for (size_t i = lo, k = 0; i > 0 && k < OVERLAP_SCAN; i--, k++) {
		const struct pm_ent *e = &m->v[i - 1];

		if (addr - e->start < e->size && (!best || e->seq > best->seq))
			best = e;
	}
	if (!best)
		return NULL;
	if (start)
		*start = best->start;
	return m->names + best->name;
}

static struct ap_perfmap *perfmap_from_fd(int fd, const char *module)
{
	struct ap_perfmap *m = calloc(1, sizeof(*m));

	if (!m) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	m->fd = fd;
	snprintf(m->module, sizeof(m->module), "%s", module);
	if (ap_perfmap_update(m) == -ENOMEM) {
		ap_perfmap_free(m);
		errno = ENOMEM;
		return NULL;
	}
	return m;
}

struct ap_perfmap *ap_perfmap_open_path(const char *path)
{
	const char *base = strrchr(path, '/');
	struct stat st;
	/* a FIFO planted under the name must not hang us, nor may a symlink make us read
	 * (and show) another file */
	int fd = ap_open_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW, 0, &st);

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	return perfmap_from_fd(fd, base ? base + 1 : path);
}

struct ap_perfmap *ap_perfmap_open(int pid, int nspid)
{
	char path[96], module[32];
	struct stat st, proc;
	int fd, root;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (stat(path, &proc))
		return NULL;
	/* the process's /tmp, resolved inside its root: a symlink there (/tmp itself, or the
	 * map) cannot lead to a host file */
	root = ap_open_proc_root(pid);
	if (root < 0) {
		errno = -root;
		return NULL;
	}
	snprintf(path, sizeof(path), "tmp/perf-%d.map", nspid);
	fd = ap_open_untrusted(root, path, AP_OPEN_IN_ROOT | AP_OPEN_NOFOLLOW, 0, &st);
	close(root);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	/* written by the process itself (owner of /proc/PID) or by root for it */
	if (st.st_uid != proc.st_uid && st.st_uid != 0) {
		close(fd);
		errno = EPERM;
		return NULL;
	}
	snprintf(module, sizeof(module), "perf-%d.map", nspid);
	return perfmap_from_fd(fd, module);
}

void ap_perfmap_free(struct ap_perfmap *m)
{
	if (!m)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->v);
	free(m->names);
	free(m->partial);
	free(m);
}

const char *ap_perfmap_module(const struct ap_perfmap *m)
{
	return m->module;
}

size_t ap_perfmap_count(const struct ap_perfmap *m)
{
	return m ? m->n : 0;
}
