// SPDX-License-Identifier: MIT
#include "map_dump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "profile.h"

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

int ap_map_dump_take(struct ap_map_dump *d, int fd)
{
	void *prev = NULL;
	int err = 0;

	d->n = 0;
	/* walk first, delete after: get_next_key from a deleted hash key restarts the walk */
	while ((err = grow(d, d->n + 1)) == 0 &&
	       bpf_map_get_next_key(fd, prev, ap_map_dump_key(d, d->n)) == 0) {
		/* an entry deleted under us is not kept: its slot is reused for the next key,
		 * which is safe because the kernel reads `prev` before it writes the next key */
		prev = ap_map_dump_key(d, d->n);
		if (!d->val_size || bpf_map_lookup_elem(fd, prev, ap_map_dump_val(d, d->n)) == 0)
			d->n++;
	}
	for (size_t i = 0; i < d->n; i++)
		bpf_map_delete_elem(fd, ap_map_dump_key(d, i));
	return err;
}

void ap_map_dump_free(struct ap_map_dump *d)
{
	free(d->keys);
	free(d->vals);
	d->keys = d->vals = NULL;
	d->n = d->cap = 0;
}

int ap_map_clear(int fd, size_t key_size)
{
	struct ap_map_dump d;
	int err;

	ap_map_dump_init(&d, key_size, 0);
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
