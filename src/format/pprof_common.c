// SPDX-License-Identifier: MIT
#include "pprof_internal.h"

/* ---- a small u64 -> u32 map (function keys, pprof ids), on the shared hash index ---- */

static size_t map_find(const struct u64map *m, uint64_t key)
{
	size_t i;

	for (i = ap_hidx_first(&m->idx, ap_hash_mix64(key)); i != AP_HIDX_NONE;
	     i = ap_hidx_next(&m->idx, i))
		if (m->keys[i] == key)
			break;
	return i;
}

bool ap_pprof_map_get(const struct u64map *m, uint64_t key, uint32_t *val)
{
	size_t i = map_find(m, key);

	if (i == AP_HIDX_NONE)
		return false;
	*val = m->vals[i];
	return true;
}

int ap_pprof_map_put(struct u64map *m, uint64_t key, uint32_t val)
{
	size_t n = ap_hidx_count(&m->idx);
	int err;

	if (map_find(m, key) != AP_HIDX_NONE)
		return -EEXIST;
	if (ap_grow_array((void **)&m->keys, &m->cap_keys, n + 1, sizeof(*m->keys)) ||
	    ap_grow_array((void **)&m->vals, &m->cap_vals, n + 1, sizeof(*m->vals)))
		return -ENOMEM;
	err = ap_hidx_add(&m->idx, n, ap_hash_mix64(key));
	if (err)
		return err;
	m->keys[n] = key;
	m->vals[n] = val;
	return 0;
}

void ap_pprof_map_free(struct u64map *m)
{
	ap_hidx_release(&m->idx);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}
