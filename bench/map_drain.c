// SPDX-License-Identifier: MIT
/*
 * Map drain cost: batch (BPF_MAP_LOOKUP_AND_DELETE_BATCH) against per entry (get-next-key,
 * lookup, delete), through the agent's own ap_map_dump_take / ap_map_clear, on hash maps of
 * the collectors' shapes filled to N entries (default 16384, the CPU collector's largest
 * default size). Each drain is checked: every entry back, the map empty. Root (BPF maps).
 *
 *   bench_map_drain [--entries N] [--rounds R]
 */
#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpf/cpu.h"
#include "bpf/lock.h"
#include "agent/map_dump.h"

struct shape {
	const char *name;
	size_t key_size, val_size;
	bool clear; /* drained as a key set: ap_map_clear (the stacks maps) */
};

static const struct shape shapes[] = {
	{ "cpu counts (ap_cpu_key -> u64)", sizeof(struct ap_cpu_key), sizeof(__u64), false },
	{ "lock waits (ap_lock_key -> ap_lock_val)", sizeof(struct ap_lock_key),
	  sizeof(struct ap_lock_val), false },
	{ "cpu stacks (u64 -> ap_stack), clear", sizeof(__u64), sizeof(struct ap_stack), true },
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Entry i: a distinct key (its first 8 bytes), a value that says which key it belongs to. */
static int fill(int fd, const struct shape *s, unsigned int n, void *key, void *val)
{
	for (unsigned int i = 0; i < n; i++) {
		__u64 k = (__u64)i * 0x9e3779b97f4a7c15ULL + 1;

		memset(key, 0, s->key_size);
		memset(val, 0, s->val_size);
		memcpy(key, &k, sizeof(k));
		memcpy(val, &k, sizeof(k));
		if (bpf_map_update_elem(fd, key, val, BPF_NOEXIST))
			return -errno;
	}
	return 0;
}

/* One timed drain; -1 when it did not return every entry or left some behind. */
static double drain_once(int fd, const struct shape *s, enum ap_map_dump_path path,
			 unsigned int n, void *key)
{
	struct ap_map_dump d;
	double t0, t;
	int err;

	ap_map_dump_init(&d, s->key_size, s->clear ? 0 : s->val_size);
	d.path = path;
	t0 = now_ms();
	/* a key set is cleared by ap_map_clear (batch, falling back per entry); the per-entry
	 * path of a clear is what that fallback runs */
	err = s->clear && path == AP_MAP_DUMP_BATCH ? ap_map_clear(fd, s->key_size) :
						      ap_map_dump_take(&d, fd);
	t = now_ms() - t0;
	if (err) {
		fprintf(stderr, "bench_map_drain: %s: drain failed: %s\n", s->name, strerror(-err));
		t = -1;
	} else if (!(s->clear && path == AP_MAP_DUMP_BATCH) && d.n != n) {
		fprintf(stderr, "bench_map_drain: %s: %zu entries back, %u inserted\n", s->name, d.n,
			n);
		t = -1;
	} else if (bpf_map_get_next_key(fd, NULL, key) == 0) {
		fprintf(stderr, "bench_map_drain: %s: entries left in the map\n", s->name);
		t = -1;
	}
	for (size_t i = 0; t >= 0 && d.val_size && i < d.n; i++) {
		/* each value still belongs to its key */
		if (memcmp(ap_map_dump_key(&d, i), ap_map_dump_val(&d, i), sizeof(__u64))) {
			fprintf(stderr, "bench_map_drain: %s: value of another key\n", s->name);
			t = -1;
		}
	}
	ap_map_dump_free(&d);
	return t;
}

int main(int argc, char **argv)
{
	unsigned int n = 16384, rounds = 7;
	static const enum ap_map_dump_path paths[] = { AP_MAP_DUMP_PER_ENTRY, AP_MAP_DUMP_BATCH };
	static const char *const path_names[] = { "per-entry", "batch" };
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
			n = (unsigned int)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = (unsigned int)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: bench_map_drain [--entries N] [--rounds R]\n");
			return 2;
		}
	}
	if (n < 1 || n > (1u << 22) || rounds < 1 || rounds > 1000) {
		fprintf(stderr, "bench_map_drain: --entries 1..4194304, --rounds 1..1000\n");
		return 2;
	}
	printf("%-42s %8s %-10s %10s %10s %12s\n", "map", "entries", "path", "median ms", "min ms",
	       "us/entry");
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		const struct shape *s = &shapes[si];
		void *key = calloc(1, s->key_size), *val = calloc(1, s->val_size);
		double *t = calloc(rounds, sizeof(*t));
		int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_drain", (__u32)s->key_size,
					(__u32)s->val_size, n, NULL);

		if (fd < 0) {
			int err = errno;

			printf("SKIP: cannot create a BPF hash map: %s\n", strerror(err));
			return err == EPERM || err == EACCES ? 77 : 1;
		}
		if (!key || !val || !t)
			return 1;
		for (size_t pi = 0; pi < 2; pi++) {
			for (unsigned int r = 0; r < rounds; r++) {
				int err = fill(fd, s, n, key, val);

				if (err) {
					fprintf(stderr, "bench_map_drain: fill: %s\n", strerror(-err));
					return 1;
				}
				t[r] = drain_once(fd, s, paths[pi], n, key);
				if (t[r] < 0) {
					ret = 1;
					ap_map_clear(fd, s->key_size); /* for the next round */
				}
			}
			qsort(t, rounds, sizeof(*t), cmp_double);
			printf("%-42s %8u %-10s %10.2f %10.2f %12.3f\n", s->name, n, path_names[pi],
			       t[rounds / 2], t[0], t[rounds / 2] * 1e3 / n);
		}
		close(fd);
		free(key);
		free(val);
		free(t);
	}
	return ret;
}
