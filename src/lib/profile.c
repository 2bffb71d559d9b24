// SPDX-License-Identifier: MIT
#include "grow.h"
#include "hash.h"
#include "hashtab.h"
#include "profile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Interning indexes: ids over the entry arrays (hashtab.h's ap_hidx). Equality is decided by
 * a callback so one lookup serves strings, frames, mappings, stacks, label sets and sample
 * keys.
 */
typedef bool (*idx_eq_fn)(const struct ap_profile *p, uint32_t id, const void *key);

/* The id of key, or UINT32_MAX. */
static uint32_t idx_find(const struct ap_profile *p, const struct ap_hidx *x, uint64_t h,
			 const void *key, idx_eq_fn eq)
{
	for (size_t id = ap_hidx_first(x, h); id != AP_HIDX_NONE; id = ap_hidx_next(x, id))
		if (eq(p, (uint32_t)id, key))
			return (uint32_t)id;
	return UINT32_MAX;
}

struct stack_ref {
	size_t off;
	size_t len;
};

struct labelset_ref {
	size_t off;
	size_t len;
};

struct meta {
	char *key;
	char *value;
};

struct ap_profile {
	/* strings */
	char **strs;
	size_t nstrs, cap_strs;
	struct ap_hidx str_idx;

	struct ap_value_type vtypes[AP_MAX_VALUES];
	size_t nvtypes;
	size_t default_value; /* index + 1; 0 = not set (last value type) */
	struct ap_value_type period_type;
	uint64_t period;
	uint64_t start_ns, duration_ns;

	struct ap_mapping *maps;
	size_t nmaps, cap_maps;
	struct ap_hidx map_idx;

	struct ap_frame *frames;
	size_t nframes, cap_frames;
	struct ap_hidx frame_idx;

	uint32_t *stack_pool;
	size_t pool_len, pool_cap;
	struct stack_ref *stacks;
	size_t nstacks, cap_stacks;
	struct ap_hidx stack_idx;

	struct ap_label *label_pool;
	size_t lpool_len, lpool_cap;
	struct labelset_ref *lsets;
	size_t nlsets, cap_lsets;
	struct ap_hidx lset_idx;

	struct ap_sample *samples;
	size_t nsamples, cap_samples;
	struct ap_hidx sample_idx;

	struct ap_stat *stats;
	size_t nstats, cap_stats;

	struct meta *meta;
	size_t nmeta, cap_meta;

	struct ap_pending_name *pending; /* frames whose name may still become known */
	size_t npending, cap_pending;
};

struct str_key {
	const char *s;
	size_t len;
};

static bool str_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	const struct str_key *k = key;
	const char *s = p->strs[id];

	return strncmp(s, k->s, k->len) == 0 && s[k->len] == '\0';
}

uint32_t ap_profile_intern_n(struct ap_profile *p, const char *s, size_t len)
{
	struct str_key k = { s ? s : "", s ? len : 0 };
	uint64_t h = ap_hash_bytes(k.s, k.len, 0);
	uint32_t id = idx_find(p, &p->str_idx, h, &k, str_eq);
	char *copy;

	if (id != UINT32_MAX)
		return id;
	if (ap_grow_array((void **)&p->strs, &p->cap_strs, p->nstrs + 1, sizeof(*p->strs)))
		return UINT32_MAX;
	copy = malloc(k.len + 1);
	if (!copy)
		return UINT32_MAX;
	memcpy(copy, k.s, k.len);
	copy[k.len] = '\0';
	id = (uint32_t)p->nstrs;
	if (ap_hidx_add(&p->str_idx, id, h)) {
		free(copy);
		return UINT32_MAX;
	}
	p->strs[p->nstrs++] = copy;
	return id;
}

uint32_t ap_profile_intern(struct ap_profile *p, const char *s)
{
	return ap_profile_intern_n(p, s, s ? strlen(s) : 0);
}

const char *ap_profile_str(const struct ap_profile *p, uint32_t id)
{
	return id < p->nstrs ? p->strs[id] : "";
}

size_t ap_profile_nstrings(const struct ap_profile *p)
{
	return p->nstrs;
}

struct ap_profile *ap_profile_new(void)
{
	struct ap_profile *p = calloc(1, sizeof(*p));
	struct ap_mapping none = { 0 };

	if (!p)
		return NULL;
	/* string 0 is "", mapping 0 and label set 0 are "none" */
	if (ap_profile_intern(p, "") != 0 ||
	    ap_grow_array((void **)&p->maps, &p->cap_maps, 1, sizeof(*p->maps)) ||
	    ap_grow_array((void **)&p->lsets, &p->cap_lsets, 1, sizeof(*p->lsets))) {
		ap_profile_free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->maps[p->nmaps++] = none;
	p->lsets[p->nlsets++] = (struct labelset_ref){ 0, 0 };
	return p;
}

void ap_profile_free(struct ap_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nstrs; i++)
		free(p->strs[i]);
	for (size_t i = 0; i < p->nstats; i++)
		free((char *)p->stats[i].name);
	for (size_t i = 0; i < p->nmeta; i++) {
		free(p->meta[i].key);
		free(p->meta[i].value);
	}
	free(p->strs);
	free(p->maps);
	free(p->frames);
	free(p->stack_pool);
	free(p->stacks);
	free(p->label_pool);
	free(p->lsets);
	free(p->samples);
	free(p->stats);
	free(p->meta);
	free(p->pending);
	ap_hidx_release(&p->str_idx);
	ap_hidx_release(&p->map_idx);
	ap_hidx_release(&p->frame_idx);
	ap_hidx_release(&p->stack_idx);
	ap_hidx_release(&p->lset_idx);
	ap_hidx_release(&p->sample_idx);
	free(p);
}

int ap_profile_add_value_type(struct ap_profile *p, const char *type, const char *unit)
{
	uint32_t t, u;

	if (p->nvtypes >= AP_MAX_VALUES)
		return -E2BIG;
	t = ap_profile_intern(p, type);
	u = ap_profile_intern(p, unit);
	if (t == UINT32_MAX || u == UINT32_MAX)
		return -ENOMEM;
	p->vtypes[p->nvtypes].type = t;
	p->vtypes[p->nvtypes].unit = u;
	p->nvtypes++;
	return 0;
}

void ap_profile_set_default_value(struct ap_profile *p, size_t i)
{
	p->default_value = i + 1;
}

size_t ap_profile_default_value(const struct ap_profile *p)
{
	if (p->default_value && p->default_value <= p->nvtypes)
		return p->default_value - 1;
	return p->nvtypes ? p->nvtypes - 1 : 0;
}

size_t ap_profile_nvalues(const struct ap_profile *p)
{
	return p->nvtypes;
}

const struct ap_value_type *ap_profile_value_type(const struct ap_profile *p, size_t i)
{
	return i < p->nvtypes ? &p->vtypes[i] : NULL;
}

int ap_profile_value_index(const struct ap_profile *p, const char *type)
{
	for (size_t i = 0; i < p->nvtypes; i++)
		if (strcmp(p->strs[p->vtypes[i].type], type) == 0)
			return (int)i;
	return -1;
}

void ap_profile_set_period(struct ap_profile *p, const char *type, const char *unit,
			   uint64_t period)
{
	uint32_t t = ap_profile_intern(p, type), u = ap_profile_intern(p, unit);

	p->period_type.type = t == UINT32_MAX ? 0 : t;
	p->period_type.unit = u == UINT32_MAX ? 0 : u;
	p->period = period;
}

const struct ap_value_type *ap_profile_period_type(const struct ap_profile *p)
{
	return &p->period_type;
}

uint64_t ap_profile_period(const struct ap_profile *p)
{
	return p->period;
}

void ap_profile_set_time(struct ap_profile *p, uint64_t start_ns, uint64_t duration_ns)
{
	p->start_ns = start_ns;
	p->duration_ns = duration_ns;
}

uint64_t ap_profile_start_ns(const struct ap_profile *p)
{
	return p->start_ns;
}

uint64_t ap_profile_duration_ns(const struct ap_profile *p)
{
	return p->duration_ns;
}

static bool map_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	return memcmp(&p->maps[id], key, sizeof(struct ap_mapping)) == 0;
}

uint32_t ap_profile_add_mapping(struct ap_profile *p, const struct ap_mapping *m)
{
	uint64_t h = ap_hash_bytes(m, sizeof(*m), 0);
	uint32_t id = idx_find(p, &p->map_idx, h, m, map_eq);

	if (id != UINT32_MAX)
		return id;
	if (ap_grow_array((void **)&p->maps, &p->cap_maps, p->nmaps + 1, sizeof(*p->maps)))
		return UINT32_MAX;
	id = (uint32_t)p->nmaps;
	if (ap_hidx_add(&p->map_idx, id, h))
		return UINT32_MAX;
	p->maps[p->nmaps++] = *m;
	return id;
}

size_t ap_profile_nmappings(const struct ap_profile *p)
{
	return p->nmaps;
}

const struct ap_mapping *ap_profile_mapping(const struct ap_profile *p, uint32_t id)
{
	return id < p->nmaps ? &p->maps[id] : NULL;
}

/* Frames are hashed and compared as bytes: hidden padding would make equal frames differ. */
_Static_assert(sizeof(struct ap_frame) == 2 * sizeof(uint64_t) + 8 * sizeof(uint32_t),
	       "struct ap_frame has unnamed padding");

static bool frame_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	return memcmp(&p->frames[id], key, sizeof(struct ap_frame)) == 0;
}

uint32_t ap_profile_add_frame(struct ap_profile *p, const struct ap_frame *f)
{
	uint64_t h = ap_hash_bytes(f, sizeof(*f), 0);
	uint32_t id = idx_find(p, &p->frame_idx, h, f, frame_eq);

	if (id != UINT32_MAX)
		return id;
	if (ap_grow_array((void **)&p->frames, &p->cap_frames, p->nframes + 1, sizeof(*p->frames)))
		return UINT32_MAX;
	id = (uint32_t)p->nframes;
	if (ap_hidx_add(&p->frame_idx, id, h))
		return UINT32_MAX;
	p->frames[p->nframes++] = *f;
	return id;
}

uint32_t ap_profile_add_frame_text(struct ap_profile *p, const char *name, const char *module,
				   const char *file, uint32_t line, enum ap_frame_kind kind,
				   uint8_t flags)
{
	struct ap_frame f = { 0 };

	f.name = ap_profile_intern(p, name);
	f.module = ap_profile_intern(p, module);
	f.file = file ? ap_profile_intern(p, file) : 0;
	f.line = line;
	f.kind = kind;
	f.flags = flags;
	if (f.name == UINT32_MAX || f.module == UINT32_MAX || f.file == UINT32_MAX)
		return UINT32_MAX;
	return ap_profile_add_frame(p, &f);
}

uint32_t ap_profile_add_named_frame(struct ap_profile *p, const char *name, const char *module,
				    enum ap_frame_kind kind)
{
	return ap_profile_add_frame_text(p, name, module, NULL, 0, kind, 0);
}

int ap_profile_rename_frame(struct ap_profile *p, uint32_t id, const char *name,
			   const char *module)
{
	uint32_t n, m;

	if (id >= p->nframes)
		return -EINVAL;
	n = ap_profile_intern(p, name);
	m = ap_profile_intern(p, module);
	if (n == UINT32_MAX || m == UINT32_MAX)
		return -ENOMEM;
	/* the index keeps the old content's hash: a later lookup of the old content finds no
	 * match there and makes a new frame, which is what it should get */
	p->frames[id].name = n;
	p->frames[id].module = m;
	return 0;
}

int ap_profile_pend_name(struct ap_profile *p, uint32_t frame, int pid, uint64_t addr)
{
	if (p->npending >= AP_MAX_PENDING_NAMES)
		return -ENOSPC;
	if (ap_grow_array((void **)&p->pending, &p->cap_pending, p->npending + 1, sizeof(*p->pending)))
		return -ENOMEM;
	p->pending[p->npending++] = (struct ap_pending_name){ .frame = frame, .pid = pid,
							      .addr = addr };
	return 0;
}

void ap_profile_sweep_pending(struct ap_profile *p,
			      bool (*keep)(void *ctx, struct ap_profile *p,
					   const struct ap_pending_name *e),
			      void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < p->npending; i++)
		if (keep(ctx, p, &p->pending[i]))
			p->pending[n++] = p->pending[i];
	p->npending = n;
}

size_t ap_profile_npending(const struct ap_profile *p)
{
	return p->npending;
}

size_t ap_profile_nframes(const struct ap_profile *p)
{
	return p->nframes;
}

const struct ap_frame *ap_profile_frame(const struct ap_profile *p, uint32_t id)
{
	return id < p->nframes ? &p->frames[id] : NULL;
}

struct stack_key {
	const uint32_t *frames;
	size_t n;
};

static bool stack_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	const struct stack_key *k = key;
	const struct stack_ref *r = &p->stacks[id];

	return r->len == k->n &&
	       (k->n == 0 || memcmp(&p->stack_pool[r->off], k->frames, k->n * sizeof(uint32_t)) == 0);
}

uint32_t ap_profile_add_stack(struct ap_profile *p, const uint32_t *frames, size_t n)
{
	struct stack_key k = { frames, n };
	uint64_t h = ap_hash_bytes(frames, n * sizeof(*frames), n);
	uint32_t id = idx_find(p, &p->stack_idx, h, &k, stack_eq);

	if (id != UINT32_MAX)
		return id;
	if (ap_grow_array((void **)&p->stacks, &p->cap_stacks, p->nstacks + 1, sizeof(*p->stacks)) ||
	    ap_grow_array((void **)&p->stack_pool, &p->pool_cap, p->pool_len + n, sizeof(*p->stack_pool)))
		return UINT32_MAX;
	id = (uint32_t)p->nstacks;
	if (ap_hidx_add(&p->stack_idx, id, h))
		return UINT32_MAX;
	if (n)
		memcpy(&p->stack_pool[p->pool_len], frames, n * sizeof(*frames));
	p->stacks[p->nstacks++] = (struct stack_ref){ p->pool_len, n };
	p->pool_len += n;
	return id;
}

size_t ap_profile_nstacks(const struct ap_profile *p)
{
	return p->nstacks;
}

const uint32_t *ap_profile_stack(const struct ap_profile *p, uint32_t id, size_t *n)
{
	if (id >= p->nstacks) {
		*n = 0;
		return NULL;
	}
	*n = p->stacks[id].len;
	/* only empty stacks so far: the pool was never allocated (NULL + 0 is undefined) */
	if (!p->stack_pool)
		return (const uint32_t *)p->stacks; /* any non-NULL pointer; *n == 0 */
	return &p->stack_pool[p->stacks[id].off];
}

struct lset_key {
	const struct ap_label *labels;
	size_t n;
};

static bool lset_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	const struct lset_key *k = key;
	const struct labelset_ref *r = &p->lsets[id];

	return r->len == k->n &&
	       memcmp(&p->label_pool[r->off], k->labels, k->n * sizeof(struct ap_label)) == 0;
}

static int label_cmp(const void *a, const void *b)
{
	const struct ap_label *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

uint32_t ap_profile_add_labels(struct ap_profile *p, const struct ap_label *labels, size_t n)
{
	struct ap_label sorted[AP_MAX_LABELS];
	struct lset_key k = { sorted, n };
	uint64_t h;
	uint32_t id;

	if (n == 0)
		return 0;
	if (n > AP_MAX_LABELS)
		return UINT32_MAX;
	memcpy(sorted, labels, n * sizeof(*labels));
	for (size_t i = 0; i < n; i++)
		sorted[i].pad = 0;
	qsort(sorted, n, sizeof(*sorted), label_cmp);
	h = ap_hash_bytes(sorted, n * sizeof(*sorted), 0);
	id = idx_find(p, &p->lset_idx, h, &k, lset_eq);
	if (id != UINT32_MAX)
		return id;
	if (ap_grow_array((void **)&p->lsets, &p->cap_lsets, p->nlsets + 1, sizeof(*p->lsets)) ||
	    ap_grow_array((void **)&p->label_pool, &p->lpool_cap, p->lpool_len + n, sizeof(*p->label_pool)))
		return UINT32_MAX;
	id = (uint32_t)p->nlsets;
	if (ap_hidx_add(&p->lset_idx, id, h))
		return UINT32_MAX;
	memcpy(&p->label_pool[p->lpool_len], sorted, n * sizeof(*sorted));
	p->lsets[p->nlsets++] = (struct labelset_ref){ p->lpool_len, n };
	p->lpool_len += n;
	return id;
}

const struct ap_label *ap_profile_labels(const struct ap_profile *p, uint32_t id, size_t *n)
{
	if (id == 0 || id >= p->nlsets) {
		*n = 0;
		return NULL;
	}
	*n = p->lsets[id].len;
	return &p->label_pool[p->lsets[id].off];
}

/* The sample key is everything but the values. */
#define SAMPLE_KEY_OFF offsetof(struct ap_sample, stack)
#define SAMPLE_KEY_LEN (sizeof(struct ap_sample) - SAMPLE_KEY_OFF)

static bool sample_eq(const struct ap_profile *p, uint32_t id, const void *key)
{
	return memcmp((const char *)&p->samples[id] + SAMPLE_KEY_OFF,
		      (const char *)key + SAMPLE_KEY_OFF, SAMPLE_KEY_LEN) == 0;
}

int ap_profile_add_sample(struct ap_profile *p, const struct ap_sample *s)
{
	struct ap_sample k = *s;
	uint64_t h;
	uint32_t id;

	k.pad = 0;
	h = ap_hash_bytes((const char *)&k + SAMPLE_KEY_OFF, SAMPLE_KEY_LEN, 0);
	id = idx_find(p, &p->sample_idx, h, &k, sample_eq);
	if (id != UINT32_MAX) {
		uint64_t sat = 0;

		/* a wrapped sum would turn the hottest stack into the coldest: saturate, count */
		for (size_t i = 0; i < AP_MAX_VALUES; i++) {
			uint64_t *v = &p->samples[id].values[i];

			if (__builtin_add_overflow(*v, k.values[i], v)) {
				*v = UINT64_MAX;
				sat++;
			}
		}
		if (sat)
			return ap_profile_set_stat(p, AP_STAT_VALUES_SATURATED,
						   ap_profile_get_stat(p, AP_STAT_VALUES_SATURATED) +
						       sat);
		return 0;
	}
	if (ap_grow_array((void **)&p->samples, &p->cap_samples, p->nsamples + 1, sizeof(*p->samples)))
		return -ENOMEM;
	id = (uint32_t)p->nsamples;
	if (ap_hidx_add(&p->sample_idx, id, h))
		return -ENOMEM;
	p->samples[p->nsamples++] = k;
	return 0;
}

size_t ap_profile_nsamples(const struct ap_profile *p)
{
	return p->nsamples;
}

const struct ap_sample *ap_profile_sample(const struct ap_profile *p, size_t i)
{
	return i < p->nsamples ? &p->samples[i] : NULL;
}

uint64_t ap_profile_total(const struct ap_profile *p, size_t vi)
{
	uint64_t total = 0;

	if (vi >= AP_MAX_VALUES)
		return 0;
	for (size_t i = 0; i < p->nsamples; i++)
		if (__builtin_add_overflow(total, p->samples[i].values[vi], &total))
			return UINT64_MAX; /* saturated, as the samples themselves are */
	return total;
}

int ap_profile_set_stat(struct ap_profile *p, const char *name, uint64_t value)
{
	char *copy;

	for (size_t i = 0; i < p->nstats; i++) {
		if (strcmp(p->stats[i].name, name) == 0) {
			p->stats[i].value = value;
			return 0;
		}
	}
	if (ap_grow_array((void **)&p->stats, &p->cap_stats, p->nstats + 1, sizeof(*p->stats)))
		return -ENOMEM;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	p->stats[p->nstats].name = copy;
	p->stats[p->nstats].value = value;
	p->nstats++;
	return 0;
}

size_t ap_profile_nstats(const struct ap_profile *p)
{
	return p->nstats;
}

const struct ap_stat *ap_profile_stat(const struct ap_profile *p, size_t i)
{
	return i < p->nstats ? &p->stats[i] : NULL;
}

uint64_t ap_profile_get_stat(const struct ap_profile *p, const char *name)
{
	for (size_t i = 0; i < p->nstats; i++)
		if (strcmp(p->stats[i].name, name) == 0)
			return p->stats[i].value;
	return 0;
}

int ap_profile_set_meta(struct ap_profile *p, const char *key, const char *value)
{
	char *v = strdup(value ? value : ""), *k;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < p->nmeta; i++) {
		if (strcmp(p->meta[i].key, key) == 0) {
			free(p->meta[i].value);
			p->meta[i].value = v;
			return 0;
		}
	}
	k = strdup(key);
	if (!k || ap_grow_array((void **)&p->meta, &p->cap_meta, p->nmeta + 1, sizeof(*p->meta))) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	p->meta[p->nmeta].key = k;
	p->meta[p->nmeta].value = v;
	p->nmeta++;
	return 0;
}

const char *ap_profile_get_meta(const struct ap_profile *p, const char *key)
{
	for (size_t i = 0; i < p->nmeta; i++)
		if (strcmp(p->meta[i].key, key) == 0)
			return p->meta[i].value;
	return NULL;
}

size_t ap_profile_nmeta(const struct ap_profile *p)
{
	return p->nmeta;
}

void ap_profile_meta(const struct ap_profile *p, size_t i, const char **key, const char **value)
{
	*key = i < p->nmeta ? p->meta[i].key : NULL;
	*value = i < p->nmeta ? p->meta[i].value : NULL;
}
