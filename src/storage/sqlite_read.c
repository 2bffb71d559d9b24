// SPDX-License-Identifier: MIT
/*
 * Queries of the SQLite backend. Series are selected in memory (every series of the file is in
 * the dictionary, with the hours it has data for); their samples are read over the plan of
 * sq_plan(): whole hours from the hourly rows, whole minutes at the edges from the minute rows,
 * and what is left at the edges (and the last minutes, not rolled up yet) from the pushes
 * themselves, so the answer is exact for any range and its cost grows with series x hours, not
 * with the number of pushes. Stack and frame ids
 * are turned into frames from memory; each query runs in one read transaction (a snapshot) on a
 * connection of its own from the pool, in parallel with the writer and other queries.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "sqlite_internal.h"
#include "sqlite_query.h"

void sq_lineup_free(struct lineup *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->type[i]);
		free(l->unit[i]);
	}
	free(l->period_type);
	free(l->period_unit);
	free(l->mode);
}

bool sq_overlaps(const struct sq_series *e, uint64_t from, uint64_t until)
{
	return (uint64_t)e->first_h * SQ_HOUR_NS < until &&
	       ((uint64_t)e->last_h + 1) * SQ_HOUR_NS > from;
}

int sq_check_range(const struct ap_store_query *q, char *err, size_t errlen)
{
	if (q->until_ns <= q->from_ns)
		return ap_errf(err, errlen, -EINVAL,
			       "time range: until (%" PRIu64 ") must be after from (%" PRIu64 ")",
			       q->until_ns, q->from_ns);
	return 0;
}

/* The series a query selects that have samples, with their values lined up by type name. */
int sq_pick(struct sq_store *s, const struct ap_store_query *q, struct ap_profile *p,
		struct picked **out, size_t *nout, struct lineup *l)
{
	struct sq_dict *d = &s->dict;
	struct picked *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t hours = 0, first = 0; /* hours of the series so far, before the first pick */
	int ret = 0;

	pthread_rwlock_rdlock(&d->lock);
	for (size_t i = 1; i < d->nseries; i++) {
		struct sq_series *e = d->series[i];
		struct picked *pk;
		uint64_t h;

		if (!e || !e->nvalues)
			continue;
		h = e->last_h >= e->first_h ? (uint64_t)(e->last_h - e->first_h) + 1 : 0;
		hours += h;
		if (!sq_overlaps(e, q->from_ns, q->until_ns) ||
		    !ap_selector_match(q->sel, e->labels, e->nlabels))
			continue;
		if (!n)
			first = hours - h;
		l->span_h = hours - first;
		if (ap_grow_array((void **)&v, &cap, n + 1, sizeof(*v))) {
			ret = -ENOMEM;
			break;
		}
		pk = &v[n++];
		pk->id = e->id;
		pk->nvalues = e->nvalues;
		pk->comm = p ? ap_profile_intern(p, e->comm) : 0;
		if (pk->comm == UINT32_MAX) {
			ret = -ENOMEM;
			break;
		}
		if (!l->mode && !(l->mode = strdup(e->mode))) {
			ret = -ENOMEM;
			break;
		}
		if (!l->period_type) {
			l->period_type = strdup(e->period_type);
			l->period_unit = strdup(e->period_unit);
			l->period = e->period;
			if (!l->period_type || !l->period_unit) {
				ret = -ENOMEM;
				break;
			}
		}
		for (uint32_t k = 0; k < e->nvalues; k++) {
			size_t m = 0;

			while (m < l->n && strcmp(l->type[m], e->vt_type[k]))
				m++;
			if (m == l->n) {
				if (l->n >= AP_MAX_VALUES) {
					pk->map[k] = -1;
					l->dropped++;
					continue;
				}
				l->type[m] = strdup(e->vt_type[k]);
				l->unit[m] = strdup(e->vt_unit[k]);
				l->n++;
				if (!l->type[m] || !l->unit[m]) {
					ret = -ENOMEM;
					break;
				}
			}
			pk->map[k] = (int)m;
		}
		if (ret)
			break;
	}
	pthread_rwlock_unlock(&d->lock);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*nout = n;
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* ---- merge ---- */

struct agg_entry {
	uint32_t stack, comm;
	uint64_t v[AP_MAX_VALUES];
};

/* The sums by (stack, comm). Each series has one comm, so a comm's entries are found through
 * an array indexed by stack id (ids are dense) while that fits AGG_DENSE_MAX slots in all;
 * past it, and for stacks newer than the query's start, through a hash map. */
#define AGG_DENSE_MAX (4u << 20)
struct agg {
	struct sq_map idx;
	struct agg_entry *e;
	size_t n, cap;
	uint32_t **dense; /* comm id -> (stack id -> entry + 1) */
	size_t ndense, dense_used, nstacks;
};

static void agg_free(struct agg *a)
{
	sq_map_free(&a->idx);
	free(a->e);
	for (size_t i = 0; i < a->ndense; i++)
		free(a->dense[i]);
	free(a->dense);
}

/* The slot of (stack, comm): a dense one or the map's. */
static uint32_t *agg_slot(struct agg *a, uint32_t *dense, uint64_t stack, uint32_t comm,
			  bool *ins)
{
	if (dense && stack < a->nstacks) {
		uint32_t *slot = &dense[stack];

		*ins = !*slot;
		if (*ins)
			*slot = (uint32_t)a->n + 1;
		return slot;
	}
	return sq_map_put(&a->idx, stack << 32 | comm, (uint32_t)a->n + 1, ins);
}

static uint32_t *agg_dense(struct agg *a, uint32_t comm)
{
	if (comm >= a->ndense) {
		size_t n = comm + 16;
		uint32_t **d = realloc(a->dense, n * sizeof(*d));

		if (!d)
			return NULL;
		memset(d + a->ndense, 0, (n - a->ndense) * sizeof(*d));
		a->dense = d;
		a->ndense = n;
	}
	if (!a->dense[comm] && a->dense_used + a->nstacks <= AGG_DENSE_MAX) {
		a->dense[comm] = calloc(a->nstacks + 1, sizeof(uint32_t));
		a->dense_used += a->nstacks;
	}
	return a->dense[comm];
}

static int agg_blob(struct agg *a, const struct picked *pk, const unsigned char *p,
		    const unsigned char *end)
{
	uint64_t n, stack = 0, d, v;
	uint32_t *dense = agg_dense(a, pk->comm);

	p = p ? sq_varint_get(p, end, &n) : NULL;
	for (uint64_t i = 0; p && i < n; i++) {
		struct agg_entry *e;
		uint32_t *slot;
		bool ins;

		p = sq_varint_get(p, end, &d);
		if (!p)
			break;
		stack += d;
		slot = agg_slot(a, dense, stack, pk->comm, &ins);
		if (!slot)
			return -ENOMEM;
		if (ins) {
			if (ap_grow_array((void **)&a->e, &a->cap, a->n + 1, sizeof(*a->e)))
				return -ENOMEM;
			memset(&a->e[a->n], 0, sizeof(a->e[0]));
			a->e[a->n].stack = (uint32_t)stack;
			a->e[a->n].comm = pk->comm;
			a->n++;
		}
		e = &a->e[*slot - 1];
		for (uint32_t k = 0; k < pk->nvalues && p; k++) {
			p = sq_varint_get(p, end, &v);
			if (p && pk->map[k] >= 0)
				e->v[pk->map[k]] = sat_add(e->v[pk->map[k]], v);
		}
	}
	return p ? 0 : -EINVAL;
}

static int merge_entry(void *ctx, const struct picked *pk, int64_t t, uint32_t stack,
		       const uint64_t *v, uint32_t nv)
{
	struct agg *a = ctx;
	uint32_t *dense = agg_dense(a, pk->comm), *slot;
	struct agg_entry *e;
	bool ins;

	(void)t;
	slot = agg_slot(a, dense, stack, pk->comm, &ins);
	if (!slot)
		return -ENOMEM;
	if (ins) {
		if (ap_grow_array((void **)&a->e, &a->cap, a->n + 1, sizeof(*a->e)))
			return -ENOMEM;
		memset(&a->e[a->n], 0, sizeof(a->e[0]));
		a->e[a->n].stack = stack;
		a->e[a->n].comm = pk->comm;
		a->n++;
	}
	e = &a->e[*slot - 1];
	for (uint32_t k = 0; k < nv && k < pk->nvalues; k++)
		if (pk->map[k] >= 0)
			e->v[pk->map[k]] = sat_add(e->v[pk->map[k]], v[k]);
	return 0;
}

static int merge_row(void *ctx, const struct picked *pk, sqlite3_stmt *st, char *err,
		     size_t errlen)
{
	const unsigned char *b = sqlite3_column_blob(st, 3);
	int ret = agg_blob(ctx, pk, b, b + sqlite3_column_bytes(st, 3));

	if (ret == -EINVAL)
		ap_errf(err, errlen, ret, "sqlite: a sample row of series %u is damaged", pk->id);
	return ret;
}

struct scan_walk {
	const struct picked *pk;
	const uint32_t *idx;
	uint32_t maxid;
	int64_t t;
	sq_entry_fn entry;
	void *ctx;
};

static int scan_entry(void *ctx, uint32_t series, uint32_t nv, uint32_t stack, const uint64_t *v)
{
	struct scan_walk *w = ctx;

	if (!series || series > w->maxid || !w->idx[series])
		return 0;
	return w->entry(w->ctx, &w->pk[w->idx[series] - 1], w->t, stack, v, nv);
}

/* What a B-tree seek costs in rows stepped over (a seek walks from the root through a few
 * pages; stepping to the next row is mostly a pointer bump on the same page). */
#define SEEK_ROWS 16

/* Whether reading tier k over [lo, hi) for every series in the picked ids' range (about
 * span_h hours of rows each, all of them read) costs less than a seek per picked series and
 * the rows it needs: the case of a query over many series (a fleet whose series are
 * processes: tens of thousands, each a seek per segment). The estimate is in memory, so a
 * long-lived series selected among few (a week of a host) is still read by its own seek. */
static bool by_ids(int k, uint64_t span_h, int64_t lo, int64_t hi, size_t npk)
{
	uint64_t per_h = SQ_HOUR_NS / sq_tiers[k].res_ns;
	uint64_t need = (uint64_t)(hi - lo) / sq_tiers[k].res_ns + 1;

	return span_h * per_h < (uint64_t)npk * (SEEK_ROWS + need);
}

int sq_scan(struct sq_conn *c, sqlite3_stmt *const *stmts, sqlite3_stmt *const *ids,
	    uint64_t span_h, const struct sq_segment *seg, size_t nseg, const struct picked *pk,
	    size_t npk, sq_row_fn row, sq_entry_fn entry, void *ctx, char *err, size_t errlen)
{
	uint32_t *idx, maxid = 0, minid = UINT32_MAX;
	int rc, ret = 0;

	for (size_t i = 0; i < npk; i++) {
		maxid = pk[i].id > maxid ? pk[i].id : maxid;
		minid = pk[i].id < minid ? pk[i].id : minid;
	}
	idx = calloc((size_t)maxid + 1, sizeof(*idx));
	if (!idx)
		return ap_errf(err, errlen, -ENOMEM, "sqlite: out of memory");
	for (size_t i = 0; i < npk; i++)
		idx[pk[i].id] = (uint32_t)i + 1;
	for (size_t g = 0; g < nseg && !ret; g++) {
		int k = seg[g].tier;
		bool range = !sq_tiers[k].time_major && ids[k] &&
			     by_ids(k, span_h, seg[g].lo, seg[g].hi, npk);
		sqlite3_stmt *st = range ? ids[k] : stmts[k];
		/* every series at once (filtered through idx), or one series at a time */
		bool all = sq_tiers[k].time_major || range;

		for (size_t i = 0; i < (all ? 1 : npk) && !ret; i++) {
			sqlite3_bind_int64(st, 1, range ? minid : all ? 0 : pk[i].id);
			sqlite3_bind_int64(st, 2, seg[g].lo);
			sqlite3_bind_int64(st, 3, seg[g].hi);
			if (range)
				sqlite3_bind_int64(st, 4, maxid);
			while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
				int64_t sid = sqlite3_column_int64(st, 0);

				if (seg[g].tier == 0) {
					const unsigned char *b = sqlite3_column_blob(st, 3);
					struct scan_walk w = { pk, idx, maxid,
							       sqlite3_column_int64(st, 1), entry,
							       ctx };

					ret = sq_grouped_walk(b, b + sqlite3_column_bytes(st, 3),
							      scan_entry, &w);
					if (ret == -EINVAL)
						ap_errf(err, errlen, ret,
							"sqlite: a push row at %lld is damaged",
							(long long)w.t);
				} else if (!all) {
					ret = row(ctx, &pk[i], st, err, errlen);
				} else if (sid > 0 && sid <= (int64_t)maxid && idx[sid]) {
					ret = row(ctx, &pk[idx[sid] - 1], st, err, errlen);
				}
			}
			sqlite3_reset(st);
			if (!ret && rc != SQLITE_DONE)
				ret = sq_fail(c->db, rc, "reading samples", err, errlen);
		}
	}
	free(idx);
	return ret;
}

static int read_chunks(struct sq_store *s, const struct ap_store_query *q,
		       const struct picked *pk, size_t npk, uint64_t span_h, struct agg *a,
		       char *err, size_t errlen)
{
	struct sq_segment seg[2 * SQ_NTIERS];
	struct sq_conn *c;
	int64_t wm[SQ_NTIERS];
	size_t nseg;
	int rc, ret = 0;

	if (!npk)
		return 0;
	c = sq_conn_get(s, err, errlen);
	if (!c)
		return -EIO;
	rc = sqlite3_step(c->begin);
	sqlite3_reset(c->begin);
	if (rc != SQLITE_DONE) {
		ret = sq_fail(c->db, rc, "starting a read", err, errlen);
		goto out;
	}
	ret = sq_conn_marks(c, wm, err, errlen);
	nseg = ret ? 0 : sq_plan(q->from_ns, q->until_ns, ~0u, wm, seg);
	if (!ret)
		ret = sq_scan(c, c->chunks, c->chunks_ids, span_h, seg, nseg, pk, npk, merge_row,
			      merge_entry, a, err, errlen);
	rc = sqlite3_step(c->commit);
	sqlite3_reset(c->commit);
out:
	sq_conn_put(s, c);
	return ret;
}

/* Turn the summed (stack, comm) entries into the profile's stacks and samples. */
static int build_samples(struct sq_store *s, struct ap_profile *p, const struct agg *a)
{
	struct sq_dict *d = &s->dict;
	struct sq_map fmap = { 0 }, smap = { 0 };
	uint32_t *ids = NULL;
	size_t cap = 0;
	uint64_t missing = 0;
	int ret = 0;

	pthread_rwlock_rdlock(&d->lock);
	for (size_t i = 0; i < a->n && !ret; i++) {
		const struct agg_entry *e = &a->e[i];
		struct ap_sample smp = { 0 };
		struct sq_stack *k = e->stack < d->nstacks ? d->stacks[e->stack] : NULL;
		uint32_t *ps;
		bool ins;

		if (!k) { /* deleted by a retention run after this query's snapshot */
			missing++;
			continue;
		}
		ps = sq_map_put(&smap, (uint64_t)e->stack, 0, &ins);
		if (!ps) {
			ret = -ENOMEM;
			break;
		}
		if (ins) {
			if (ap_grow_array((void **)&ids, &cap, k->n + 1, sizeof(*ids))) {
				ret = -ENOMEM;
				break;
			}
			for (uint32_t f = 0; f < k->n && !ret; f++) {
				struct sq_frame *fr = d->frames[k->frames[f]];
				uint32_t *pf = sq_map_put(&fmap, k->frames[f], 0, &ins);

				if (!pf || !fr) {
					ret = pf ? -EINVAL : -ENOMEM;
					break;
				}
				if (ins) {
					*pf = ap_profile_add_frame_text(p, fr->name, fr->module,
									fr->file, fr->line, fr->kind,
									fr->flags);
					if (*pf == UINT32_MAX)
						ret = -ENOMEM;
				}
				ids[f] = *pf;
			}
			if (ret)
				break;
			*ps = ap_profile_add_stack(p, ids, k->n);
			if (*ps == UINT32_MAX) {
				ret = -ENOMEM;
				break;
			}
		}
		smp.stack = *ps;
		smp.comm = e->comm;
		memcpy(smp.values, e->v, sizeof(smp.values));
		ret = ap_profile_add_sample(p, &smp);
	}
	pthread_rwlock_unlock(&d->lock);
	if (!ret && missing)
		ret = ap_profile_set_stat(p, "store_stacks_missing", missing);
	sq_map_free(&fmap);
	sq_map_free(&smap);
	free(ids);
	return ret;
}

int sq_merge(struct ap_store *st, const struct ap_store_query *q, struct ap_profile **out,
	     char *err, size_t errlen)
{
	struct sq_store *s = sq_of(st);
	struct lineup l = { 0 };
	struct picked *pk = NULL;
	struct agg a = { 0 };
	struct ap_profile *p;
	size_t npk = 0;
	int ret;

	*out = NULL;
	if (err && errlen)
		*err = 0;
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	p = ap_profile_new();
	if (!p)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	ret = sq_pick(s, q, p, &pk, &npk, &l);
	pthread_rwlock_rdlock(&s->dict.lock);
	a.nstacks = s->dict.nstacks;
	pthread_rwlock_unlock(&s->dict.lock);
	if (!ret)
		ret = read_chunks(s, q, pk, npk, l.span_h, &a, err, errlen);
	for (size_t i = 0; i < l.n && !ret; i++)
		ret = ap_profile_add_value_type(p, l.type[i], l.unit[i]);
	if (!ret && l.period_type)
		ap_profile_set_period(p, l.period_type, l.period_unit, l.period);
	if (!ret) {
		ap_profile_set_time(p, q->from_ns, q->until_ns - q->from_ns);
		ret = build_samples(s, p, &a);
	}
	if (!ret) {
		const char *mode = ap_selector_mode(q->sel);

		ret = ap_profile_set_meta(p, "mode", mode ? mode : l.mode ? l.mode : "");
	}
	if (!ret && l.dropped)
		ret = ap_profile_set_stat(p, "store_value_types_dropped", l.dropped);
	if (ret && !(err && *err))
		ap_errf(err, errlen, ret, "sqlite: merge failed: %s", strerror(-ret));
	free(pk);
	agg_free(&a);
	sq_lineup_free(&l);
	if (ret) {
		ap_profile_free(p);
		return ret;
	}
	*out = p;
	return 0;
}
