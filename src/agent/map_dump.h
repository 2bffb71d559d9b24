/* SPDX-License-Identifier: MIT */
/* Draining BPF hash maps: the step every collector's drain shares. */
#ifndef AP_MAP_DUMP_H
#define AP_MAP_DUMP_H

#include <stddef.h>

/*
 * How a dump reads its map. Batch: BPF_MAP_LOOKUP_AND_DELETE_BATCH, a few syscalls per drain
 * (Linux 5.6+, hash maps). Per entry: get-next-key, lookup and delete, three syscalls an
 * entry; what a kernel or map type that refuses the batch (EINVAL, ENOTSUPP, EOPNOTSUPP)
 * gets. Auto: batch until refused once, then per entry for the rest of the dump's life.
 */
enum ap_map_dump_path {
	AP_MAP_DUMP_AUTO = 0,
	AP_MAP_DUMP_BATCH,     /* batch only: a refusal is returned (tests, benchmarks) */
	AP_MAP_DUMP_PER_ENTRY, /* per entry only */
};

/* The entries of a map at one moment, in reusable arrays (one dump per map, kept across
 * drains so steady-state drains do not allocate). */
struct ap_map_dump {
	void *keys;
	void *vals;
	size_t n;
	size_t cap;
	size_t key_size;
	size_t val_size;
	enum ap_map_dump_path path; /* AUTO after init; AUTO becomes PER_ENTRY on a refusal */
	int batch_refused;	    /* the -errno that sent AUTO to PER_ENTRY; 0: none */
};

void ap_map_dump_init(struct ap_map_dump *d, size_t key_size, size_t val_size);
/* Read every entry of the hash map `fd` into d and delete it from the map. Entries added
 * meanwhile may stay in the map. Returns 0 or -errno (what was read so far stays in d and
 * is gone from the map). */
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

/* Delete every entry of the hash map `fd` (keys of key_size bytes), in batches where the
 * kernel allows. Returns 0 or -errno. */
int ap_map_clear(int fd, size_t key_size);

#endif
