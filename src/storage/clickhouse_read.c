// SPDX-License-Identifier: MIT
/*
 * The ClickHouse backend's queries (docs/storage.md, "Queries and resolutions"). ClickHouse
 * selects the series itself: the = and != matchers become SQL on the label arrays, regex
 * matchers run here (POSIX, as SQLite's) and only then are ids sent, once. A merge or series
 * query picks one series per group (comm + value-type lineup, keyed by a hash ClickHouse
 * computes), then ClickHouse sums the samples over the plan's segments (whole hours from
 * ap_samples_h1, whole minutes from ap_samples_m1, the edges from the raw rows at their exact
 * times) per (stack or point, group key), the key joined from ap_series. The stacks and frames
 * of the rows come from clickhouse_stacks.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clickhouse_internal.h"
#include "clickhouse_sql.h"
#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "sqlite_query.h"

#define SEC 1000000000ULL

/* ---- picking series ---- */

enum src { SRC_SAMPLES = 1, SRC_ROWS = 2, SRC_DAYS = 4 };

/* 'YYYY-MM-DD' (UTC) of a time in seconds */
static void utc_day(char out[32], unsigned long long sec)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%d", &tm))
		snprintf(out, 32, "1970-01-01");
}

/*
 * The SQL condition on ap_series rows that selects the query's series as far as SQL can: the
 * days of [lo, hi) seconds and every = and != matcher (a missing label is "", as in
 * ap_selector_match). *exact: no regex matcher is left for C, so the condition selects exactly
 * the series the selector matches (the series with data in the range among them).
 */
static void series_filter(const struct ap_store_query *q, unsigned long long lo,
			  unsigned long long hi, struct ch_buf *out, bool *exact)
{
	char d0[32], d1[32];

	utc_day(d0, lo);
	utc_day(d1, hi > lo ? hi - 1 : lo);
	ch_buf_printf(out, CH_SQL_SERIES_DAYS, d0, d1);
	*exact = true;
	for (size_t i = 0; q->sel && i < q->sel->n; i++) {
		const struct ap_matcher *m = &q->sel->m[i];
		struct ch_buf n = {0}, v = {0};

		if (m->op != AP_MATCH_EQ && m->op != AP_MATCH_NE) {
			*exact = false;
			continue;
		}
		ch_sql_str(&n, m->name);
		ch_sql_str(&v, m->value);
		if (m->value[0])
			ch_buf_printf(out, m->op == AP_MATCH_EQ ? CH_SQL_LABEL_EQ : CH_SQL_LABEL_NE,
				      n.b ? n.b : "''", v.b ? v.b : "''");
		else
			ch_buf_printf(out,
				      m->op == AP_MATCH_EQ ? CH_SQL_LABEL_EMPTY : CH_SQL_LABEL_SET,
				      n.b ? n.b : "''");
		out->oom |= n.oom || v.oom;
		ch_buf_free(&n);
		ch_buf_free(&v);
	}
}

/* The hours around [from, until): whole hours covering it, in seconds. */
static void hours_around(const struct ap_store_query *q, unsigned long long *lo,
			 unsigned long long *hi)
{
	*lo = q->from_ns / CH_HOUR_NS * 3600;
	*hi = (q->until_ns / CH_HOUR_NS + (q->until_ns % CH_HOUR_NS ? 1 : 0)) * 3600;
}

/*
 * The series the selector matches among those with data in the hours around the range
 * (SRC_SAMPLES, SRC_ROWS: labels, modes, table rows), or among the dictionary rows of the days
 * around it (SRC_DAYS: merges and series, which keep only the groups that have rows), where
 * without a regex matcher one series per group is enough. filt gets the SQL condition that
 * selects them in ClickHouse (series_filter), *exact as there.
 */
/* A series' group key in SQL: the column, or computed where rows have none (before version 3) */
static const char *gk_of(const struct ch_store *s)
{
	return s->legacy_gk ? CH_SQL_GK_EXPR : "gk";
}

static int pick_sql(struct ch_store *s, const struct ap_store_query *q, unsigned src,
		    const char *vis, struct ch_buf *filt, bool *exact, struct ch_buf *sql)
{
	struct ch_buf sub = {0};
	unsigned long long lo, hi;
	bool oom;

	hours_around(q, &lo, &hi);
	if (src & SRC_SAMPLES) {
		ch_buf_printf(&sub, CH_SQL_PICK_H1, s->db, lo, hi, vis);
		if (s->legacy_roll) {
			ch_buf_printf(&sub, CH_SQL_UNION);
			ch_buf_printf(&sub, CH_SQL_PICK_H1_LEGACY, s->db, lo, hi, vis);
		}
	}
	if (src & SRC_ROWS) {
		if (sub.n)
			ch_buf_printf(&sub, CH_SQL_UNION);
		ch_buf_printf(&sub, CH_SQL_PICK_ROWS, s->db, lo, hi, vis);
	}
	series_filter(q, lo, hi, filt, exact);
	if (src == SRC_DAYS)
		ch_buf_printf(sql, *exact ? CH_SQL_PICK_GROUPS : CH_SQL_PICK_DAYS, gk_of(s), s->db,
			      filt->b ? filt->b : "1");
	else
		ch_buf_printf(sql, CH_SQL_PICK, gk_of(s), s->db, filt->b ? filt->b : "1",
			      sub.b ? sub.b : "");
	oom = sub.oom || filt->oom || sql->oom;
	ch_buf_free(&sub);
	return oom ? -ENOMEM : 0;
}

/* The picked series of pick_sql()'s answer that the selector matches (its regex matchers: the
 * SQL had the rest). */
static int pick_parse(const struct ap_store_query *q, const struct ch_buf *ans,
		      struct ch_series **out, size_t *nout, char *err, size_t errlen)
{
	struct ch_series *v = NULL;
	size_t n = 0, k = 0;
	int ret = ch_parse_series(ans->b, ans->n, CH_MAX_PICK, &v, &n, err, errlen);

	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (ap_selector_match(q->sel, v[i].labels, v[i].nlabels)) {
			struct ch_series t = v[k];

			v[k++] = v[i];
			v[i] = t;
		}
	}
	if (v) /* none picked: no array */
		ch_series_clear(v + k, n - k);
	*out = v;
	*nout = k;
	return 0;
}

static int pick(struct ch_store *s, const struct ap_store_query *q, unsigned src, const char *vis,
		struct ch_buf *filt, bool *exact, struct ch_series **out, size_t *nout, char *err,
		size_t errlen)
{
	struct ch_buf sql = {0}, ans = {0};
	int ret = pick_sql(s, q, src, vis, filt, exact, &sql);

	if (ret)
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
	else
		ret = ch_http_exec(s->http, sql.b, NULL, 0, CH_QUERY_SETTINGS, &ans, err, errlen);
	if (!ret)
		ret = pick_parse(q, &ans, out, nout, err, errlen);
	ch_buf_free(&sql);
	ch_buf_free(&ans);
	return ret;
}

/* "id,id,..." of the series */
static void id_list(const struct ch_series *v, size_t n, struct ch_buf *out)
{
	for (size_t i = 0; i < n; i++)
		ch_buf_printf(out, "%s%" PRIu64, i ? "," : "", v[i].id);
}

/* The visibility rule for the rows of a plan over [from, ...) (every row it reads has t at or
 * after from's second): none when no retention run cuts above that, so that a query over data
 * younger than every cut-off (nearly all of them) does not read rv and evaluate the rule on
 * each row. The runs only grow their cut-off, so a refresh between the two looks is harmless. */
static int vis_from(struct ch_store *s, uint64_t from_ns, struct ch_buf *vis, char *err,
		    size_t errlen)
{
	uint64_t maxcut = 0;
	int ret = ch_vis(s, vis, NULL, err, errlen);

	if (ret)
		return ret;
	pthread_mutex_lock(&s->rlock);
	for (size_t i = 0; i < s->nruns; i++)
		if (s->runs[i].cutoff > maxcut)
			maxcut = s->runs[i].cutoff;
	pthread_mutex_unlock(&s->rlock);
	if (maxcut <= from_ns / SEC) {
		vis->n = 0;
		ch_buf_printf(vis, CH_SQL_VIS_ALL);
	}
	return vis->oom ? ap_errf(err, errlen, -ENOMEM, "out of memory") : 0;
}

/* ---- the lineup of value types and the groups ---- */

struct group {
	const char *comm;
	uint32_t comm_id; /* profile string id (merge) */
	uint32_t nv;
	int map[AP_MAX_VALUES];
};

struct plan {
	struct lineup l;
	struct group *g; /* gid = index + 1 */
	size_t ng;
	struct ch_gkey *keys; /* group key -> gid, sorted by key */
	size_t nkeys;
	struct ch_buf sel;  /* SQL condition on the segments' rows: the selected series */
	struct ch_buf join; /* the join that gives each row its series' group key (legacy_gk) */
	const char *gkcol;  /* ", gk": the rows' own group key column; "": joined */
	const char *vis;    /* the visibility rule */
	bool ts;	    /* the segments give each row's time (series queries) */
	char vals[32];	    /* ", v0, v1": the values the segments read */
	char sums[128];	    /* "sum(v0), sum(v1), toUInt64(0), toUInt64(0)": what a row sums */
	/* the retention cut-offs (seconds, whole hours) inside a day: the visibility rule hides a
	 * day bucket by its start, so such a day is read from its hours */
	uint64_t *cuts;
	size_t ncuts;
};

static void plan_free(struct plan *p)
{
	sq_lineup_free(&p->l);
	free(p->g);
	free(p->keys);
	ch_buf_free(&p->sel);
	ch_buf_free(&p->join);
	free(p->cuts);
}

/* The plan's rows are visible by vis (vis_from()); the cut-offs of the retention runs that fall
 * inside a day (plan_rec() reads those days from their hours). */
static int plan_vis(struct ch_store *s, struct plan *p, const char *vis)
{
	int ret = 0;

	p->vis = vis;
	pthread_mutex_lock(&s->rlock);
	for (size_t i = 0; i < s->nruns && !ret; i++) {
		uint64_t *n;

		if (s->runs[i].cutoff % 86400 == 0)
			continue;
		n = realloc(p->cuts, (p->ncuts + 1) * sizeof(*n));
		if (!n) {
			ret = -ENOMEM;
			break;
		}
		p->cuts = n;
		p->cuts[p->ncuts++] = s->runs[i].cutoff;
	}
	pthread_mutex_unlock(&s->rlock);
	return ret;
}

static int cmp_gkey(const void *a, const void *b)
{
	const struct ch_gkey *x = a, *y = b;

	return x->gk < y->gk ? -1 : x->gk > y->gk;
}

static int lineup(struct ch_series *v, size_t n, struct ap_profile *prof, struct plan *p)
{
	struct lineup *l = &p->l;

	if (n && !(p->keys = calloc(n, sizeof(*p->keys))))
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		struct ch_series *e = &v[i];
		struct group g = {.comm = e->comm, .nv = (uint32_t)e->nvalues};
		size_t gi;

		if (!l->mode && !(l->mode = strdup(e->mode)))
			return -ENOMEM;
		if (!l->period_type) {
			l->period_type = strdup(e->vt[0]);
			l->period_unit = strdup(e->vt[1]);
			l->period = e->period;
			if (!l->period_type || !l->period_unit)
				return -ENOMEM;
		}
		for (size_t k = 0; k < e->nvalues; k++) {
			const char *type = e->vt[2 + 2 * k], *unit = e->vt[3 + 2 * k];
			size_t m = 0;

			while (m < l->n && strcmp(l->type[m], type))
				m++;
			if (m == l->n) {
				if (l->n >= AP_MAX_VALUES) {
					g.map[k] = -1;
					l->dropped++;
					continue;
				}
				l->type[m] = strdup(type);
				l->unit[m] = strdup(unit);
				l->n++;
				if (!l->type[m] || !l->unit[m])
					return -ENOMEM;
			}
			g.map[k] = (int)m;
		}
		for (gi = 0; gi < p->ng; gi++)
			if (p->g[gi].nv == g.nv && !strcmp(p->g[gi].comm, g.comm) &&
			    !memcmp(p->g[gi].map, g.map, sizeof(g.map)))
				break;
		if (gi == p->ng) {
			struct group *ng = realloc(p->g, (p->ng + 1) * sizeof(*ng));

			if (!ng)
				return -ENOMEM;
			p->g = ng;
			g.comm_id = prof ? ap_profile_intern(prof, g.comm) : 0;
			if (g.comm_id == UINT32_MAX)
				return -ENOMEM;
			p->g[p->ng++] = g;
		}
		p->keys[i].gk = e->gk;
		p->keys[i].g = (uint32_t)gi + 1;
	}
	/* one entry per key (equal keys: equal comm and lineup, so the same group) */
	if (n) {
		size_t k = 1;

		qsort(p->keys, n, sizeof(*p->keys), cmp_gkey);
		for (size_t i = 1; i < n; i++)
			if (p->keys[i].gk != p->keys[k - 1].gk)
				p->keys[k++] = p->keys[i];
		p->nkeys = k;
	}
	return 0;
}

/* The plan's SQL that selects the rows of the picked series and gives each its group key:
 * ClickHouse selects the series itself (filt), and only when a regex matcher was applied in C
 * (!exact) are the ids of the series it kept sent, once, in the join. */
static int plan_select(struct ch_store *s, struct plan *p, const char *filt, bool exact,
		       const struct ch_series *v, size_t n)
{
	struct ch_buf ids = {0}, in = {0};
	size_t nval = 1, o = 0, k;

	/* the values any selected series has (4 columns read where 2 are used cost a third more);
	 * no series known yet (v NULL: the pick runs at the same time): all */
	for (size_t i = 0; i < n; i++)
		if (v[i].nvalues > nval)
			nval = v[i].nvalues;
	if (!v || nval > AP_MAX_VALUES)
		nval = AP_MAX_VALUES;
	p->vals[0] = 0;
	for (k = 0; k < nval; k++) {
		snprintf(p->vals + strlen(p->vals), sizeof(p->vals) - strlen(p->vals), ", v%zu", k);
		o += (size_t)snprintf(p->sums + o, sizeof(p->sums) - o, "%ssum(v%zu)",
				      k ? ", " : "", k);
	}
	for (; k < AP_MAX_VALUES; k++)
		o += (size_t)snprintf(p->sums + o, sizeof(p->sums) - o, ", toUInt64(0)");

	ch_buf_printf(&p->sel, CH_SQL_SEL_SERIES, s->db, filt);
	if (!exact)
		id_list(v, n, &ids);
	if (!s->legacy_gk) { /* the rows have their group key */
		p->gkcol = ", gk";
		if (!exact)
			ch_buf_printf(&p->sel, CH_SQL_SEL_IDS, ids.b ? ids.b : "0");
		ch_buf_printf(&p->join, " ");
	} else {
		p->gkcol = "";
		if (!exact)
			ch_buf_printf(&in, CH_SQL_JOIN_IDS, ids.b ? ids.b : "0");
		ch_buf_printf(&p->join, CH_SQL_JOIN_GK, s->db, filt, in.b ? in.b : "");
	}
	if (ids.oom || in.oom)
		p->join.oom = true;
	ch_buf_free(&ids);
	ch_buf_free(&in);
	return p->sel.oom || p->join.oom ? -ENOMEM : 0;
}

/* ---- the resolution plan ---- */

/* The ranges of a plan, per table and resolution: each a condition on t, OR-ed into one SELECT
 * per table and resolution (the resolution in the SELECT's WHERE rather than in each range lets
 * 18.16 use the primary key: a third of the rows read). */
struct segs {
	struct ch_buf raw;		   /* ap_samples */
	struct ch_buf roll[CH_RES_D1 + 1]; /* ap_roll, by res */
	struct ch_buf m1, h1;		   /* version 2's rollups (a migrated store) */
};

static void segs_free(struct segs *g)
{
	ch_buf_free(&g->raw);
	for (int k = 0; k <= CH_RES_D1; k++)
		ch_buf_free(&g->roll[k]);
	ch_buf_free(&g->m1);
	ch_buf_free(&g->h1);
}

static void or_range(struct ch_buf *b)
{
	if (b->n)
		ch_buf_printf(b, CH_SQL_OR);
}

/* the bucket of each resolution of ap_roll (index = res) */
static const uint64_t res_ns[] = {0, CH_MIN_NS, CH_HOUR_NS, CH_DAY_NS};

static void add_roll(struct ch_store *s, struct segs *g, int res, uint64_t a, uint64_t b)
{
	struct ch_buf *legacy = res == CH_RES_M1 ? &g->m1 : &g->h1;

	or_range(&g->roll[res]);
	ch_buf_printf(&g->roll[res], CH_SQL_RANGE_T, (unsigned long long)(a / SEC),
		      (unsigned long long)(b / SEC));
	if (s->legacy_roll) { /* version 2 had no days: its hours serve */
		or_range(legacy);
		ch_buf_printf(legacy, CH_SQL_RANGE_T, (unsigned long long)(a / SEC),
			      (unsigned long long)(b / SEC));
	}
}

/* [a, b) split: whole buckets of the largest allowed resolution (mask: bit res) at or below
 * top, the edges by the next ones down, the rest from the raw rows at their exact times. */
static void plan_rec(struct ch_store *s, const struct plan *p, struct segs *g, uint64_t a,
		     uint64_t b, int top, unsigned mask)
{
	if (a >= b)
		return;
	for (int k = top; k > 0; k--) {
		uint64_t r = res_ns[k], ra = (a + r - 1) / r * r, rb = b / r * r;

		if (!(mask & (1u << k)) || ra >= rb)
			continue;
		for (size_t i = 0; k == CH_RES_D1 && i < p->ncuts; i++) {
			uint64_t c = p->cuts[i] * SEC, cd = c / r * r;

			if (c <= ra || c >= rb)
				continue;
			/* a cut-off inside day cd: the days before and after it, that day by
			 * hours */
			plan_rec(s, p, g, a, cd, k, mask);
			plan_rec(s, p, g, cd, cd + r, k - 1, mask);
			plan_rec(s, p, g, cd + r, b, k, mask);
			return;
		}
		plan_rec(s, p, g, a, ra, k - 1, mask);
		add_roll(s, g, k, ra, rb);
		plan_rec(s, p, g, rb, b, k - 1, mask);
		return;
	}
	or_range(&g->raw);
	ch_buf_printf(&g->raw, CH_SQL_RANGE_RAW, (unsigned long long)(a / SEC),
		      (unsigned long long)(b / SEC), (unsigned long long)a, (unsigned long long)b);
}

/* One SELECT: table, res (ap_roll's resolution; 0 another rollup table, -1 the raw rows) */
static void seg_select(struct ch_store *s, struct ch_buf *sql, const struct plan *p,
		       const char *table, int res, const struct ch_buf *ranges)
{
	char cond[32];

	if (!ranges->n)
		return;
	if (sql->n)
		ch_buf_printf(sql, CH_SQL_UNION);
	snprintf(cond, sizeof(cond), res > 0 ? CH_SQL_RES : "1", res);
	ch_buf_printf(sql, CH_SQL_SEG, p->gkcol,
		      p->ts ? res < 0 ? CH_SQL_TS_RAW : CH_SQL_TS_ROLL : "", p->vals, s->db, table,
		      cond, p->sel.b, ranges->b, p->vis);
}

/* Appends to sql the UNION ALL of the plan's SELECTs over [a, b): the selected series' rows
 * with their stack, time (series queries only: a merge does not need it) and the values the
 * groups have (a column not read costs nothing). mask: the rollups allowed (bit res). */
static bool plan_range(struct ch_store *s, struct ch_buf *sql, const struct plan *p, uint64_t a,
		       uint64_t b, unsigned mask)
{
	struct segs g = {0};
	bool oom;

	plan_rec(s, p, &g, a, b, CH_RES_D1, mask);
	seg_select(s, sql, p, "ap_samples", -1, &g.raw);
	oom = g.raw.oom || g.m1.oom || g.h1.oom;
	for (int k = CH_RES_M1; k <= CH_RES_D1; k++) {
		seg_select(s, sql, p, "ap_roll", k, &g.roll[k]);
		oom |= g.roll[k].oom;
	}
	seg_select(s, sql, p, "ap_samples_m1", 0, &g.m1);
	seg_select(s, sql, p, "ap_samples_h1", 0, &g.h1);
	oom |= sql->oom;
	segs_free(&g);
	return !oom;
}

#define RES_ALL ((1u << CH_RES_M1) | (1u << CH_RES_H1) | (1u << CH_RES_D1))

/* ---- merge ---- */

/* The group keys of the picked series, each to the first series that has it (index + 1): what
 * the answer's rows are first mapped to. */
static int rep_keys(const struct ch_series *v, size_t n, struct ch_gkey **out, size_t *nout)
{
	struct ch_gkey *k = calloc(n ? n : 1, sizeof(*k));
	size_t m = 0;

	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		k[i].gk = v[i].gk;
		k[i].g = (uint32_t)i + 1;
	}
	qsort(k, n, sizeof(*k), cmp_gkey); /* equal keys: the lower index first (below) */
	for (size_t i = 0; i < n; i++) {
		if (m && k[m - 1].gk == k[i].gk) {
			if (k[i].g < k[m - 1].g)
				k[m - 1].g = k[i].g;
			continue;
		}
		k[m++] = k[i];
	}
	*out = k;
	*nout = m;
	return 0;
}

/* The lineup and groups of the series whose groups have rows (in pick order: a group without
 * rows in the range adds no value type), then each row's series index -> its group. */
static int lineup_present(struct ch_series *v, size_t n, struct ch_mrow *rows, size_t nrows,
			  struct ap_profile *prof, struct plan *p)
{
	bool *on = calloc(n ? n : 1, sizeof(*on));
	struct ch_series *sub = calloc(n ? n : 1, sizeof(*sub));
	size_t k = 0;
	int ret = -ENOMEM;

	if (!on || !sub)
		goto out;
	for (size_t i = 0; i < nrows; i++)
		on[rows[i].g - 1] = true;
	for (size_t i = 0; i < n; i++)
		if (on[i])
			sub[k++] = v[i]; /* shallow: v keeps the strings */
	ret = lineup(sub, k, prof, p);
	for (size_t i = 0; !ret && i < nrows; i++)
		rows[i].g = ch_gkey_find(p->keys, p->nkeys, v[rows[i].g - 1].gk);
out:
	free(on);
	free(sub);
	return ret;
}

/* Keep the series that have samples (a series of table rows only has none) at the front,
 * release the others; returns how many are kept. */
static size_t keep_with_samples(struct ch_series *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i].nvalues) {
			struct ch_series t = v[k];

			v[k++] = v[i];
			v[i] = t;
		}
	if (v) /* none picked: no array */
		ch_series_clear(v + k, n - k);
	return k;
}

/* The merge's SQL over the plan's segments. */
static int merge_sql(struct ch_store *s, const struct ap_store_query *q, struct plan *pl,
		     struct ch_buf *sql)
{
	struct ch_buf segs = {0};
	bool ok = plan_range(s, &segs, pl, q->from_ns, q->until_ns, RES_ALL);

	ch_buf_printf(sql, CH_SQL_MERGE, pl->sums, segs.b, pl->join.b);
	ch_buf_free(&segs);
	return ok && !sql->oom ? 0 : -ENOMEM;
}

/*
 * The picked series (*v: one per group that has samples; the lineup comes from them) and the
 * merged rows (stack, group, sums). Without a regex matcher the pick and the merge go to
 * ClickHouse at once (the merge then reads all four values); with one, the merge waits for the
 * ids the regex kept.
 */
static int merge_rows(struct ch_store *s, const struct ap_store_query *q, const char *vis,
		      struct ch_buf *filt, struct plan *pl, struct ch_series **v, size_t *nv,
		      struct ch_gkey **reps, size_t *nreps, struct ch_mrow **rows, size_t *nrows,
		      uint64_t *late, char *err, size_t errlen)
{
	struct ch_buf psql = {0}, pans = {0}, msql = {0}, mans = {0};
	bool exact = true, merged = false;
	int ret = pick_sql(s, q, SRC_DAYS, vis, filt, &exact, &psql) ?: plan_vis(s, pl, vis);

	if (!ret && exact) { /* at once */
		struct ch_stmt st[2] = {{psql.b, NULL, 0, CH_QUERY_SETTINGS, &pans},
					{NULL, NULL, 0, CH_QUERY_SETTINGS, &mans}};

		ret = plan_select(s, pl, filt->b, true, NULL, 0) ?: merge_sql(s, q, pl, &msql);
		st[1].query = msql.b;
		if (!ret)
			ret = ch_http_exec_many(s->http, st, 2, err, errlen);
		else
			ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
		merged = true;
	} else if (!ret) {
		ret = ch_http_exec(s->http, psql.b, NULL, 0, CH_QUERY_SETTINGS, &pans, err, errlen);
	} else {
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
	}
	if (!ret)
		ret = pick_parse(q, &pans, v, nv, err, errlen);
	if (!ret) {
		*nv = keep_with_samples(*v, *nv);
		ret = rep_keys(*v, *nv, reps, nreps);
	}
	if (!ret && *nv && !merged) {
		ret = plan_select(s, pl, filt->b, exact, *v, *nv) ?: merge_sql(s, q, pl, &msql);
		ret = ret ? ap_errf(err, errlen, -ENOMEM, "out of memory")
			  : ch_http_exec(s->http, msql.b, NULL, 0, CH_QUERY_SETTINGS, &mans, err,
					 errlen);
	}
	if (!ret && *nv && mans.n)
		ret = ch_parse_mrows(mans.b, mans.n, *reps, *nreps, 0, rows, nrows, late, err,
				     errlen);
	ch_buf_free(&psql);
	ch_buf_free(&pans);
	ch_buf_free(&msql);
	ch_buf_free(&mans);
	return ret;
}

int ch_merge(struct ap_store *st, const struct ap_store_query *q, struct ap_profile **out,
	     char *err, size_t errlen)
{
	struct ch_store *s = ch_of(st);
	struct ch_buf vis = {0}, filt = {0};
	struct ch_series *v = NULL;
	struct plan pl = {0};
	struct ch_mrow *rows = NULL;
	size_t nv = 0, nrows = 0;
	uint64_t missing = 0, late = 0;
	struct ap_profile *p;
	struct ch_gkey *reps = NULL;
	size_t nreps = 0;
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
	ret = vis_from(s, q->from_ns, &vis, err, errlen);
	if (!ret)
		ret = merge_rows(s, q, vis.b, &filt, &pl, &v, &nv, &reps, &nreps, &rows, &nrows,
				 &late, err, errlen);	if (!ret)
		ret = lineup_present(v, nv, rows, nrows, p, &pl);
	if (!ret && nrows)
		ret = ch_fetch_stacks(s, rows, nrows, err, errlen);
	for (size_t i = 0; i < pl.l.n && !ret; i++)
		ret = ap_profile_add_value_type(p, pl.l.type[i], pl.l.unit[i]);
	if (!ret && pl.l.period_type)
		ap_profile_set_period(p, pl.l.period_type, pl.l.period_unit, pl.l.period);
	if (!ret) {
		bool oom = false;

		ap_profile_set_time(p, q->from_ns, q->until_ns - q->from_ns);
		pthread_mutex_lock(&s->clock_);
		for (size_t i = 0; i < nrows && !ret; i++) {
			const struct group *g = &pl.g[rows[i].g - 1];
			struct ap_sample smp = {0};

			smp.stack = ch_profile_stack(s, p, rows[i].key, &oom);
			if (oom) {
				ret = -ENOMEM;
				break;
			}
			if (smp.stack == UINT32_MAX - 1) { /* expired while the query ran */
				missing++;
				continue;
			}
			smp.comm = g->comm_id;
			for (uint32_t k = 0; k < g->nv; k++)
				if (g->map[k] >= 0)
					smp.values[g->map[k]] = rows[i].v[k];
			ret = ap_profile_add_sample(p, &smp);
		}
		pthread_mutex_unlock(&s->clock_);
	}
	if (!ret && missing)
		ret = ap_profile_set_stat(p, "store_stacks_missing", missing);
	if (!ret && late)
		ret = ap_profile_set_stat(p, "store_rows_late", late);
	if (!ret) {
		const char *mode = ap_selector_mode(q->sel);

		ret = ap_profile_set_meta(p, "mode", mode ? mode : pl.l.mode ? pl.l.mode : "");
	}
	if (!ret && pl.l.dropped)
		ret = ap_profile_set_stat(p, "store_value_types_dropped", pl.l.dropped);
	if (ret && !(err && *err))
		ap_errf(err, errlen, ret, "clickhouse: merge failed: %s", strerror(-ret));
	ch_series_free(v, nv);
	plan_free(&pl);
	free(rows);
	free(reps);
	ch_buf_free(&vis);
	ch_buf_free(&filt);
	if (ret) {
		ap_profile_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* ---- series ---- */

int ch_series_q(struct ap_store *st, const struct ap_store_query *q, uint64_t step_ns,
		struct ap_store_series *out, char *err, size_t errlen)
{
	struct ch_store *s = ch_of(st);
	struct ch_buf vis = {0}, filt = {0}, segs = {0}, sql = {0}, ans = {0};
	struct ch_series *v = NULL;
	struct plan pl = {0};
	uint64_t grid0, npoints, late = 0;
	struct ch_gkey *reps = NULL;
	size_t nv = 0, nreps = 0;
	const char *mode;
	bool exact = true;
	int ret;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		*err = 0;
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	if (!step_ns) { /* about 100 points, on a step the rollups divide (as SQLite) */
		static const uint64_t nice[] = {10,   20,   30,	  60,	 120,	300,   600,  900,
						1800, 3600, 7200, 10800, 21600, 43200, 86400};
		uint64_t want = (q->until_ns - q->from_ns) / 100;

		step_ns = nice[sizeof(nice) / sizeof(nice[0]) - 1] * SEC;
		for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]); i++)
			if (nice[i] * SEC >= want) {
				step_ns = nice[i] * SEC;
				break;
			}
		if (step_ns < want)
			step_ns = (want + step_ns - 1) / step_ns * step_ns;
	}
	if (step_ns < SQ_MIN_STEP_NS)
		step_ns = SQ_MIN_STEP_NS;
	step_ns -= step_ns % SEC;
	grid0 = q->from_ns - q->from_ns % step_ns;
	npoints = (q->until_ns - grid0 + step_ns - 1) / step_ns;
	if (npoints > SQ_MAX_POINTS)
		return ap_errf(err, errlen, -EINVAL,
			       "series: %" PRIu64 " points of %" PRIu64 " s; at most %d: use a "
			       "larger step",
			       npoints, (uint64_t)(step_ns / SEC), SQ_MAX_POINTS);
	out->step_ns = step_ns;
	out->npoints = (size_t)npoints;
	out->points = calloc(npoints, sizeof(*out->points));
	if (!out->points) {
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint64_t i = 0; i < npoints; i++)
		out->points[i].ts_ns = grid0 + i * step_ns;
	ret = vis_from(s, q->from_ns, &vis, err, errlen);
	if (!ret)
		ret = pick(s, q, SRC_DAYS, vis.b, &filt, &exact, &v, &nv, err, errlen);
	if (!ret) {
		nv = keep_with_samples(v, nv);
		ret = rep_keys(v, nv, &reps, &nreps);
		if (!ret && nv)
			ret = plan_select(s, &pl, filt.b, exact, v, nv);
		if (ret)
			ap_errf(err, errlen, ret, "out of memory");
	}
	if (!ret && nv) {
		/* a rollup serves only when its buckets do not straddle points */
		bool ok;

		pl.ts = true;
		ok = !plan_vis(s, &pl, vis.b) &&
		     plan_range(s, &segs, &pl, q->from_ns, q->until_ns,
				(step_ns % CH_MIN_NS ? 0 : 1u << CH_RES_M1) |
				    (step_ns % CH_HOUR_NS ? 0 : 1u << CH_RES_H1) |
				    (step_ns % CH_DAY_NS ? 0 : 1u << CH_RES_D1));
		ch_buf_printf(&sql, CH_SQL_TIMELINE, (unsigned long long)grid0,
			      (unsigned long long)step_ns, pl.sums, segs.b, pl.join.b);
		ret = !ok || sql.oom ? ap_errf(err, errlen, -ENOMEM, "out of memory")
				     : ch_http_exec(s->http, sql.b, NULL, 0, CH_QUERY_SETTINGS, &ans,
						    err, errlen);
	}
	if (!ret && ans.n) {
		struct ch_mrow *pts = NULL;
		size_t npts = 0;

		/* a row of a series that appeared after the pick is left out (late), as a merge
		 * counts it; a series has no place for that count */
		ret = ch_parse_mrows(ans.b, ans.n, reps, nreps, npoints, &pts, &npts, &late, err,
				     errlen);
		if (!ret && (ret = lineup_present(v, nv, pts, npts, NULL, &pl)))
			ap_errf(err, errlen, ret, "out of memory");
		for (size_t i = 0; !ret && i < npts; i++) {
			const struct group *g = &pl.g[pts[i].g - 1];

			for (uint32_t k = 0; k < g->nv; k++) {
				uint64_t *d;

				if (g->map[k] < 0)
					continue;
				d = &out->points[pts[i].key].values[g->map[k]];
				*d = *d + pts[i].v[k] < *d ? UINT64_MAX : *d + pts[i].v[k];
			}
		}
		free(pts);
	}
	if (ret)
		goto out;
	mode = ap_selector_mode(q->sel);
	out->mode = strdup(mode ? mode : pl.l.mode ? pl.l.mode : "");
	out->nvalues = pl.l.n;
	for (size_t i = 0; i < pl.l.n; i++) {
		size_t n = strlen(pl.l.type[i]) + strlen(pl.l.unit[i]) + 2;

		out->value_types[i] = malloc(n);
		if (out->value_types[i])
			snprintf(out->value_types[i], n, "%s/%s", pl.l.type[i], pl.l.unit[i]);
		else
			ret = -ENOMEM;
	}
	if (!out->mode || ret)
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
out:
	ch_series_free(v, nv);
	plan_free(&pl);
	free(reps);
	ch_buf_free(&vis);
	ch_buf_free(&filt);
	ch_buf_free(&segs);
	ch_buf_free(&sql);
	ch_buf_free(&ans);
	if (ret)
		ap_store_series_free(out);
	return ret;
}

/* ---- labels, modes ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum what { NAMES, VALUES, MODES };

static int collect(struct ch_store *s, const struct ap_store_query *q, enum what what,
		   const char *name, struct ap_store_strings *out, char *err, size_t errlen)
{
	struct ch_buf vis = {0}, filt = {0};
	struct ch_series *v = NULL;
	size_t nv = 0, cap = 0;
	bool exact;
	int ret;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		*err = 0;
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	ret = ch_vis(s, &vis, NULL, err, errlen);
	if (!ret)
		ret =
		    pick(s, q, SRC_SAMPLES | SRC_ROWS, vis.b, &filt, &exact, &v, &nv, err, errlen);
	for (size_t i = 0; i < nv && !ret; i++) {
		for (size_t k = 0; k < v[i].nlabels && !ret; k++) {
			const char *str;

			if (what == MODES)
				str = k ? NULL : v[i].mode;
			else if (what == NAMES)
				str = v[i].labels[k].name;
			else
				str =
				    strcmp(v[i].labels[k].name, name) ? NULL : v[i].labels[k].value;
			if (!str)
				continue;
			if (ap_grow_array((void **)&out->v, &cap, out->n + 1, sizeof(*out->v)) ||
			    !(out->v[out->n] = strdup(str)))
				ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
			else
				out->n++;
		}
	}
	if (!ret && out->n) { /* sorted, unique */
		size_t k = 1;

		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
		for (size_t i = 1; i < out->n; i++) {
			if (strcmp(out->v[i], out->v[k - 1]))
				out->v[k++] = out->v[i];
			else
				free(out->v[i]);
		}
		out->n = k;
	}
	ch_series_free(v, nv);
	ch_buf_free(&vis);
	ch_buf_free(&filt);
	if (ret)
		ap_store_strings_free(out);
	return ret;
}

int ch_label_names(struct ap_store *st, const struct ap_store_query *q,
		   struct ap_store_strings *out, char *err, size_t errlen)
{
	return collect(ch_of(st), q, NAMES, NULL, out, err, errlen);
}

int ch_label_values(struct ap_store *st, const char *name, const struct ap_store_query *q,
		    struct ap_store_strings *out, char *err, size_t errlen)
{
	if (!name || !*name) {
		memset(out, 0, sizeof(*out));
		return ap_errf(err, errlen, -EINVAL, "label values: no label name");
	}
	return collect(ch_of(st), q, VALUES, name, out, err, errlen);
}

int ch_modes(struct ap_store *st, const struct ap_store_query *q, struct ap_store_strings *out,
	     char *err, size_t errlen)
{
	return collect(ch_of(st), q, MODES, NULL, out, err, errlen);
}

/* ---- table rows ---- */

int ch_rows(struct ap_store *st, const struct ap_store_query *q, struct ap_store_rows *out,
	    char *err, size_t errlen)
{
	struct ch_store *s = ch_of(st);
	struct ch_buf vis = {0}, filt = {0}, sel = {0}, ids = {0}, ans = {0};
	struct ch_series *v = NULL;
	size_t nv = 0;
	bool exact = true;
	int ret;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		*err = 0;
	ret = sq_check_range(q, err, errlen);
	if (ret)
		return ret;
	ret = ch_vis(s, &vis, NULL, err, errlen);
	if (!ret)
		ret = pick(s, q, SRC_ROWS, vis.b, &filt, &exact, &v, &nv, err, errlen);
	if (!ret && nv) {
		ch_buf_printf(&sel, CH_SQL_SEL_SERIES, s->db, filt.b);
		if (!exact) { /* the series a regex matcher kept */
			id_list(v, nv, &ids);
			ch_buf_printf(&sel, CH_SQL_SEL_IDS, ids.b);
		}
	}
	if (!ret && nv)
		ret = sel.oom || ids.oom
			  ? ap_errf(err, errlen, -ENOMEM, "out of memory")
			  : ch_exec_fmt(s, &ans, err, errlen, CH_SQL_ROWS_GET, s->db, sel.b,
					(unsigned long long)(q->from_ns / SEC),
					(unsigned long long)(q->until_ns / SEC),
					(unsigned long long)q->from_ns,
					(unsigned long long)q->until_ns, vis.b);
	if (!ret && ans.n)
		ret = ch_parse_trows(ans.b, ans.n, out, err, errlen);
	ch_series_free(v, nv);
	ch_buf_free(&vis);
	ch_buf_free(&filt);
	ch_buf_free(&sel);
	ch_buf_free(&ids);
	ch_buf_free(&ans);
	if (ret)
		ap_store_rows_free(out);
	return ret;
}
