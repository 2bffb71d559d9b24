/* SPDX-License-Identifier: MIT */
/* Draining BPF hash maps: the step every collector's drain shares. */
#ifndef AP_MAP_DUMP_H
#define AP_MAP_DUMP_H

#include <stddef.h>

/* The entries of a map at one moment, in reusable arrays (one dump per map, kept across
 * drains so steady-state drains do not allocate). */
struct ap_map_dump {
	void *keys;
	void *vals;
	size_t n;
	size_t cap;
	size_t key_size;
	size_t val_size;
};

void ap_map_dump_init(struct ap_map_dump *d, size_t key_size, size_t val_size);
/* Read every entry of the hash map `fd` into d, then delete those entries. Entries added
 * meanwhile stay in the map. Returns 0 or -ENOMEM (what was read so far stays in d). */
int ap_map_dump_take(struct ap_map_dump *d, int fd);
void ap_map_dump_free(struct ap_map_dump *d);

static inline void *ap_map_dump_key(const struct ap_map_dump *d, size_t i)
{
	return (char *)d->keys + i * d->key_size;
}

static inline void *ap_map_dump_val(const struct ap_map_dump *d, size_t i)
{
	return (char *)d->vals + i * d->val_size;
}

struct ap_profile;

/* Sum each slot of a per-CPU array of __u64 counters over the CPUs and set it as the profile
 * stat names[slot] (NULL names are skipped). Returns 0 or -errno. */
int ap_percpu_stats_report(int fd, const char *const *names, unsigned int nslots,
			   struct ap_profile *p);

/* Delete every entry of the hash map `fd` (keys of key_size bytes). Returns 0 or -ENOMEM. */
int ap_map_clear(int fd, size_t key_size);

#endif
