// SPDX-License-Identifier: MIT
/*
 * The flat pprof decoder (pprof_flat.h): the aggregator's ingest reads every push with it.
 * The model reader (pprof_read.c) unpacks the whole message with protobuf-c (an allocation per
 * sample, location, line and label) and then interns everything into a struct ap_profile;
 * for a push that is thrown away after the store has hashed it again, that was most of the
 * aggregator's CPU. Here the protobuf bytes are walked in place: one pass records where each
 * table's entries are, then each table is read once into arrays that the context keeps from
 * one push to the next.
 *
 * The checks and their messages are the model reader's: ids nonzero and unique, every
 * reference resolvable, every string index in range, no negative values, the depth and
 * total-frame limits. What protobuf-c refuses (a truncated field, a known field with the
 * wrong wire type, a group) is refused here too.
 */
#include "pprof_flat.h"

#include "lib/errbuf.h"
#include "pprof_internal.h"

#define fail(...) ap_errf(c->err, c->errlen, -EINVAL, __VA_ARGS__)

/* protobuf wire types */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct span {
	const uint8_t *p;
	size_t n;
};

/* id -> index of one table: a direct array when the ids are dense (the usual 1..n), else the
 * sorted (id, index) pairs */
struct idpair {
	uint64_t id;
	uint32_t idx;
};

struct idmap {
	struct idpair *pairs;
	size_t n, cap;
	uint32_t *dense; /* index + 1 by id; 0 = absent */
	size_t dcap;
	uint64_t max;
	bool sorted;
};

struct ap_flat_ctx {
	uint8_t *raw;
	size_t rawcap;
	struct span *tab[6]; /* by Profile field number 1..5 (0 unused) */
	size_t ntab[6], captab[6];
	struct span *str;
	size_t capstr;
	uint64_t *comments;
	size_t ncomments, capcomments;
	char *arena;
	size_t caparena;
	const char **strs;
	uint32_t *slen;
	size_t capstrs, capslen;
	struct idmap maps, funcs, locs;
	uint32_t *map_module; /* string index of the mapping's base name */
	uint8_t *map_kind;
	size_t capmm, capmk;
	uint32_t *fn_name, *fn_file;
	size_t capfn, capff;
	struct ap_flat_frame *frames;
	size_t capframes;
	uint32_t *loc_frames;
	size_t caplf;
	uint32_t *loc_refs;
	size_t caprefs;
	struct ap_flat_sample *samples;
	size_t capsamples;
	struct ap_flat_label *labels;
	size_t caplabels;
	size_t nframes, nrefs, nlabels;
	struct ap_flat_profile p;
	size_t rawlen;
	char *err;
	size_t errlen;
};

/* ---- protobuf wire format ---- */

static bool pb_varint(struct span *b, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned s = 0; s < 70 && b->n; s += 7) {
		uint8_t x = *b->p++;

		b->n--;
		r |= (uint64_t)(x & 0x7f) << s;
		if (!(x & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* The next field's number and wire type; false at the end (*ok false: malformed). */
static bool pb_next(struct span *b, uint32_t *field, uint32_t *wt, bool *ok)
{
	uint64_t k;

	*ok = true;
	if (!b->n)
		return false;
	if (!pb_varint(b, &k) || (k >> 3) == 0 || (k >> 3) > UINT32_MAX) {
		*ok = false;
		return false;
	}
	*field = (uint32_t)(k >> 3);
	*wt = (uint32_t)(k & 7);
	return true;
}

static bool pb_len(struct span *b, struct span *out)
{
	uint64_t n;

	if (!pb_varint(b, &n) || n > b->n)
		return false;
	out->p = b->p;
	out->n = (size_t)n;
	b->p += n;
	b->n -= (size_t)n;
	return true;
}

static bool pb_skip(struct span *b, uint32_t wt)
{
	struct span s;
	uint64_t v;
	size_t n;

	switch (wt) {
	case WT_VARINT:
		return pb_varint(b, &v);
	case WT_LEN:
		return pb_len(b, &s);
	case WT_I64:
	case WT_I32:
		n = wt == WT_I64 ? 8 : 4;
		if (b->n < n)
			return false;
		b->p += n;
		b->n -= n;
		return true;
	default: /* groups: protobuf-c does not take them either */
		return false;
	}
}

/* A varint field (wire type checked). */
static bool pb_u64(struct span *b, uint32_t wt, uint64_t *v)
{
	return wt == WT_VARINT && pb_varint(b, v);
}

/* One element or a packed run of a repeated varint field: fn(ctx, value) for each. */
static bool pb_repeated(struct span *b, uint32_t wt, bool (*fn)(void *, uint64_t), void *ctx)
{
	struct span s;
	uint64_t v;

	if (wt == WT_VARINT)
		return pb_varint(b, &v) && fn(ctx, v);
	if (wt != WT_LEN || !pb_len(b, &s))
		return false;
	while (s.n)
		if (!pb_varint(&s, &v) || !fn(ctx, v))
			return false;
	return true;
}

static int malformed(struct ap_flat_ctx *c, const char *what)
{
	return fail("pprof: %zu bytes are not a valid profile.proto message (protobuf decoding "
		    "failed in %s)",
		    c->rawlen, what);
}

/* ---- id maps ---- */

static int idmap_add(struct idmap *m, uint64_t id, uint32_t idx)
{
	if (ap_grow_array((void **)&m->pairs, &m->cap, m->n + 1, sizeof(*m->pairs)))
		return -ENOMEM;
	m->pairs[m->n++] = (struct idpair){ id, idx };
	if (id > m->max)
		m->max = id;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct idpair *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Index the pairs added; *dup = a duplicate id (returns -EEXIST). */
static int idmap_build(struct idmap *m, uint64_t *dup)
{
	m->sorted = false;
	if (m->max <= 4 * (uint64_t)m->n + 64) {
		if (ap_grow_array((void **)&m->dense, &m->dcap, (size_t)m->max + 1, sizeof(uint32_t)))
			return -ENOMEM;
		memset(m->dense, 0, ((size_t)m->max + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < m->n; i++) {
			if (m->dense[m->pairs[i].id]) {
				*dup = m->pairs[i].id;
				return -EEXIST;
			}
			m->dense[m->pairs[i].id] = m->pairs[i].idx + 1;
		}
		return 0;
	}
	qsort(m->pairs, m->n, sizeof(*m->pairs), cmp_pair);
	for (size_t i = 1; i < m->n; i++)
		if (m->pairs[i].id == m->pairs[i - 1].id) {
			*dup = m->pairs[i].id;
			return -EEXIST;
		}
	m->sorted = true;
	return 0;
}

static bool idmap_get(const struct idmap *m, uint64_t id, uint32_t *idx)
{
	size_t lo = 0, hi = m->n;

	if (!m->sorted) {
		if (id > m->max || !m->dense[id])
			return false;
		*idx = m->dense[id] - 1;
		return true;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->pairs[mid].id == id) {
			*idx = m->pairs[mid].idx;
			return true;
		}
		if (m->pairs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void idmap_reset(struct idmap *m)
{
	m->n = 0;
	m->max = 0;
	m->sorted = false;
}

/* ---- the context ---- */

struct ap_flat_ctx *ap_flat_ctx_new(void)
{
	return calloc(1, sizeof(struct ap_flat_ctx));
}

static void ctx_release(struct ap_flat_ctx *c)
{
	free(c->raw);
	for (int i = 0; i < 6; i++)
		free(c->tab[i]);
	free(c->str);
	free(c->comments);
	free(c->arena);
	free(c->strs);
	free(c->slen);
	free(c->maps.pairs);
	free(c->maps.dense);
	free(c->funcs.pairs);
	free(c->funcs.dense);
	free(c->locs.pairs);
	free(c->locs.dense);
	free(c->map_module);
	free(c->map_kind);
	free(c->fn_name);
	free(c->fn_file);
	free(c->frames);
	free(c->loc_frames);
	free(c->loc_refs);
	free(c->samples);
	free(c->labels);
}

void ap_flat_ctx_free(struct ap_flat_ctx *c)
{
	if (!c)
		return;
	ctx_release(c);
	free(c);
}

void ap_flat_ctx_trim(struct ap_flat_ctx *c)
{
	size_t bytes;

	if (!c)
		return;
	bytes = c->rawcap + c->caparena + c->capstr * sizeof(struct span) +
		(c->capstrs + c->capslen) * sizeof(void *) +
		c->capframes * sizeof(*c->frames) + c->caprefs * sizeof(uint32_t) +
		c->capsamples * sizeof(*c->samples) + c->caplabels * sizeof(*c->labels) +
		(c->maps.dcap + c->funcs.dcap + c->locs.dcap) * sizeof(uint32_t) +
		(c->maps.cap + c->funcs.cap + c->locs.cap) * sizeof(struct idpair);
	for (int i = 1; i < 6; i++)
		bytes += c->captab[i] * sizeof(struct span);
	if (bytes <= AP_FLAT_KEEP_BYTES)
		return;
	ctx_release(c);
	memset(c, 0, sizeof(*c));
}

/* ---- strings ---- */

static bool str_ok(const struct ap_flat_ctx *c, uint64_t idx)
{
	return idx < c->ntab[0]; /* ntab[0]: the pprof string count (extras come after) */
}

/* Append an extra string (not in the pprof table): returns its index or UINT32_MAX. */
static uint32_t str_extra(struct ap_flat_ctx *c, const char *s, size_t n)
{
	size_t i = c->p.nstrs;

	if (i >= UINT32_MAX ||
	    ap_grow_array((void **)&c->strs, &c->capstrs, i + 1, sizeof(*c->strs)) ||
	    ap_grow_array((void **)&c->slen, &c->capslen, i + 1, sizeof(*c->slen)))
		return UINT32_MAX;
	c->strs[i] = s;
	c->slen[i] = (uint32_t)n;
	c->p.nstrs++;
	return (uint32_t)i;
}

static int read_strings(struct ap_flat_ctx *c)
{
	size_t n = c->ntab[0], bytes = 0;
	char *o;

	if (!n)
		return fail("pprof: string table does not start with \"\"");
	for (size_t i = 0; i < n; i++)
		bytes += c->str[i].n + 1;
	if (n >= UINT32_MAX || ap_grow_array((void **)&c->arena, &c->caparena, bytes, 1) ||
	    ap_grow_array((void **)&c->strs, &c->capstrs, n + 64, sizeof(*c->strs)) ||
	    ap_grow_array((void **)&c->slen, &c->capslen, n + 64, sizeof(*c->slen)))
		return -ENOMEM;
	o = c->arena;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *s = c->str[i].p;
		const uint8_t *z = memchr(s, 0, c->str[i].n);
		size_t l = z ? (size_t)(z - s) : c->str[i].n;

		if (l > UINT32_MAX - 1)
			return fail("pprof: a string of %zu bytes", l);
		memcpy(o, s, l);
		o[l] = '\0';
		c->strs[i] = o;
		c->slen[i] = (uint32_t)l;
		o += l + 1;
	}
	if (c->slen[0])
		return fail("pprof: string table does not start with \"\"");
	c->p.strs = c->strs;
	c->p.slen = c->slen;
	c->p.nstrs = n;
	return 0;
}

/* ---- header ---- */

struct vt {
	uint64_t type, unit;
};

static bool read_vt(struct span s, struct vt *v)
{
	uint32_t f, wt;
	bool ok;

	while (pb_next(&s, &f, &wt, &ok)) {
		if (f == 1 || f == 2) {
			if (!pb_u64(&s, wt, f == 1 ? &v->type : &v->unit))
				return false;
		} else if (!pb_skip(&s, wt)) {
			return false;
		}
	}
	return ok;
}

struct header {
	uint64_t drop, keep, time, duration, period, dflt;
	bool has_pt;
	struct vt pt;
};

static int read_header(struct ap_flat_ctx *c, const struct header *h)
{
	struct ap_flat_profile *p = &c->p;
	size_t nst = c->ntab[1];

	if (nst > AP_MAX_VALUES)
		return fail("pprof: %zu sample types, at most %d supported", nst, AP_MAX_VALUES);
	p->nvalues = nst;
	p->default_value = nst ? nst - 1 : 0;
	for (size_t i = 0; i < nst; i++) {
		struct vt v = { 0 };

		if (!read_vt(c->tab[1][i], &v))
			return malformed(c, "sample_type");
		if (!str_ok(c, v.type) || !str_ok(c, v.unit))
			return fail("pprof: sample_type %zu: string index out of range", i);
		p->vtype[i] = (uint32_t)v.type;
		p->vunit[i] = (uint32_t)v.unit;
	}
	if (h->has_pt && (!str_ok(c, h->pt.type) || !str_ok(c, h->pt.unit)))
		return fail("pprof: period_type: string index out of range");
	if (!str_ok(c, h->drop) || !str_ok(c, h->keep) || !str_ok(c, h->dflt))
		return fail("pprof: string index out of range in the header");
	if ((int64_t)h->period < 0 || (int64_t)h->time < 0 || (int64_t)h->duration < 0)
		return fail("pprof: negative period, time or duration");
	for (size_t i = 0; h->dflt && i < nst; i++)
		if (p->vtype[i] == h->dflt) {
			p->default_value = i;
			break;
		}
	p->period_type = h->has_pt ? (uint32_t)h->pt.type : 0;
	p->period_unit = h->has_pt ? (uint32_t)h->pt.unit : 0;
	p->period = h->period;
	for (size_t i = 0; i < c->ncomments; i++)
		if (!str_ok(c, c->comments[i]))
			return fail("pprof: comment %zu: string index out of range", i);
	return 0;
}

/* ---- mappings, functions ---- */

static int dup_or(struct ap_flat_ctx *c, int err, const char *what, uint64_t id)
{
	if (err == -EEXIST)
		return fail("pprof: duplicate %s id %llu", what, (unsigned long long)id);
	return err;
}

static int read_mappings(struct ap_flat_ctx *c)
{
	size_t n = c->ntab[3];
	uint64_t dup = 0;
	int err;

	idmap_reset(&c->maps);
	if (ap_grow_array((void **)&c->map_module, &c->capmm, n + 1, sizeof(uint32_t)) ||
	    ap_grow_array((void **)&c->map_kind, &c->capmk, n + 1, 1))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct span s = c->tab[3][i];
		uint64_t id = 0, start = 0, limit = 0, file = 0, build = 0, v;
		uint32_t f, wt;
		const char *name, *base;
		bool ok;

		while (pb_next(&s, &f, &wt, &ok)) {
			uint64_t *dst = f == 1 ? &id : f == 2 ? &start : f == 3 ? &limit
					: f == 5 ? &file : f == 6 ? &build : f <= 10 ? &v : NULL;

			if (dst ? !pb_u64(&s, wt, dst) : !pb_skip(&s, wt))
				return malformed(c, "mapping");
		}
		if (!ok)
			return malformed(c, "mapping");
		if (!id)
			return fail("pprof: mapping %zu has id 0", i);
		if (!str_ok(c, file) || !str_ok(c, build))
			return fail("pprof: mapping %llu: string index out of range",
				    (unsigned long long)id);
		if ((err = idmap_add(&c->maps, id, (uint32_t)i)))
			return err;
		name = c->strs[file];
		base = strrchr(name, '/');
		if (base && base[1]) {
			c->map_module[i] = str_extra(c, base + 1, c->slen[file] - (size_t)(base + 1 - name));
			if (c->map_module[i] == UINT32_MAX)
				return -ENOMEM;
		} else {
			c->map_module[i] = (uint32_t)file;
		}
		c->map_kind[i] = ap_pprof_kernel_mapping(name, start, limit) ? AP_FRAME_KERNEL
									   : AP_FRAME_USER;
	}
	err = idmap_build(&c->maps, &dup);
	return err ? dup_or(c, err, "mapping", dup) : 0;
}

static int read_functions(struct ap_flat_ctx *c, uint32_t unknown)
{
	size_t n = c->ntab[5];
	uint64_t dup = 0;
	int err;

	idmap_reset(&c->funcs);
	if (ap_grow_array((void **)&c->fn_name, &c->capfn, n + 1, sizeof(uint32_t)) ||
	    ap_grow_array((void **)&c->fn_file, &c->capff, n + 1, sizeof(uint32_t)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct span s = c->tab[5][i];
		uint64_t id = 0, name = 0, sys = 0, file = 0, v;
		uint32_t f, wt;
		bool ok;

		while (pb_next(&s, &f, &wt, &ok)) {
			uint64_t *dst = f == 1 ? &id : f == 2 ? &name : f == 3 ? &sys
					: f == 4 ? &file : f == 5 ? &v : NULL;

			if (dst ? !pb_u64(&s, wt, dst) : !pb_skip(&s, wt))
				return malformed(c, "function");
		}
		if (!ok)
			return malformed(c, "function");
		if (!id)
			return fail("pprof: function %zu has id 0", i);
		if (!str_ok(c, name) || !str_ok(c, sys) || !str_ok(c, file))
			return fail("pprof: function %llu: string index out of range",
				    (unsigned long long)id);
		if ((err = idmap_add(&c->funcs, id, (uint32_t)i)))
			return err;
		name = c->slen[name] ? name : sys;
		c->fn_name[i] = c->slen[name] ? (uint32_t)name : unknown;
		c->fn_file[i] = (uint32_t)file;
	}
	err = idmap_build(&c->funcs, &dup);
	return err ? dup_or(c, err, "function", dup) : 0;
}

/* ---- locations ---- */

static int read_locations(struct ap_flat_ctx *c, uint32_t unknown)
{
	size_t n = c->ntab[4];
	uint64_t dup = 0;
	int err;

	idmap_reset(&c->locs);
	c->nframes = 0;
	if (ap_grow_array((void **)&c->loc_frames, &c->caplf, n + 1, sizeof(uint32_t)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct span s = c->tab[4][i], ln;
		uint64_t id = 0, mapping = 0, v;
		uint32_t f, wt, mi = 0, module = 0, first = (uint32_t)c->nframes;
		uint8_t kind = AP_FRAME_USER;
		bool ok;

		/* the scalars first: a Line may come before the mapping id */
		while (pb_next(&s, &f, &wt, &ok)) {
			uint64_t *dst = f == 1 ? &id : f == 2 ? &mapping : f == 3 || f == 5 ? &v
											   : NULL;

			if (dst ? !pb_u64(&s, wt, dst) : !pb_skip(&s, wt))
				return malformed(c, "location");
			if (f == 4 && wt != WT_LEN)
				return malformed(c, "location");
		}
		if (!ok)
			return malformed(c, "location");
		if (!id)
			return fail("pprof: location %zu has id 0", i);
		if ((err = idmap_add(&c->locs, id, (uint32_t)i)))
			return err;
		if (mapping) {
			if (!idmap_get(&c->maps, mapping, &mi))
				return fail("pprof: location %llu: mapping id %llu does not exist",
					    (unsigned long long)id, (unsigned long long)mapping);
			module = c->map_module[mi];
			kind = c->map_kind[mi];
		}
		c->loc_frames[i] = first;
		s = c->tab[4][i];
		while (pb_next(&s, &f, &wt, &ok)) {
			uint64_t fid = 0, line = 0;
			struct ap_flat_frame *fr;
			uint32_t lf, lwt, fi;
			bool lok;

			if (f != 4) {
				pb_skip(&s, wt);
				continue;
			}
			pb_len(&s, &ln);
			while (pb_next(&ln, &lf, &lwt, &lok)) {
				uint64_t *dst = lf == 1 ? &fid : lf == 2 ? &line : lf == 3 ? &v : NULL;

				if (dst ? !pb_u64(&ln, lwt, dst) : !pb_skip(&ln, lwt))
					return malformed(c, "line");
			}
			if (!lok)
				return malformed(c, "line");
			if (c->nframes >= UINT32_MAX - 1 ||
			    ap_grow_array((void **)&c->frames, &c->capframes, c->nframes + 1,
					  sizeof(*c->frames)))
				return -ENOMEM;
			fr = &c->frames[c->nframes++];
			fr->name = unknown;
			fr->file = 0;
			if (fid) {
				if (!idmap_get(&c->funcs, fid, &fi))
					return fail("pprof: location %llu: function id %llu does not "
						    "exist",
						    (unsigned long long)id, (unsigned long long)fid);
				fr->name = c->fn_name[fi];
				fr->file = c->fn_file[fi];
			}
			fr->line = (int64_t)line > 0 && line <= UINT32_MAX ? (uint32_t)line : 0;
			fr->module = module;
			fr->kind = kind;
			fr->flags = AP_FRAME_INLINED;
		}
		if (c->nframes == first) { /* no Line: one "[unknown]" frame */
			if (ap_grow_array((void **)&c->frames, &c->capframes, c->nframes + 1,
					  sizeof(*c->frames)))
				return -ENOMEM;
			c->frames[c->nframes++] = (struct ap_flat_frame){
				.name = unknown, .module = module, .kind = kind
			};
		}
		c->frames[c->nframes - 1].flags = 0; /* the physical frame: the last Line */
	}
	c->loc_frames[n] = (uint32_t)c->nframes;
	err = idmap_build(&c->locs, &dup);
	return err ? dup_or(c, err, "location", dup) : 0;
}

/* ---- samples ---- */

struct srd {
	struct ap_flat_ctx *c;
	struct ap_flat_sample *s;
	size_t si, nvals, depth;
	int64_t bad; /* a negative value */
	uint64_t bad_loc;
	bool has_bad, missing, too_deep, nomem;
};

static bool add_value(void *ctx, uint64_t v)
{
	struct srd *r = ctx;

	if (r->nvals < AP_MAX_VALUES)
		r->s->values[r->nvals] = v;
	if ((int64_t)v < 0 && !r->has_bad) {
		r->has_bad = true;
		r->bad = (int64_t)v;
	}
	r->nvals++;
	return true;
}

static bool add_loc(void *ctx, uint64_t id)
{
	struct srd *r = ctx;
	struct ap_flat_ctx *c = r->c;
	uint32_t li;

	if (r->missing || r->too_deep)
		return true;
	if (!idmap_get(&c->locs, id, &li)) {
		r->missing = true;
		r->bad_loc = id;
		return true;
	}
	r->depth += c->loc_frames[li + 1] - c->loc_frames[li];
	if (r->depth > PPROF_MAX_DEPTH) {
		r->too_deep = true;
		return true;
	}
	if (ap_grow_array((void **)&c->loc_refs, &c->caprefs, c->nrefs + 1, sizeof(uint32_t))) {
		r->nomem = true;
		return false;
	}
	c->loc_refs[c->nrefs++] = li;
	r->s->nlocs++;
	return true;
}

static int cmp_label(const void *a, const void *b)
{
	const struct ap_flat_label *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static int read_label(struct ap_flat_ctx *c, struct srd *r, struct span ln)
{
	uint64_t key = 0, str = 0, num = 0, unit = 0;
	struct ap_flat_sample *s = r->s;
	const char *k;
	uint32_t f, wt;
	bool ok;

	while (pb_next(&ln, &f, &wt, &ok)) {
		uint64_t *dst = f == 1 ? &key : f == 2 ? &str : f == 3 ? &num : f == 4 ? &unit
											: NULL;

		if (dst ? !pb_u64(&ln, wt, dst) : !pb_skip(&ln, wt))
			return malformed(c, "label");
	}
	if (!ok)
		return malformed(c, "label");
	if (!str_ok(c, key) || !str_ok(c, str) || !str_ok(c, unit))
		return fail("pprof: sample %zu: label string index out of range", r->si);
	k = c->strs[key];
	if (!str && (!strcmp(k, "pid") || !strcmp(k, "tid"))) {
		if ((int64_t)num < 0 || num > UINT32_MAX)
			return fail("pprof: sample %zu: bad %s %lld", r->si, k, (long long)num);
		if (k[0] == 'p')
			s->pid = (uint32_t)num;
		else
			s->tid = (uint32_t)num;
		return 0;
	}
	if (str && !strcmp(k, "comm")) {
		s->comm = (uint32_t)str;
		return 0;
	}
	if (s->nlabels == AP_MAX_LABELS) {
		c->p.labels_dropped++;
		return 0;
	}
	/* a key twice: keep the first (pprof_read.c says why) */
	for (uint32_t i = 0; i < s->nlabels; i++)
		if (!strcmp(c->strs[c->labels[s->labels + i].key], k)) {
			c->p.labels_dropped++;
			return 0;
		}
	if (ap_grow_array((void **)&c->labels, &c->caplabels, c->nlabels + 1, sizeof(*c->labels)))
		return -ENOMEM;
	c->labels[c->nlabels++] = (struct ap_flat_label){ (uint32_t)key, (uint32_t)str,
							  (int64_t)num };
	s->nlabels++;
	return 0;
}

static int read_samples(struct ap_flat_ctx *c)
{
	size_t n = c->ntab[2];
	uint64_t total = 0;
	int err;

	c->nrefs = 0;
	c->nlabels = 0;
	if (ap_grow_array((void **)&c->samples, &c->capsamples, n + 1, sizeof(*c->samples)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct ap_flat_sample *s = &c->samples[i];
		struct srd r = { .c = c, .s = s, .si = i };
		struct span b = c->tab[2][i], ln;
		uint32_t f, wt;
		bool ok;

		memset(s, 0, sizeof(*s));
		s->locs = (uint32_t)c->nrefs;
		s->labels = (uint32_t)c->nlabels;
		while (pb_next(&b, &f, &wt, &ok)) {
			bool good;

			if (f == 1)
				good = pb_repeated(&b, wt, add_loc, &r);
			else if (f == 2)
				good = pb_repeated(&b, wt, add_value, &r);
			else if (f == 3) {
				if (wt != WT_LEN || !pb_len(&b, &ln))
					return malformed(c, "sample");
				if ((err = read_label(c, &r, ln)))
					return err;
				good = true;
			} else
				good = pb_skip(&b, wt);
			if (!good)
				return r.nomem ? -ENOMEM : malformed(c, "sample");
		}
		if (!ok)
			return malformed(c, "sample");
		if (r.nvals != c->p.nvalues)
			return fail("pprof: sample %zu has %zu values, sample_type has %zu", i,
				    r.nvals, c->p.nvalues);
		if (r.has_bad)
			return fail("pprof: sample %zu: negative value %lld", i, (long long)r.bad);
		if (r.missing)
			return fail("pprof: sample %zu: location id %llu does not exist", i,
				    (unsigned long long)r.bad_loc);
		if (r.too_deep)
			return fail("pprof: sample %zu: stack deeper than %d frames", i,
				    PPROF_MAX_DEPTH);
		total += r.depth;
		if (total > PPROF_MAX_TOTAL_FRAMES)
			return fail("pprof: samples expand to more than %llu frames",
				    (unsigned long long)PPROF_MAX_TOTAL_FRAMES);
		if (s->nlabels > 1)
			qsort(&c->labels[s->labels], s->nlabels, sizeof(*c->labels), cmp_label);
	}
	c->p.samples = c->samples;
	c->p.nsamples = n;
	return 0;
}

/* ---- the top level ---- */

static bool add_comment(void *ctx, uint64_t v)
{
	struct ap_flat_ctx *c = ctx;

	if (ap_grow_array((void **)&c->comments, &c->capcomments, c->ncomments + 1,
			  sizeof(uint64_t)))
		return false;
	c->comments[c->ncomments++] = v;
	return true;
}

static int scan(struct ap_flat_ctx *c, struct span b, struct header *h)
{
	uint32_t f, wt;
	bool ok;

	memset(c->ntab, 0, sizeof(c->ntab));
	c->ncomments = 0;
	while (pb_next(&b, &f, &wt, &ok)) {
		struct span s;
		struct span **tab;
		size_t *cap, ti;
		bool good = true;

		switch (f) {
		case 1: case 2: case 3: case 4: case 5: case 6:
			if (wt != WT_LEN || !pb_len(&b, &s))
				return malformed(c, "a table");
			/* string_table goes in slot 0 */
			ti = f == 6 ? 0 : f;
			tab = ti ? &c->tab[ti] : &c->str;
			cap = ti ? &c->captab[ti] : &c->capstr;
			if (ap_grow_array((void **)tab, cap, c->ntab[ti] + 1, sizeof(struct span)))
				return -ENOMEM;
			(*tab)[c->ntab[ti]++] = s;
			break;
		case 7: good = pb_u64(&b, wt, &h->drop); break;
		case 8: good = pb_u64(&b, wt, &h->keep); break;
		case 9: good = pb_u64(&b, wt, &h->time); break;
		case 10: good = pb_u64(&b, wt, &h->duration); break;
		case 11:
			/* a message field given twice is merged, as protobuf does */
			good = wt == WT_LEN && pb_len(&b, &s) && read_vt(s, &h->pt);
			h->has_pt = true;
			break;
		case 12: good = pb_u64(&b, wt, &h->period); break;
		case 13:
			good = pb_repeated(&b, wt, add_comment, c);
			if (!good && c->ncomments + 1 > c->capcomments)
				return -ENOMEM;
			break;
		case 14: good = pb_u64(&b, wt, &h->dflt); break;
		default: good = pb_skip(&b, wt); break;
		}
		if (!good)
			return malformed(c, "the header");
	}
	return ok ? 0 : malformed(c, "a field key");
}

int ap_pprof_flat_decode(struct ap_flat_ctx *c, const void *buf, size_t len,
			 uint64_t max_inflated, const struct ap_flat_profile **out, char *err,
			 size_t errlen)
{
	const uint8_t *b = buf;
	struct header h = { 0 };
	struct span all;
	uint32_t unknown;
	size_t rawlen = len;
	int ret;

	*out = NULL;
	c->err = err;
	c->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	memset(&c->p, 0, sizeof(c->p));
	if (!buf || !len)
		return fail("pprof: empty input");
	if (!max_inflated)
		max_inflated = PPROF_MAX_DECOMPRESSED;
	if (max_inflated > SIZE_MAX / 2)
		max_inflated = SIZE_MAX / 2;
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
		ret = ap_pprof_gunzip(b, len, max_inflated, &c->raw, &c->rawcap, &rawlen, err,
				      errlen);
		if (ret)
			return ret;
		b = c->raw;
	} else if (len > max_inflated) {
		char a[32];

		ap_errf(err, errlen, -EFBIG,
			"pprof: %zu bytes of protobuf, over the %s limit; refusing (raise with "
			"aperture report --max-size)",
			len, ap_format_size(max_inflated, a, sizeof(a)));
		return -EFBIG;
	}
	c->rawlen = rawlen;
	all = (struct span){ b, rawlen };
	if ((ret = scan(c, all, &h)) || (ret = read_strings(c)))
		goto out;
	unknown = str_extra(c, PPROF_UNKNOWN, strlen(PPROF_UNKNOWN));
	if (unknown == UINT32_MAX) {
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = read_header(c, &h)) || (ret = read_mappings(c)) ||
	    (ret = read_functions(c, unknown)) || (ret = read_locations(c, unknown)) ||
	    (ret = read_samples(c)))
		goto out;
	/* the extra strings may have moved the arrays */
	c->p.strs = c->strs;
	c->p.slen = c->slen;
	c->p.frames = c->frames;
	c->p.loc_frames = c->loc_frames;
	c->p.nlocs = c->ntab[4];
	c->p.loc_refs = c->loc_refs;
	c->p.labels = c->labels;
	*out = &c->p;
out:
	if (ret == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "pprof: out of memory");
	return ret;
}

uint64_t ap_flat_total(const struct ap_flat_profile *p, size_t i)
{
	uint64_t t = 0;

	for (size_t k = 0; i < p->nvalues && k < p->nsamples; k++)
		t = t + p->samples[k].values[i] < t ? UINT64_MAX : t + p->samples[k].values[i];
	return t;
}

int ap_flat_value_index(const struct ap_flat_profile *p, const char *type)
{
	for (size_t i = 0; i < p->nvalues; i++)
		if (!strcmp(p->strs[p->vtype[i]], type))
			return (int)i;
	return -1;
}
