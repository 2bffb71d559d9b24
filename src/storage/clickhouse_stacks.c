// SPDX-License-Identifier: MIT
/*
 * The ClickHouse backend's stacks and frames on the read side: fetched by id for the rows a
 * query returns, each missing one once, and cached (content-addressed ids: an entry is never
 * stale; the cache starts over past CACHE_MAX entries rather than grow without bound).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clickhouse_internal.h"
#include "clickhouse_sql.h"
#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"

#define CACHE_MAX 1000000 /* stacks + frames cached */

/* ---- cache of stacks and frames by id ---- */

struct centry {
	uint64_t id;
	bool is_frame;
	uint32_t n;		    /* stack: frames */
	uint64_t *frames;	    /* stack */
	char *name, *module, *file; /* frame (one allocation at name) */
	uint32_t line, kind, flags;
};

struct ch_cache {
	struct centry **slot; /* open addressing by id */
	size_t cap, n;
};

static void centry_free(struct centry *e)
{
	if (e) {
		free(e->frames);
		free(e->name);
		free(e);
	}
}

void ch_cache_free(struct ch_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		centry_free(c->slot[i]);
	free(c->slot);
	free(c);
}

static struct centry *cache_get(struct ch_cache *c, uint64_t id, bool frame)
{
	if (!c || !c->cap)
		return NULL;
	for (size_t i = ap_hash_mix64(id ^ frame) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
		struct centry *e = c->slot[i];

		if (!e)
			return NULL;
		if (e->id == id && e->is_frame == frame)
			return e;
	}
}

/* Takes e (frees it when it cannot be kept). */
static void cache_put(struct ch_store *s, struct centry *e)
{
	struct ch_cache *c = s->cache;

	if (!c && !(c = s->cache = calloc(1, sizeof(*c)))) {
		centry_free(e);
		return;
	}
	if (c->n >= CACHE_MAX) { /* start over rather than grow without bound */
		for (size_t i = 0; i < c->cap; i++) {
			centry_free(c->slot[i]);
			c->slot[i] = NULL;
		}
		c->n = 0;
	}
	if ((c->n + 1) * 2 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		struct centry **ns = calloc(ncap, sizeof(*ns));

		if (!ns) {
			centry_free(e);
			return;
		}
		for (size_t i = 0; i < c->cap; i++)
			if (c->slot[i]) {
				size_t k = ap_hash_mix64(c->slot[i]->id ^ c->slot[i]->is_frame) &
					   (ncap - 1);

				while (ns[k])
					k = (k + 1) & (ncap - 1);
				ns[k] = c->slot[i];
			}
		free(c->slot);
		c->slot = ns;
		c->cap = ncap;
	}
	for (size_t i = ap_hash_mix64(e->id ^ e->is_frame) & (c->cap - 1);;
	     i = (i + 1) & (c->cap - 1)) {
		if (!c->slot[i]) {
			c->slot[i] = e;
			c->n++;
			return;
		}
		if (c->slot[i]->id == e->id && c->slot[i]->is_frame == e->is_frame) {
			centry_free(e);
			return;
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Fetch the stacks (and their frames) of rows not in the cache. */
int ch_fetch_stacks(struct ch_store *s, const struct ch_mrow *r, size_t n, char *err, size_t errlen)
{
	struct ch_buf ids = {0}, fids = {0}, ans = {0};
	uint64_t *want = NULL; /* frame ids not cached: stacks share most frames, so many repeat */
	size_t nwant = 0, capwant = 0;
	struct ch_cur c;
	int ret = 0;

	pthread_mutex_lock(&s->clock_);
	for (size_t i = 0; i < n; i++)
		if (!cache_get(s->cache, r[i].key, false))
			ch_buf_printf(&ids, "%s%" PRIu64, ids.n ? "," : "", r[i].key);
	pthread_mutex_unlock(&s->clock_);
	if (ids.n)
		ret = ids.oom ? -ENOMEM
			      : ch_exec_fmt(s, &ans, err, errlen, CH_SQL_STACKS_GET, s->db, ids.b);
	c = ch_cur_of(&ans);
	while (!ret && ch_cur_more(&c)) {
		struct centry *e = calloc(1, sizeof(*e));
		size_t nf;

		if (!e) {
			ret = -ENOMEM;
			break;
		}
		e->id = ch_get_u64(&c);
		nf = ch_get_arr(&c, 65536);
		e->frames = calloc(nf ? nf : 1, sizeof(*e->frames));
		if (!e->frames) {
			centry_free(e);
			ret = -ENOMEM;
			break;
		}
		e->n = (uint32_t)nf;
		pthread_mutex_lock(&s->clock_);
		for (size_t k = 0; k < nf; k++) {
			e->frames[k] = ch_get_u64(&c);
			if (!c.bad && !cache_get(s->cache, e->frames[k], true)) {
				if (ap_grow_array((void **)&want, &capwant, nwant + 1,
						  sizeof(*want)))
					fids.oom = true;
				else
					want[nwant++] = e->frames[k];
			}
		}
		if (c.bad)
			centry_free(e);
		else
			cache_put(s, e);
		pthread_mutex_unlock(&s->clock_);
	}
	if (!ret && c.bad)
		ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (stacks)");
	/* each frame once: a cold 7-day query named 20 times more frames than it has */
	if (nwant)
		qsort(want, nwant, sizeof(*want), cmp_u64);
	for (size_t i = 0; i < nwant; i++)
		if (!i || want[i] != want[i - 1])
			ch_buf_printf(&fids, "%s%" PRIu64, fids.n ? "," : "", want[i]);
	free(want);
	if (!ret && fids.oom)
		ret = -ENOMEM;
	ans.n = 0;
	if (!ret && fids.n)
		ret = fids.oom
			  ? -ENOMEM
			  : ch_exec_fmt(s, &ans, err, errlen, CH_SQL_FRAMES_GET, s->db, fids.b);
	c = ch_cur_of(&ans);
	while (!ret && fids.n && ch_cur_more(&c)) {
		struct centry *e = calloc(1, sizeof(*e));
		const char *str[3];
		size_t len[3];

		if (!e) {
			ret = -ENOMEM;
			break;
		}
		e->is_frame = true;
		e->id = ch_get_u64(&c);
		for (int k = 0; k < 3; k++)
			str[k] = ch_get_str(&c, &len[k]);
		e->line = ch_get_u32(&c);
		e->kind = ch_get_u8(&c);
		e->flags = ch_get_u8(&c);
		if (c.bad) {
			free(e);
			break;
		}
		e->name = malloc(len[0] + len[1] + len[2] + 3);
		if (!e->name) {
			free(e);
			ret = -ENOMEM;
			break;
		}
		memcpy(e->name, str[0], len[0]);
		e->name[len[0]] = 0;
		e->module = e->name + len[0] + 1;
		memcpy(e->module, str[1], len[1]);
		e->module[len[1]] = 0;
		e->file = e->module + len[1] + 1;
		memcpy(e->file, str[2], len[2]);
		e->file[len[2]] = 0;
		pthread_mutex_lock(&s->clock_);
		cache_put(s, e);
		pthread_mutex_unlock(&s->clock_);
	}
	if (!ret && c.bad)
		ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (frames)");
	if (ret == -ENOMEM)
		ap_errf(err, errlen, ret, "out of memory reading stacks");
	ch_buf_free(&ids);
	ch_buf_free(&fids);
	ch_buf_free(&ans);
	return ret;
}

/* The profile's stack id of a stored stack, UINT32_MAX-1 when it is missing (cache lock held). */
uint32_t ch_profile_stack(struct ch_store *s, struct ap_profile *p, uint64_t id, bool *oom)
{
	struct centry *st = cache_get(s->cache, id, false);
	uint32_t ids[512], *fr = ids, out;

	if (!st)
		return UINT32_MAX - 1;
	ids[0] = 0; /* an empty stack passes the array unread (and gcc cannot tell) */
	if (st->n > 512 && !(fr = malloc(st->n * sizeof(*fr)))) {
		*oom = true;
		return UINT32_MAX;
	}
	for (uint32_t k = 0; k < st->n; k++) {
		struct centry *f = cache_get(s->cache, st->frames[k], true);

		if (!f) {
			if (fr != ids)
				free(fr);
			return UINT32_MAX - 1;
		}
		fr[k] = ap_profile_add_frame_text(p, f->name, f->module, f->file, f->line, f->kind,
						  f->flags);
		if (fr[k] == UINT32_MAX) {
			*oom = true;
			if (fr != ids)
				free(fr);
			return UINT32_MAX;
		}
	}
	out = ap_profile_add_stack(p, fr, st->n);
	if (out == UINT32_MAX)
		*oom = true;
	if (fr != ids)
		free(fr);
	return out;
}
