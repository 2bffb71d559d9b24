// SPDX-License-Identifier: MIT
#include "pprof_internal.h"

/* ---- a small u64 -> u32 hash map (function keys, pprof ids) ---- */


static size_t mix64(uint64_t k)
{
	k ^= k >> 30;
	k *= 0xbf58476d1ce4e5b9ULL;
	k ^= k >> 27;
	k *= 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (size_t)k;
}

static size_t map_slot(const struct u64map *m, uint64_t key)
{
	size_t j;

	for (j = mix64(key) & (m->cap - 1); m->used[j] && m->keys[j] != key;
	     j = (j + 1) & (m->cap - 1))
		;
	return j;
}

bool ap_pprof_map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
	size_t j;

	if (!m->cap)
		return false;
	j = map_slot(m, key);
	if (!m->used[j])
		return false;
	*val = m->vals[j];
	return true;
}

static int map_grow(struct u64map *m)
{
	struct u64map n = {0};

	n.cap = m->cap ? m->cap * 2 : 64;
	n.keys = malloc(n.cap * sizeof(*n.keys));
	n.vals = malloc(n.cap * sizeof(*n.vals));
	n.used = calloc(n.cap, 1);
	if (!n.keys || !n.vals || !n.used) {
		free(n.keys);
		free(n.vals);
		free(n.used);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->used[i])
			continue;
		j = map_slot(&n, m->keys[i]);
		n.used[j] = 1;
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
	}
	n.n = m->n;
	free(m->keys);
	free(m->vals);
	free(m->used);
	*m = n;
	return 0;
}

/* Returns 0, -EEXIST when the key is already there, or -ENOMEM. */
int ap_pprof_map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	size_t j;

	if ((m->n + 1) * 2 > m->cap) {
		int err = map_grow(m);

		if (err)
			return err;
	}
	j = map_slot(m, key);
	if (m->used[j])
		return -EEXIST;
	m->used[j] = 1;
	m->keys[j] = key;
	m->vals[j] = val;
	m->n++;
	return 0;
}

void ap_pprof_map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof(*m));
}

