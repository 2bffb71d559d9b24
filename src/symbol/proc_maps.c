// SPDX-License-Identifier: MIT
/* /proc/PID/maps reader. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbol_internal.h"

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
	f = fopen(path, "re");
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
