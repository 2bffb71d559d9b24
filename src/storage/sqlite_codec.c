// SPDX-License-Identifier: MIT
/* The SQLite backend's encodings, hashes, hash map and query planner: pure code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "sqlite_internal.h"

const struct sq_tier sq_tiers[SQ_NTIERS] = {
	{ "raw", 0, true },
	{ "m1", 60000000000ULL, true },
	{ "m10", 600000000000ULL, false },
	{ "h1", SQ_HOUR_NS, false },
};

static void plan_rec(uint64_t from, uint64_t until, int top, unsigned mask, const int64_t *wm,
		     struct sq_segment *out, size_t *n)
{
	if (from >= until)
		return;
	for (int k = top; k > 0; k--) {
		uint64_t res = sq_tiers[k].res_ns, lo, hi, end = until;

		if (!(mask & (1u << k)))
			continue;
		if (wm && (uint64_t)wm[k] < end) /* the tier holds only what is below its mark */
			end = wm[k] > 0 ? (uint64_t)wm[k] : 0;
		lo = from % res ? from - from % res + res : from;
		hi = end - end % res;
		if (lo < from || lo >= hi) /* no whole bucket (or lo overflowed) */
			continue;
		out[(*n)++] = (struct sq_segment){ k, (int64_t)lo, (int64_t)hi };
		plan_rec(from, lo, k - 1, mask, wm, out, n);
		plan_rec(hi, until, k - 1, mask, wm, out, n);
		return;
	}
	out[(*n)++] = (struct sq_segment){ 0, (int64_t)from, (int64_t)until };
}

size_t sq_plan(uint64_t from, uint64_t until, unsigned tier_mask, const int64_t *wm,
	       struct sq_segment *out)
{
	size_t n = 0;

	if (until > (uint64_t)INT64_MAX)
		until = INT64_MAX;
	plan_rec(from, until, SQ_NTIERS - 1, tier_mask, wm, out, &n);
	return n;
}

/* ---- hashes (in-memory index keys; the ids stored are small integers) ---- */

uint64_t sq_str_hash(const char *s, size_t n)
{
	return ap_hash_bytes(s ? s : "", n, 0x737472ULL) | 1; /* never 0: 0 = "not computed" */
}

/* Word-wise folds of 64-bit hashes: a push hashes thousands of frames, and the byte hash
 * runs once per distinct string only. */
uint64_t sq_frame_hash2(uint64_t name_h, uint64_t module_h, uint64_t file_h, uint32_t line,
			uint32_t kind, uint32_t flags)
{
	uint64_t h = ap_hash_mix64(name_h ^ 0x6672616d65ULL);

	h = ap_hash_mix64(h ^ module_h);
	h = ap_hash_mix64(h ^ file_h);
	return ap_hash_mix64(h ^ ((uint64_t)line << 32 | (uint64_t)kind << 8 | flags));
}

uint64_t sq_frame_hash(const char *name, const char *module, const char *file, uint32_t line,
		       uint32_t kind, uint32_t flags)
{
	name = name ? name : "";
	module = module ? module : "";
	file = file ? file : "";
	return sq_frame_hash2(sq_str_hash(name, strlen(name)), sq_str_hash(module, strlen(module)),
			      sq_str_hash(file, strlen(file)), line, kind, flags);
}

uint64_t sq_stack_hash(const uint64_t *frame_hashes, size_t n)
{
	uint64_t h = 0x737461636bULL ^ n;

	for (size_t i = 0; i < n; i++)
		h = ap_hash_mix64(h ^ frame_hashes[i]) + i;
	return h;
}

uint64_t sq_series_hash(const void *labels, size_t llen, const void *vtypes, size_t vlen)
{
	return ap_hash_bytes(vtypes, vlen, ap_hash_bytes(labels, llen, 0x736572696573ULL));
}

/* ---- buffers and varints ---- */

int sq_buf_put(struct sq_buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *nb;

		while (cap < b->n + n)
			cap *= 2;
		nb = realloc(b->b, cap);
		if (!nb)
			return -ENOMEM;
		b->b = nb;
		b->cap = cap;
	}
	if (n)
		memcpy(b->b + b->n, p, n);
	b->n += n;
	return 0;
}

int sq_buf_varint(struct sq_buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return sq_buf_put(b, tmp, n);
}

int sq_buf_str(struct sq_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return sq_buf_varint(b, n) ?: sq_buf_put(b, s, n);
}

const unsigned char *sq_varint_get(const unsigned char *p, const unsigned char *end,
				   uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; p < end && shift < 64; shift += 7) {
		unsigned char c = *p++;

		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

int sq_pairs_decode(const void *blob, size_t len, struct ap_label_kv *out, size_t max,
		    char **strings)
{
	const unsigned char *p = blob, *end = p + len;
	char *s, *w;
	size_t n = 0;

	*strings = NULL;
	/* the strings copy is never longer than the blob plus one NUL per string */
	s = malloc(len + 2 * max + 1);
	if (!s)
		return -ENOMEM;
	w = s;
	while (p < end) {
		const char *kv[2];

		if (n >= max)
			goto bad;
		for (int i = 0; i < 2; i++) {
			uint64_t l;

			p = sq_varint_get(p, end, &l);
			if (!p || l > (uint64_t)(end - p))
				goto bad;
			memcpy(w, p, l);
			w[l] = 0;
			kv[i] = w;
			w += l + 1;
			p += l;
		}
		out[n].name = kv[0];
		out[n].value = kv[1];
		n++;
	}
	*strings = s;
	return (int)n;
bad:
	free(s);
	return -EINVAL;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct sq_entry *x = a, *y = b;

	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

int sq_samples_encode(struct sq_buf *b, struct sq_entry *e, size_t n, uint32_t nvalues)
{
	uint32_t prev = 0;
	int ret;

	if (n > 1)
		qsort(e, n, sizeof(*e), cmp_entry);
	b->n = 0;
	ret = sq_buf_varint(b, n);
	for (size_t i = 0; i < n && !ret; i++) {
		ret = sq_buf_varint(b, e[i].stack - prev);
		prev = e[i].stack;
		for (uint32_t v = 0; v < nvalues && !ret; v++)
			ret = sq_buf_varint(b, e[i].v[v]);
	}
	return ret;
}

/* ---- map ---- */

static size_t slot_of(uint64_t key, size_t cap)
{
	return ap_hash_mix64(key) & (cap - 1);
}

static int map_grow(struct sq_map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	uint64_t *keys = calloc(ncap, sizeof(*keys));
	uint32_t *vals = malloc(ncap * sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->keys[i])
			continue;
		for (j = slot_of(m->keys[i], ncap); keys[j]; j = (j + 1) & (ncap - 1))
			;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = ncap;
	return 0;
}

uint32_t *sq_map_get(const struct sq_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t j = slot_of(key, m->cap);; j = (j + 1) & (m->cap - 1)) {
		if (m->keys[j] == key)
			return &m->vals[j];
		if (!m->keys[j])
			return NULL;
	}
}

uint32_t *sq_map_put(struct sq_map *m, uint64_t key, uint32_t fresh, bool *inserted)
{
	size_t j;

	*inserted = false;
	if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m))
		return NULL;
	for (j = slot_of(key, m->cap); m->keys[j]; j = (j + 1) & (m->cap - 1))
		if (m->keys[j] == key)
			return &m->vals[j];
	m->keys[j] = key;
	m->vals[j] = fresh;
	m->n++;
	*inserted = true;
	return &m->vals[j];
}

void sq_map_clear(struct sq_map *m)
{
	if (m->cap)
		memset(m->keys, 0, m->cap * sizeof(*m->keys));
	m->n = 0;
}

void sq_map_free(struct sq_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}
