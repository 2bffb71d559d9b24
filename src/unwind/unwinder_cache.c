// SPDX-License-Identifier: MIT
/*
 * Compiled unwind tables on disk, by build-id (<cache root>/unwind/<build-id>.uwt, see
 * src/lib/cache_dir.h). Compiling a big library's CFI takes a while (libLLVM: 0.25 s of CPU
 * and 1.2 M rows); loading its table from the cache is one read into the BPF map's memory.
 * So an agent that restarts, or a second agent, does not pay for it again, and a process
 * started right after the agent has its tables in milliseconds.
 *
 * A cached table is used only if it was written by this very agent build (its own build-id
 * is in the header: a changed compiler may compile differently) for the same file build-id,
 * and its sizes add up. Anything else is compiled again and the cache entry rewritten.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/cache_dir.h"
#include "lib/safe_open.h"
#include "unwinder_internal.h"

#define CACHE_MAGIC "APUWTB01"
#define CACHE_SUFFIX ".uwt"
#define CACHE_CAP_BYTES (512ull << 20)
#define MAX_CACHED_SEGS 64

struct cache_hdr {
	char magic[8];
	uint32_t hdr_size;
	uint32_t nsegs;
	uint64_t base;
	uint64_t entries;
	uint32_t nbuckets;
	uint32_t row_base;
	uint32_t nrows;
	uint8_t shift;
	uint8_t pad[3];
	struct ap_cfi_table_stats stats;
	char build_id[AP_CFI_BUILD_ID_HEX];
	char agent_id[AP_CFI_BUILD_ID_HEX];
};

int ap_uw_cache_init(struct ap_unwinder *u, const char *dir)
{
	int err;

	u->cache_dir[0] = '\0';
	if (dir && !*dir)
		return 0; /* off */
	/* whose tables these are: ours only */
	{
		int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return -errno;
		err = ap_cfi_build_id_fd(fd, u->agent_id, sizeof(u->agent_id));
		close(fd);
	}
	if (err || !u->agent_id[0])
		return err ? err : -ENOENT;
	if (dir) {
		err = ap_mkdir_p(dir);
		if (!err)
			snprintf(u->cache_dir, sizeof(u->cache_dir), "%s", dir);
		return err;
	}
	return ap_cache_dir("unwind", u->cache_dir, sizeof(u->cache_dir));
}

static int cache_path(const struct ap_unwinder *u, const char *build_id, char *out, size_t len)
{
	if (!u->cache_dir[0] || !ap_cache_valid_id(build_id, AP_CFI_BUILD_ID_HEX / 2))
		return -ENOENT;
	if (snprintf(out, len, "%s/%s" CACHE_SUFFIX, u->cache_dir, build_id) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int ap_uw_cache_load(struct ap_unwinder *u, const char *build_id, struct ap_cfi_table *c,
		     const struct ap_cfi_sink *sink)
{
	struct cache_hdr h;
	char path[PATH_MAX];
	struct stat st;
	size_t segs_len;
	int fd, err;

	memset(c, 0, sizeof(*c));
	err = cache_path(u, build_id, path, sizeof(path));
	if (err)
		return err;
	/* only our own regular file: a planted link, FIFO or another user's file is skipped */
	fd = ap_open_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW | AP_OPEN_OWNED, 0, &st);
	if (fd < 0) {
		if (fd != -ENOENT)
			__atomic_fetch_add(&u->cache_untrusted, 1, __ATOMIC_RELAXED);
		return fd;
	}
	err = ap_pread_full(fd, &h, sizeof(h), 0);
	if (err)
		goto out;
	segs_len = (size_t)h.nsegs * sizeof(*c->segs);
	if (memcmp(h.magic, CACHE_MAGIC, 8) || h.hdr_size != sizeof(h) ||
	    h.nsegs > MAX_CACHED_SEGS || h.entries != (uint64_t)h.row_base + h.nrows ||
	    strncmp(h.build_id, build_id, sizeof(h.build_id)) ||
	    strncmp(h.agent_id, u->agent_id, sizeof(h.agent_id)) ||
	    (uint64_t)st.st_size != sizeof(h) + segs_len + h.entries * 8) {
		err = -ESTALE;
		goto out;
	}
	c->segs = malloc(segs_len ? segs_len : 1);
	if (!c->segs) {
		err = -ENOMEM;
		goto out;
	}
	err = ap_pread_full(fd, c->segs, segs_len, sizeof(h));
	if (err)
		goto out;
	c->image = sink->alloc(sink->ctx, h.entries);
	if (!c->image) {
		err = -ENOMEM;
		goto out;
	}
	c->image_external = true;
	err = ap_pread_full(fd, c->image, h.entries * 8, sizeof(h) + segs_len);
	if (err)
		goto out;
	c->nsegs = h.nsegs;
	c->base = h.base;
	c->nbuckets = h.nbuckets;
	c->row_base = h.row_base;
	c->nrows = h.nrows;
	c->shift = h.shift;
	c->stats = h.stats;
	memcpy(c->build_id, h.build_id, sizeof(c->build_id));
	/* mark it used: the cache drops the least recently used first */
	futimens(fd, NULL);
out:
	close(fd);
	if (err)
		ap_cfi_table_release(c);
	return err;
}

int ap_uw_cache_store(struct ap_unwinder *u, const char *build_id, const struct ap_cfi_table *c)
{
	struct cache_hdr h = { .hdr_size = sizeof(h) };
	char path[PATH_MAX], tmp[PATH_MAX + 16], name[AP_CFI_BUILD_ID_HEX + 8];
	size_t segs_len = (size_t)c->nsegs * sizeof(*c->segs);
	int fd, err;

	if (c->nsegs > MAX_CACHED_SEGS)
		return -E2BIG;
	err = cache_path(u, build_id, path, sizeof(path));
	if (err)
		return err;
	/* a hidden temporary name: the pruner and the loader never see a half-written file */
	snprintf(tmp, sizeof(tmp), "%s/.%s" CACHE_SUFFIX ".XXXXXX", u->cache_dir, build_id);
	memcpy(h.magic, CACHE_MAGIC, 8);
	h.nsegs = c->nsegs;
	h.base = c->base;
	h.entries = ap_cfi_table_entries(c);
	h.nbuckets = c->nbuckets;
	h.row_base = c->row_base;
	h.nrows = c->nrows;
	h.shift = c->shift;
	h.stats = c->stats;
	snprintf(h.build_id, sizeof(h.build_id), "%s", build_id);
	memcpy(h.agent_id, u->agent_id, sizeof(h.agent_id));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = ap_pwrite_full(fd, &h, sizeof(h), 0);
	if (!err)
		err = ap_pwrite_full(fd, c->segs, segs_len, sizeof(h));
	if (!err)
		err = ap_pwrite_full(fd, c->image, h.entries * 8, sizeof(h) + segs_len);
	if (!err && fchmod(fd, 0644))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	snprintf(name, sizeof(name), "%s" CACHE_SUFFIX, build_id);
	ap_cache_prune(u->cache_dir, CACHE_SUFFIX, CACHE_CAP_BYTES, name);
	return 0;
}
