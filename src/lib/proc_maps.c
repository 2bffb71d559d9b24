// SPDX-License-Identifier: MIT
/* /proc/PID/maps reader. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "proc_maps.h"
#include "safe_open.h"

/* 65,530 mappings (vm.max_map_count) of ~4 KiB paths at worst: beyond, a read error */
#define MAPS_MAX_BYTES (512ull << 20)

/* Hex (or decimal) number followed by `stop`; advances *p past the separator. */
static int parse_num(char **p, int base, char stop, uint64_t *out)
{
	char *end;

	if (!isxdigit((unsigned char)**p))
		return -EINVAL;
	errno = 0;
	*out = strtoull(*p, &end, base);
	if (errno || *end != stop)
		return -EINVAL;
	*p = end + 1;
	return 0;
}

int ap_maps_parse_line(char *line, struct ap_maps_entry *e)
{
	static const char deleted[] = " (deleted)";
	uint64_t major, minor;
	char *p = line;
	size_t len;

	memset(e, 0, sizeof(*e));
	if (parse_num(&p, 16, '-', &e->start) || parse_num(&p, 16, ' ', &e->end) ||
	    e->end < e->start)
		return -EINVAL;
	if (strlen(p) < 5 || p[4] != ' ')
		return -EINVAL;
	memcpy(e->perms, p, 4);
	p += 5;
	if (parse_num(&p, 16, ' ', &e->offset) || parse_num(&p, 16, ':', &major) ||
	    parse_num(&p, 16, ' ', &minor))
		return -EINVAL;
	/* the inode is the last field when there is no path */
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	e->inode = strtoull(p, &p, 10);
	if (errno || (*p && *p != ' ' && *p != '\n'))
		return -EINVAL;
	e->dev_major = (uint32_t)major;
	e->dev_minor = (uint32_t)minor;
	while (*p == ' ')
		p++;
	len = strlen(p);
	if (len && p[len - 1] == '\n')
		p[--len] = '\0';
	/* the kernel appends this to unlinked files; the file is still reachable through
	 * map_files, and the name without it is what the user knows */
	if (len >= sizeof(deleted) - 1 && !strcmp(p + len - (sizeof(deleted) - 1), deleted)) {
		p[len - (sizeof(deleted) - 1)] = '\0';
		e->deleted = true;
	}
	e->path = p;
	return 0;
}

int ap_maps_read(int pid, int (*cb)(const struct ap_maps_entry *e, void *ctx), void *ctx)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = ap_fopen_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW, MAPS_MAX_BYTES);
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	errno = 0;
	while (getline(&line, &cap, f) > 0) {
		struct ap_maps_entry e;

		/* a line we do not understand is skipped, not fatal: newer kernels may add
		 * forms we have not seen */
		if (ap_maps_parse_line(line, &e))
			continue;
		err = cb(&e, ctx);
		if (err)
			goto out;
	}
	/* reading maps of a process that exits meanwhile fails with ESRCH */
	if (ferror(f))
		err = errno ? -errno : -EIO;
out:
	free(line);
	fclose(f);
	return err;
}

/* ---- captured mappings ---- */

struct ap_maps_capture {
	struct ap_maps_entry *v;
	size_t n, cap;
	char *pool; /* the paths, one after the other; v[i].path holds an offset until done */
	size_t pool_len, pool_cap;
};

static int capture_cb(const struct ap_maps_entry *e, void *ctx)
{
	struct ap_maps_capture *c = ctx;
	size_t len = strlen(e->path) + 1;

	if (e->perms[2] != 'x') /* code is what the symbolizer and the unwinder use */
		return 0;
	if (ap_grow_array((void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v)) ||
	    ap_grow_array((void **)&c->pool, &c->pool_cap, c->pool_len + len, 1))
		return -ENOMEM;
	c->v[c->n] = *e;
	c->v[c->n].path = (const char *)(uintptr_t)c->pool_len;
	c->n++;
	memcpy(c->pool + c->pool_len, e->path, len);
	c->pool_len += len;
	return 0;
}

int ap_maps_capture(int pid, struct ap_maps_capture **out)
{
	struct ap_maps_capture *c = calloc(1, sizeof(*c));
	int err;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	err = ap_maps_read(pid, capture_cb, c);
	if (!err && !c->n)
		err = -ESRCH; /* a zombie or a kernel thread: nothing to symbolize with */
	if (err) {
		ap_maps_capture_free(c);
		return err;
	}
	for (size_t i = 0; i < c->n; i++) /* the pool is final: offsets become pointers */
		c->v[i].path = c->pool + (uintptr_t)c->v[i].path;
	*out = c;
	return 0;
}

void ap_maps_capture_free(struct ap_maps_capture *c)
{
	if (!c)
		return;
	free(c->v);
	free(c->pool);
	free(c);
}

int ap_maps_capture_walk(const struct ap_maps_capture *c,
			 int (*cb)(const struct ap_maps_entry *e, void *ctx), void *ctx)
{
	for (size_t i = 0; i < c->n; i++) {
		int err = cb(&c->v[i], ctx);

		if (err)
			return err;
	}
	return 0;
}
