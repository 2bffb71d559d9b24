// SPDX-License-Identifier: MIT
#include "map_dump.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/profile.h"

/* The kernel's "operation not supported" (not in the userspace errno headers): what it
 * answers a batch operation the map type lacks. */
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

/* A batch cursor: a hash map's is a u32 bucket index, other maps' a key. */
#define BATCH_TOKEN_MAX 256
/* Entries per batch call when the values are not kept (ap_map_clear). */
#define CLEAR_CHUNK 256u

void ap_map_dump_init(struct ap_map_dump *d, size_t key_size, size_t val_size)
{
	memset(d, 0, sizeof(*d));
	d->key_size = key_size;
	d->val_size = val_size;
}

static int grow(struct ap_map_dump *d, size_t need)
{
	size_t ncap = d->cap ? d->cap : 256;
	void *k, *v;

	if (need <= d->cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	k = realloc(d->keys, ncap * d->key_size);
	if (!k)
		return -ENOMEM;
	d->keys = k;
	/* maps without values (key sets) still get one byte per entry to keep this simple */
	v = realloc(d->vals, ncap * (d->val_size ? d->val_size : 1));
	if (!v)
		return -ENOMEM;
	d->vals = v;
	d->cap = ncap;
	return 0;
}

/* What a kernel or a map type without the batch operations answers. */
static bool batch_refusal(int err)
{
	return err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP;
}

/*
 * One BPF_MAP_LOOKUP_AND_DELETE_BATCH call: up to *count entries from the cursor `in`
 * (NULL: the start) into keys/vals, the next cursor into `out`. *count: how many came back,
 * also with -ENOENT (the last call). Returns 0, -ENOENT at the end, or -errno.
 */
static int batch_call(int fd, void *in, void *out, void *keys, void *vals, __u32 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int err = bpf_map_lookup_and_delete_batch(fd, in, out, keys, vals, count, &opts);

	err = err < 0 ? -errno : 0;
	/* the kernel writes the count back only then: a refusal leaves our request in it */
	if (err && err != -ENOENT && err != -ENOSPC)
		*count = 0;
	return err;
}

/* Batch path: every entry in a few calls, each entry read and deleted once (the cursor moves
 * over the hash buckets, so entries are neither skipped nor read twice). */
static int take_batch(struct ap_map_dump *d, int fd)
{
	unsigned char token[2][BATCH_TOKEN_MAX];
	void *in = NULL, *out = token[0];
	int err;

	if (!d->val_size || d->key_size > BATCH_TOKEN_MAX)
		return -EINVAL; /* key sets have no values to read; see ap_map_clear */
	for (;;) {
		__u32 count;

		/* room for as many entries again as there are: a handful of calls in all */
		err = grow(d, d->n + (d->n > 256 ? d->n : 256));
		if (err)
			return err;
		count = (__u32)(d->cap - d->n);
		err = batch_call(fd, in, out, ap_map_dump_key(d, d->n), ap_map_dump_val(d, d->n),
				 &count);
		d->n += count;
		if (err == -ENOENT)
			return 0;
		if (err == -ENOSPC && count == 0) {
			/* one bucket holds more entries than there was room for */
			err = grow(d, d->cap * 2);
			if (err)
				return err;
			continue;
		}
		if (err)
			return err;
		in = out;
		out = out == token[0] ? token[1] : token[0];
	}
}

/* Per-entry path: walk first, delete after (get_next_key from a deleted hash key restarts
 * the walk). Appends to what d holds. */
static int take_per_entry(struct ap_map_dump *d, int fd)
{
	size_t first = d->n, prev = 0;
	bool started = false;
	int err = 0;

	/* the previous key by index: grow() may move the array */
	while ((err = grow(d, d->n + 1)) == 0 &&
	       bpf_map_get_next_key(fd, started ? ap_map_dump_key(d, prev) : NULL,
				    ap_map_dump_key(d, d->n)) == 0) {
		/* an entry deleted under us is not kept: its slot is reused for the next key,
		 * which is safe because the kernel reads `prev` before it writes the next key */
		prev = d->n;
		started = true;
		if (!d->val_size ||
		    bpf_map_lookup_elem(fd, ap_map_dump_key(d, prev), ap_map_dump_val(d, d->n)) == 0)
			d->n++;
	}
	for (size_t i = first; i < d->n; i++)
		bpf_map_delete_elem(fd, ap_map_dump_key(d, i));
	return err;
}

int ap_map_dump_take(struct ap_map_dump *d, int fd)
{
	int err;

	d->n = 0;
	if (d->path == AP_MAP_DUMP_PER_ENTRY)
		return take_per_entry(d, fd);
	err = take_batch(d, fd);
	if (d->path == AP_MAP_DUMP_AUTO && batch_refusal(err)) {
		/* refused (the first call's answer: nothing was taken; the per-entry path would
		 * append to what was), and it will be again: per entry from now on */
		d->path = AP_MAP_DUMP_PER_ENTRY;
		d->batch_refused = err;
		return take_per_entry(d, fd);
	}
	return err;
}

void ap_map_dump_free(struct ap_map_dump *d)
{
	free(d->keys);
	free(d->vals);
	d->keys = d->vals = NULL;
	d->n = d->cap = 0;
}

/* Batch path of ap_map_clear: the values are read (the operation has no key-only form) into
 * a fixed buffer and dropped. */
static int clear_batch(int fd, size_t key_size, size_t val_size)
{
	unsigned char token[2][BATCH_TOKEN_MAX];
	void *in = NULL, *out = token[0], *keys, *vals;
	int err;

	if (key_size > BATCH_TOKEN_MAX || !val_size)
		return -EINVAL;
	keys = malloc(CLEAR_CHUNK * key_size);
	vals = malloc(CLEAR_CHUNK * val_size);
	err = keys && vals ? 0 : -ENOMEM;
	while (!err) {
		__u32 count = CLEAR_CHUNK;

		err = batch_call(fd, in, out, keys, vals, &count);
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		in = out;
		out = out == token[0] ? token[1] : token[0];
	}
	free(keys);
	free(vals);
	return err;
}

int ap_map_clear(int fd, size_t key_size)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	struct ap_map_dump d;
	int err;

	if (bpf_obj_get_info_by_fd(fd, &info, &info_len))
		return -errno;
	if (info.key_size != key_size)
		return -EINVAL; /* the per-entry walk would write keys past the buffer */
	err = clear_batch(fd, key_size, info.value_size);
	/* refused, or a bucket fuller than a chunk (-ENOSPC): what is left, per entry */
	if (!err || (!batch_refusal(err) && err != -ENOSPC))
		return err;
	ap_map_dump_init(&d, key_size, 0);
	d.path = AP_MAP_DUMP_PER_ENTRY;
	err = ap_map_dump_take(&d, fd);
	ap_map_dump_free(&d);
	return err;
}

int ap_percpu_stats_report(int fd, const char *const *names, unsigned int nslots,
			   struct ap_profile *p)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t *vals;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < nslots; i++) {
		uint64_t sum = 0;

		if (!names[i] || bpf_map_lookup_elem(fd, &i, vals))
			continue;
		for (int cpu = 0; cpu < ncpus; cpu++)
			sum += vals[cpu];
		ap_profile_set_stat(p, names[i], sum);
	}
	free(vals);
	return 0;
}
