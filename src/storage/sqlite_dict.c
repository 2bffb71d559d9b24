// SPDX-License-Identifier: MIT
/*
 * The in-memory dictionaries of the SQLite backend: every frame, stack and series of the file,
 * indexed by content hash (lookups compare the content, so a hash collision costs a second
 * entry, never a wrong one) and by id. This process is the file's only writer, so memory is
 * authoritative: the writer resolves a push's stacks without a query and readers turn stack ids
 * into frames without one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "sqlite_internal.h"

int sq_dict_init(struct sq_dict *d)
{
	pthread_rwlockattr_t a;
	int ret;

	memset(d, 0, sizeof(*d));
	d->nframes = d->nstacks = d->nseries = 1;
	/* glibc prefers readers by default: a stream of queries from the HTTP pool could keep
	 * the writer (and so every push) waiting for ever. Readers never nest the lock. */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	ret = pthread_rwlock_init(&d->lock, &a);
	pthread_rwlockattr_destroy(&a);
	return -ret;
}

static void frame_free(struct sq_frame *f)
{
	if (f) {
		free(f->name);
		free(f);
	}
}

static void stack_free(struct sq_stack *s)
{
	free(s);
}

static void series_free(struct sq_series *s)
{
	if (!s)
		return;
	free(s->labels);
	free(s->labels_blob);
	free(s->strs[0]);
	free(s->strs[1]);
	free(s);
}

void sq_dict_free(struct sq_dict *d)
{
	for (size_t i = 1; i < d->nframes && d->frames; i++)
		frame_free(d->frames[i]);
	for (size_t i = 1; i < d->nstacks && d->stacks; i++)
		stack_free(d->stacks[i]);
	for (size_t i = 1; i < d->nseries && d->series; i++)
		series_free(d->series[i]);
	free(d->frames);
	free(d->stacks);
	free(d->series);
	ap_htab_release(&d->fidx);
	ap_htab_release(&d->sidx);
	ap_htab_release(&d->seridx);
	pthread_rwlock_destroy(&d->lock);
}

static int streq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

struct sq_frame *sq_dict_find_frame(struct sq_dict *d, uint64_t h, const char *name,
				    const char *module, const char *file, uint32_t line,
				    uint32_t kind, uint32_t flags)
{
	for (struct ap_hnode *n = ap_htab_first(&d->fidx, h); n; n = ap_htab_next(n)) {
		struct sq_frame *f = AP_CONTAINER_OF(n, struct sq_frame, node);

		if (f->line == line && f->kind == kind && f->flags == flags &&
		    streq(f->name, name) && streq(f->module, module) && streq(f->file, file))
			return f;
	}
	return NULL;
}

struct sq_stack *sq_dict_find_stack(struct sq_dict *d, uint64_t h, const uint32_t *frames,
				    size_t n)
{
	for (struct ap_hnode *x = ap_htab_first(&d->sidx, h); x; x = ap_htab_next(x)) {
		struct sq_stack *s = AP_CONTAINER_OF(x, struct sq_stack, node);

		if (s->n == n && !memcmp(s->frames, frames, n * sizeof(*frames)))
			return s;
	}
	return NULL;
}

struct sq_series *sq_dict_find_series(struct sq_dict *d, uint64_t h, const void *labels,
				      size_t llen, const void *vtypes, size_t vlen,
				      uint64_t period)
{
	for (struct ap_hnode *x = ap_htab_first(&d->seridx, h); x; x = ap_htab_next(x)) {
		struct sq_series *s = AP_CONTAINER_OF(x, struct sq_series, node);

		if (s->labels_len == llen && s->vtypes_len == vlen && s->period == period &&
		    !memcmp(s->labels_blob, labels, llen) &&
		    !memcmp(s->vtypes_blob, vtypes, vlen))
			return s;
	}
	return NULL;
}

/* Put entry e at id in *arr (growing it); id 0 = the next one. Returns the id or 0. */
static uint32_t place(void ***arr, size_t *cap, size_t *next, uint32_t id, void *e)
{
	if (!id)
		id = (uint32_t)*next;
	if (id >= UINT32_MAX - 1 || ap_grow_array((void **)arr, cap, (size_t)id + 1, sizeof(void *)))
		return 0;
	for (size_t i = *next; i < id; i++)
		(*arr)[i] = NULL;
	(*arr)[id] = e;
	if (id >= *next)
		*next = (size_t)id + 1;
	return id;
}

struct sq_frame *sq_dict_add_frame(struct sq_dict *d, uint32_t id, uint64_t h, const char *name,
				   const char *module, const char *file, uint32_t line,
				   uint32_t kind, uint32_t flags, int64_t last_h)
{
	size_t ln = strlen(name ? name : ""), lm = strlen(module ? module : ""),
	       lf = strlen(file ? file : "");
	struct sq_frame *f = calloc(1, sizeof(*f));
	char *s = malloc(ln + lm + lf + 3);

	if (!f || !s)
		goto fail;
	f->name = s;
	memcpy(s, name ? name : "", ln + 1);
	f->module = s + ln + 1;
	memcpy(f->module, module ? module : "", lm + 1);
	f->file = f->module + lm + 1;
	memcpy(f->file, file ? file : "", lf + 1);
	f->line = line;
	f->kind = kind;
	f->flags = flags;
	f->last_h = last_h;
	f->id = place((void ***)&d->frames, &d->capframes, &d->nframes, id, f);
	if (!f->id)
		goto fail;
	if (ap_htab_insert(&d->fidx, &f->node, h)) {
		d->frames[f->id] = NULL;
		goto fail;
	}
	d->live_frames++;
	return f;
fail:
	free(s);
	free(f);
	return NULL;
}

struct sq_stack *sq_dict_add_stack(struct sq_dict *d, uint32_t id, uint64_t h,
				   const uint32_t *frames, size_t n, int64_t last_h)
{
	struct sq_stack *s = malloc(sizeof(*s) + n * sizeof(uint32_t));

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->frames = (uint32_t *)(s + 1);
	memcpy(s->frames, frames, n * sizeof(*frames));
	s->n = (uint32_t)n;
	s->last_h = last_h;
	s->id = place((void ***)&d->stacks, &d->capstacks, &d->nstacks, id, s);
	if (!s->id || ap_htab_insert(&d->sidx, &s->node, h)) {
		if (s->id)
			d->stacks[s->id] = NULL;
		free(s);
		return NULL;
	}
	d->live_stacks++;
	return s;
}

struct sq_series *sq_dict_add_series(struct sq_dict *d, uint32_t id, const void *labels,
				     size_t llen, const void *vtypes, size_t vlen, uint64_t period,
				     int64_t first_h, int64_t last_h)
{
	struct ap_label_kv kv[AP_STORE_MAX_LABELS], vt[AP_MAX_VALUES + 1];
	struct sq_series *s = calloc(1, sizeof(*s));
	char *lstr = NULL, *vstr = NULL;
	int nl, nv;
	size_t sz = llen + vlen;
	char *blob;

	if (!s)
		return NULL;
	nl = sq_pairs_decode(labels, llen, kv, AP_STORE_MAX_LABELS, &lstr);
	nv = sq_pairs_decode(vtypes, vlen, vt, AP_MAX_VALUES + 1, &vstr);
	if (nl < 0 || nv < 1)
		goto fail;
	/* the two blobs share one allocation */
	s->labels = malloc(nl * sizeof(*s->labels) + 1);
	blob = malloc(sz + 1);
	if (!s->labels || !blob) {
		free(blob);
		goto fail;
	}
	s->labels_blob = blob;
	memcpy(blob, labels, llen);
	s->vtypes_blob = blob + llen;
	memcpy(s->vtypes_blob, vtypes, vlen);
	s->labels_len = llen;
	s->vtypes_len = vlen;
	s->mode = s->comm = "";
	for (int i = 0; i < nl; i++) {
		s->labels[i] = kv[i];
		if (!strcmp(kv[i].name, "mode"))
			s->mode = kv[i].value;
		else if (!strcmp(kv[i].name, "comm"))
			s->comm = kv[i].value;
	}
	s->nlabels = (size_t)nl;
	/* value types: the first pair is the period type */
	s->period_type = (char *)vt[0].name;
	s->period_unit = (char *)vt[0].value;
	s->nvalues = (uint32_t)nv - 1;
	for (int i = 1; i < nv; i++) {
		s->vt_type[i - 1] = (char *)vt[i].name;
		s->vt_unit[i - 1] = (char *)vt[i].value;
	}
	s->period = period;
	s->first_h = first_h;
	s->last_h = last_h;
	s->id = place((void ***)&d->series, &d->capseries, &d->nseries, id, s);
	if (!s->id)
		goto fail_all;
	if (ap_htab_insert(&d->seridx, &s->node, sq_series_hash(labels, llen, vtypes, vlen))) {
		d->series[s->id] = NULL;
		goto fail_all;
	}
	s->strs[0] = lstr;
	s->strs[1] = vstr;
	d->live_series++;
	return s;
fail_all:
	free(s->labels);
	free(s->labels_blob);
fail:
	free(lstr);
	free(vstr);
	free(s);
	return NULL;
}

void sq_dict_remove_frame(struct sq_dict *d, uint32_t id)
{
	struct sq_frame *f = id < d->nframes ? d->frames[id] : NULL;

	if (f) {
		ap_htab_remove(&d->fidx, &f->node);
		d->frames[id] = NULL;
		frame_free(f);
		d->live_frames--;
	}
}

void sq_dict_remove_stack(struct sq_dict *d, uint32_t id)
{
	struct sq_stack *s = id < d->nstacks ? d->stacks[id] : NULL;

	if (s) {
		ap_htab_remove(&d->sidx, &s->node);
		d->stacks[id] = NULL;
		stack_free(s);
		d->live_stacks--;
	}
}

void sq_dict_remove_series(struct sq_dict *d, uint32_t id)
{
	struct sq_series *s = id < d->nseries ? d->series[id] : NULL;

	if (s) {
		ap_htab_remove(&d->seridx, &s->node);
		d->series[id] = NULL;
		series_free(s);
		d->live_series--;
	}
}

static int load_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
	return ap_errf(err, errlen, -EIO, "sqlite: loading %s: %s", what, sqlite3_errmsg(db));
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? s : "";
}

/* Read every dictionary row into memory (at open, before the writer starts). */
int sq_dict_load(struct sq_dict *d, sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	uint32_t *ids = NULL;
	uint64_t *hashes = NULL;
	size_t cap = 0, hcap = 0;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(db,
				"SELECT id, last_h, name, module, file, line, kind, flags FROM frames",
				-1, &st, NULL);
	if (rc)
		return load_fail(db, "frames", err, errlen);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = col_text(st, 2), *module = col_text(st, 3),
			   *file = col_text(st, 4);
		uint32_t line = (uint32_t)sqlite3_column_int64(st, 5),
			 kind = (uint32_t)sqlite3_column_int64(st, 6),
			 flags = (uint32_t)sqlite3_column_int64(st, 7);

		if (!sq_dict_add_frame(d, (uint32_t)sqlite3_column_int64(st, 0),
				       sq_frame_hash(name, module, file, line, kind, flags), name,
				       module, file, line, kind, flags,
				       sqlite3_column_int64(st, 1))) {
			ret = ap_errf(err, errlen, -ENOMEM, "sqlite: loading frames: out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		ret = load_fail(db, "frames", err, errlen);
		goto out;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db, "SELECT id, last_h, frames FROM stacks", -1, &st, NULL);
	if (rc) {
		st = NULL;
		ret = load_fail(db, "stacks", err, errlen);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *p = sqlite3_column_blob(st, 2);
		const unsigned char *end = p + sqlite3_column_bytes(st, 2);
		size_t n = 0;

		while (p && p < end) {
			uint64_t v;

			p = sq_varint_get(p, end, &v);
			if (!p || !v || v >= d->nframes || !d->frames[v]) {
				ret = ap_errf(err, errlen, -EINVAL,
					      "sqlite: stack %lld names a missing frame: the file "
					      "is damaged",
					      (long long)sqlite3_column_int64(st, 0));
				goto out;
			}
			if (ap_grow_array((void **)&ids, &cap, n + 1, sizeof(*ids)) ||
			    ap_grow_array((void **)&hashes, &hcap, n + 1, sizeof(*hashes))) {
				ret = -ENOMEM;
				goto out;
			}
			hashes[n] = d->frames[v]->node.hash;
			ids[n++] = (uint32_t)v;
		}
		if (!sq_dict_add_stack(d, (uint32_t)sqlite3_column_int64(st, 0),
				       sq_stack_hash(hashes, n), ids, n,
				       sqlite3_column_int64(st, 1))) {
			ret = ap_errf(err, errlen, -ENOMEM, "sqlite: loading stacks: out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		ret = load_fail(db, "stacks", err, errlen);
		goto out;
	}
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
				"SELECT id, first_h, last_h, labels, vtypes, period FROM series",
				-1, &st, NULL);
	if (rc) {
		st = NULL;
		ret = load_fail(db, "series", err, errlen);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *l = sqlite3_column_blob(st, 3), *v = sqlite3_column_blob(st, 4);
		size_t ll = (size_t)sqlite3_column_bytes(st, 3), vl = (size_t)sqlite3_column_bytes(st, 4);

		if (!sq_dict_add_series(d, (uint32_t)sqlite3_column_int64(st, 0), l ? l : "", ll,
					v ? v : "", vl, (uint64_t)sqlite3_column_int64(st, 5),
					sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2))) {
			ret = ap_errf(err, errlen, -EINVAL,
				      "sqlite: series %lld cannot be read (damaged or out of memory)",
				      (long long)sqlite3_column_int64(st, 0));
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		ret = load_fail(db, "series", err, errlen);
out:
	sqlite3_finalize(st);
	free(ids);
	free(hashes);
	return ret;
}
