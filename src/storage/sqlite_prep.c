// SPDX-License-Identifier: MIT
/*
 * A push turned into a job for the writer thread, in the caller's thread (the HTTP server's
 * pool), so that checks, hashing and the series of each sample cost the writer nothing:
 * - every limit of storage.h is checked here, with the reason;
 * - a sample's series = the push's labels + pid + comm + the sample's own labels; a sample label
 *   whose name the push already has keeps the push's value (counted: label_conflicts);
 * - samples whose values are all zero are not stored.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/grow.h"
#include "lib/hash.h"
#include "lib/label_name.h"
#include "sqlite_job.h"

#define SQ_MAX_FRAME_STR (64 * 1024)

static bool name_ok(const char *s)
{
	return s && ap_label_name_valid(s, strlen(s), SIZE_MAX);
}

static bool push_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= AP_STORE_MAX_PUSH_ID ||
		    !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
			return false;
	return n > 0;
}

/* A label set being built: names and values point to the caller's strings or to `own`. */
struct lset {
	struct ap_label_kv kv[AP_STORE_MAX_LABELS];
	size_t n;
	char own[AP_STORE_MAX_LABELS][AP_STORE_MAX_LABEL_NAME + 1];
};

static int lset_find(const struct lset *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->kv[i].name, name))
			return (int)i;
	return -1;
}

/* Add a sample's label. Returns 0, 1 (kept the existing, different value) or -EINVAL. */
static int lset_add(struct lset *l, const char *name, const char *value, char *err,
		    size_t errlen)
{
	int at = lset_find(l, name);

	if (at >= 0) /* the same value twice (pid as a field and a label) is no conflict */
		return strcmp(l->kv[at].value, value) != 0;
	if (l->n >= AP_STORE_MAX_LABELS)
		return ap_errf(err, errlen, -EINVAL,
			       "too many labels: a sample's series would have more than %d (push "
			       "labels + pid + comm + the sample's own)",
			       AP_STORE_MAX_LABELS);
	if (strlen(value) > AP_STORE_MAX_LABEL_VALUE)
		return ap_errf(err, errlen, -EINVAL,
			       "label %s: value longer than %d bytes", name,
			       AP_STORE_MAX_LABEL_VALUE);
	if (!name_ok(name)) {
		/* a sample label from a foreign client: keep it under a valid name */
		size_t i = 0;
		char *o = l->own[l->n];

		for (; name[i] && i < AP_STORE_MAX_LABEL_NAME; i++) {
			char c = name[i];

			o[i] = (i ? ap_label_name_char(c) : ap_label_name_start(c)) ? c : '_';
		}
		o[i] = 0;
		if (!i || lset_find(l, o) >= 0)
			return 1;
		name = o;
	}
	l->kv[l->n].name = name;
	l->kv[l->n].value = value;
	l->n++;
	return 0;
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct ap_label_kv *)a)->name, ((const struct ap_label_kv *)b)->name);
}

static int lset_encode(struct lset *l, struct sq_buf *b)
{
	int ret = 0;

	qsort(l->kv, l->n, sizeof(l->kv[0]), cmp_kv);
	for (size_t i = 0; i < l->n && !ret; i++)
		ret = sq_buf_str(b, l->kv[i].name) ?: sq_buf_str(b, l->kv[i].value);
	return ret;
}

/* A sample's own labels as (name, value) pairs; numbers formatted into num. */
struct xlabels {
	const char *name[AP_MAX_LABELS], *value[AP_MAX_LABELS];
	char num[AP_MAX_LABELS][24];
	size_t n;
};

static void xlabels_add(struct xlabels *x, const char *name, const char *str, int64_t num)
{
	if (x->n >= AP_MAX_LABELS)
		return; /* cannot be: both profiles hold at most AP_MAX_LABELS */
	x->name[x->n] = name;
	if (str) {
		x->value[x->n] = str;
	} else {
		snprintf(x->num[x->n], sizeof(x->num[0]), "%" PRId64, num);
		x->value[x->n] = x->num[x->n];
	}
	x->n++;
}

/* A new job series: the push's labels + pid + comm + the sample's own labels. */
static int series_new(struct sq_job *j, const struct lset *base, uint32_t pid, const char *comm,
		      const struct xlabels *x, uint32_t *out, char *err, size_t errlen)
{
	struct pj_series *s;
	struct lset *l;
	char pidbuf[16];
	int ret;

	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	memcpy(l->kv, base->kv, base->n * sizeof(base->kv[0]));
	l->n = base->n;
	ret = 0;
	if (pid) {
		snprintf(pidbuf, sizeof(pidbuf), "%" PRIu32, pid);
		ret = lset_add(l, "pid", pidbuf, err, errlen);
	}
	if (ret >= 0 && comm && *comm)
		ret = lset_add(l, "comm", comm, err, errlen);
	if (ret > 0)
		j->label_conflicts++;
	for (size_t i = 0; x && i < x->n && ret >= 0; i++) {
		ret = lset_add(l, x->name[i], x->value[i], err, errlen);
		if (ret > 0)
			j->label_conflicts++;
	}
	if (ret < 0)
		goto out;
	ret = ap_grow_array((void **)&j->series, &j->capseries, j->nseries + 1, sizeof(*j->series));
	if (ret)
		goto out;
	s = &j->series[j->nseries];
	memset(s, 0, sizeof(*s));
	ret = lset_encode(l, &s->blob);
	if (ret) {
		free(s->blob.b);
		goto out;
	}
	s->hash = sq_series_hash(s->blob.b, s->blob.n, j->vtypes.b, j->vtypes.n);
	*out = (uint32_t)j->nseries++;
out:
	free(l);
	return ret < 0 ? ret : 0;
}

/* The job series of (pid, comm, labels) of profile p (NULL for table rows). */
static int series_of(struct sq_job *j, const struct lset *base, const struct ap_profile *p,
		     uint32_t pid, const char *comm, uint32_t comm_id, uint32_t labels_id,
		     struct sq_map *cache, uint32_t *out, char *err, size_t errlen)
{
	uint64_t key = ap_hash_mix64(((uint64_t)pid << 32 | comm_id) ^
				     ap_hash_mix64((uint64_t)labels_id + 1)) | 1;
	uint32_t *slot = sq_map_get(cache, key);
	struct xlabels x = { .n = 0 };
	struct pj_series *s;
	bool ins;
	int ret;

	if (slot) {
		s = &j->series[*slot];
		if (s->pid == pid && s->comm == comm_id && s->labels == labels_id && p) {
			*out = *slot;
			return 0;
		}
	}
	if (p && labels_id) {
		size_t n;
		const struct ap_label *lab = ap_profile_labels(p, labels_id, &n);

		for (size_t i = 0; i < n; i++)
			xlabels_add(&x, ap_profile_str(p, lab[i].key),
				    lab[i].str ? ap_profile_str(p, lab[i].str) : NULL, lab[i].num);
	}
	ret = series_new(j, base, pid, comm, &x, out, err, errlen);
	if (ret)
		return ret;
	s = &j->series[*out];
	s->pid = pid;
	s->comm = comm_id;
	s->labels = labels_id;
	if (p) {
		slot = sq_map_put(cache, key, *out, &ins);
		if (slot && !ins)
			*slot = *out;
	}
	return 0;
}

/* Per-push lookup tables indexed by the profile's own ids. */
struct prep {
	const struct ap_profile *p;
	const struct ap_flat_profile *f; /* or this */
	uint64_t *shash;  /* string id -> sq_str_hash, 0 = not yet */
	uint32_t *fmap;	  /* frame id -> job frame + 1, 0 = not yet */
	uint32_t *smap;	  /* stack id -> job stack + 1, 0 = not yet */
	uint64_t *hbuf;	  /* frame hashes of one stack */
	uint32_t *jbuf;	  /* flat: job frames of one stack */
	size_t nstrings, nframes, nstacks, hcap, jcap;
	struct sq_map stacks; /* flat: stack hash | 1 -> job stack */
};

static int str_hash(struct prep *x, uint32_t id, uint64_t *out, char *err, size_t errlen)
{
	if (id >= x->nstrings)
		return ap_errf(err, errlen, -EINVAL, "string %u out of range", id);
	if (!x->shash[id]) {
		const char *s = x->f ? x->f->strs[id] : ap_profile_str(x->p, id);
		size_t n = x->f ? x->f->slen[id] : strlen(s);

		if (n > SQ_MAX_FRAME_STR)
			return ap_errf(err, errlen, -EINVAL,
				       "a frame's name, module or file is longer than %d bytes",
				       SQ_MAX_FRAME_STR);
		x->shash[id] = sq_str_hash(s, n);
	}
	*out = x->shash[id];
	return 0;
}

static int frame_of(struct sq_job *j, struct prep *x, uint32_t fid, uint32_t *out, char *err,
		    size_t errlen)
{
	const struct ap_frame *f;
	struct pj_frame *pf;
	uint64_t hn, hm, hf;
	int ret;

	if (fid >= x->nframes)
		return ap_errf(err, errlen, -EINVAL, "frame %u out of range", fid);
	if (x->fmap[fid]) {
		*out = x->fmap[fid] - 1;
		return 0;
	}
	f = ap_profile_frame(x->p, fid);
	ret = str_hash(x, f->name, &hn, err, errlen) ?: str_hash(x, f->module, &hm, err, errlen) ?:
	      str_hash(x, f->file, &hf, err, errlen);
	if (ret)
		return ret;
	if (ap_grow_array((void **)&j->frames, &j->capframes, j->nframes + 1, sizeof(*j->frames)))
		return -ENOMEM;
	pf = &j->frames[j->nframes];
	pf->name = ap_profile_str(x->p, f->name);
	pf->module = ap_profile_str(x->p, f->module);
	pf->file = ap_profile_str(x->p, f->file);
	pf->line = f->line;
	pf->kind = f->kind;
	pf->flags = f->flags & AP_FRAME_INLINED;
	pf->hash = sq_frame_hash2(hn, hm, hf, pf->line, pf->kind, pf->flags);
	*out = (uint32_t)j->nframes++;
	x->fmap[fid] = *out + 1;
	return 0;
}

static int stack_of(struct sq_job *j, struct prep *x, uint32_t sid, uint32_t *out, char *err,
		    size_t errlen)
{
	const uint32_t *fr;
	struct pj_stack *ps;
	size_t n;
	int ret;

	if (sid >= x->nstacks)
		return ap_errf(err, errlen, -EINVAL, "stack %u out of range", sid);
	if (x->smap[sid]) {
		*out = x->smap[sid] - 1;
		return 0;
	}
	fr = ap_profile_stack(x->p, sid, &n);
	if (ap_grow_array((void **)&j->stacks, &j->capstacks, j->nstacks + 1, sizeof(*j->stacks)) ||
	    ap_grow_array((void **)&j->stack_frames, &j->capsf, j->nsf + n, sizeof(uint32_t)) ||
	    ap_grow_array((void **)&x->hbuf, &x->hcap, n + 1, sizeof(uint64_t)))
		return -ENOMEM;
	ps = &j->stacks[j->nstacks];
	ps->first = (uint32_t)j->nsf;
	ps->n = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		uint32_t jf = 0;

		ret = frame_of(j, x, fr[i], &jf, err, errlen);
		if (ret)
			return ret;
		j->stack_frames[j->nsf++] = jf;
		x->hbuf[i] = j->frames[jf].hash;
	}
	ps->hash = sq_stack_hash(x->hbuf, n);
	*out = (uint32_t)j->nstacks++;
	x->smap[sid] = *out + 1;
	return 0;
}

/* ---- a flat profile (format/pprof_flat.h): the ingest's fast path ---- */

/* The job frame of flat frame fi. */
static int flat_frame_of(struct sq_job *j, struct prep *x, uint32_t fi, uint32_t *out, char *err,
			 size_t errlen)
{
	const struct ap_flat_frame *f = &x->f->frames[fi];
	struct pj_frame *pf;
	uint64_t hn, hm, hf;
	int ret;

	if (x->fmap[fi]) {
		*out = x->fmap[fi] - 1;
		return 0;
	}
	ret = str_hash(x, f->name, &hn, err, errlen) ?: str_hash(x, f->module, &hm, err, errlen) ?:
	      str_hash(x, f->file, &hf, err, errlen);
	if (ret)
		return ret;
	if (ap_grow_array((void **)&j->frames, &j->capframes, j->nframes + 1, sizeof(*j->frames)))
		return -ENOMEM;
	pf = &j->frames[j->nframes];
	pf->name = x->f->strs[f->name];
	pf->module = x->f->strs[f->module];
	pf->file = x->f->strs[f->file];
	pf->line = f->line;
	pf->kind = f->kind;
	pf->flags = f->flags & AP_FRAME_INLINED;
	pf->hash = sq_frame_hash2(hn, hm, hf, pf->line, pf->kind, pf->flags);
	*out = (uint32_t)j->nframes++;
	x->fmap[fi] = *out + 1;
	return 0;
}

/* The job stack of a flat sample: its locations' frames, found again by their hashes when an
 * earlier sample had the same (pprof has a sample per thread, so stacks repeat). */
static int flat_stack_of(struct sq_job *j, struct prep *x, const struct ap_flat_sample *smp,
			 uint32_t *out, char *err, size_t errlen)
{
	const struct ap_flat_profile *f = x->f;
	struct pj_stack *ps;
	uint32_t *slot;
	size_t n = 0;
	uint64_t h;
	bool ins;
	int ret;

	for (uint32_t k = 0; k < smp->nlocs; k++) {
		uint32_t li = f->loc_refs[smp->locs + k];
		uint32_t a = f->loc_frames[li], b = f->loc_frames[li + 1];

		if (ap_grow_array((void **)&x->hbuf, &x->hcap, n + (b - a) + 1, sizeof(uint64_t)) ||
		    ap_grow_array((void **)&x->jbuf, &x->jcap, n + (b - a) + 1, sizeof(uint32_t)))
			return -ENOMEM;
		for (uint32_t fi = a; fi < b; fi++, n++) {
			ret = flat_frame_of(j, x, fi, &x->jbuf[n], err, errlen);
			if (ret)
				return ret;
			x->hbuf[n] = j->frames[x->jbuf[n]].hash;
		}
	}
	h = sq_stack_hash(x->hbuf, n);
	slot = sq_map_get(&x->stacks, h | 1);
	if (slot) {
		const struct pj_stack *st = &j->stacks[*slot];
		size_t k = 0;

		if (st->n == n)
			while (k < n && j->frames[j->stack_frames[st->first + k]].hash == x->hbuf[k])
				k++;
		if (st->n == n && k == n) {
			*out = *slot;
			return 0;
		}
	}
	if (ap_grow_array((void **)&j->stacks, &j->capstacks, j->nstacks + 1, sizeof(*j->stacks)) ||
	    ap_grow_array((void **)&j->stack_frames, &j->capsf, j->nsf + n, sizeof(uint32_t)))
		return -ENOMEM;
	ps = &j->stacks[j->nstacks];
	ps->first = (uint32_t)j->nsf;
	ps->n = (uint32_t)n;
	ps->hash = h;
	memcpy(&j->stack_frames[j->nsf], x->jbuf, n * sizeof(uint32_t));
	j->nsf += n;
	*out = (uint32_t)j->nstacks++;
	slot = sq_map_put(&x->stacks, h | 1, *out, &ins);
	if (!slot)
		return -ENOMEM;
	*slot = *out; /* a collision: the newer one wins, either is correct */
	return 0;
}

/* The job series of a flat sample (pid, comm, labels), cached by their content. */
static int flat_series_of(struct sq_job *j, const struct lset *base,
			  const struct ap_flat_profile *f, const struct ap_flat_sample *smp,
			  struct sq_map *cache, uint32_t *out, char *err, size_t errlen)
{
	/* (no label array at all when no sample has labels) */
	const struct ap_flat_label *lab = smp->nlabels ? &f->labels[smp->labels] : NULL;
	uint64_t key = ap_hash_mix64(((uint64_t)smp->pid << 32 | smp->comm) ^
				     (lab ? ap_hash_bytes(lab, smp->nlabels * sizeof(*lab), 1) : 0)) |
		       1;
	uint32_t *slot = sq_map_get(cache, key);
	struct xlabels x = { .n = 0 };
	struct pj_series *s;
	bool ins;
	int ret;

	if (slot) {
		s = &j->series[*slot];
		if (s->pid == smp->pid && s->comm == smp->comm && s->nlabels == smp->nlabels &&
		    (!lab || !memcmp(&f->labels[s->labels], lab, smp->nlabels * sizeof(*lab)))) {
			*out = *slot;
			return 0;
		}
	}
	for (uint32_t i = 0; i < smp->nlabels; i++)
		xlabels_add(&x, f->strs[lab[i].key], lab[i].str ? f->strs[lab[i].str] : NULL,
			    lab[i].num);
	ret = series_new(j, base, smp->pid, f->strs[smp->comm], &x, out, err, errlen);
	if (ret)
		return ret;
	s = &j->series[*out];
	s->pid = smp->pid;
	s->comm = smp->comm;
	s->labels = smp->labels;
	s->nlabels = smp->nlabels;
	slot = sq_map_put(cache, key, *out, &ins);
	if (slot && !ins)
		*slot = *out;
	return 0;
}

static int prep_vtypes_flat(struct sq_job *j, const struct ap_flat_profile *f, char *err,
			    size_t errlen)
{
	int ret;

	j->nvalues = (uint32_t)f->nvalues;
	if (!j->nvalues && f->nsamples)
		return ap_errf(err, errlen, -EINVAL, "the profile has samples but no value types");
	if (j->nvalues > AP_MAX_VALUES)
		return ap_errf(err, errlen, -EINVAL, "the profile has more than %d value types",
			       AP_MAX_VALUES);
	j->period = f->period;
	ret = sq_buf_str(&j->vtypes, f->strs[f->period_type]) ?:
	      sq_buf_str(&j->vtypes, f->strs[f->period_unit]);
	for (uint32_t i = 0; i < j->nvalues && !ret; i++) {
		const char *t = f->strs[f->vtype[i]];

		if (!*t || strchr(t, '/') || strlen(t) > AP_STORE_MAX_LABEL_NAME)
			return ap_errf(err, errlen, -EINVAL,
				       "value type %u: its name must be 1 to %d bytes without '/'",
				       i, AP_STORE_MAX_LABEL_NAME);
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(t, f->strs[f->vtype[k]]))
				return ap_errf(err, errlen, -EINVAL, "value type %s given twice", t);
		ret = sq_buf_str(&j->vtypes, t) ?: sq_buf_str(&j->vtypes, f->strs[f->vunit[i]]);
	}
	return ret;
}

static int prep_flat(struct sq_job *j, const struct lset *base, struct prep *x,
		     struct sq_map *sercache, char *err, size_t errlen)
{
	const struct ap_flat_profile *f = x->f;
	size_t ns = f->nsamples;
	int ret;

	if (!ns)
		return 0;
	x->nstrings = f->nstrs;
	x->nframes = f->nlocs ? f->loc_frames[f->nlocs] : 0;
	x->shash = calloc(x->nstrings + 1, sizeof(*x->shash));
	x->fmap = calloc(x->nframes + 1, sizeof(*x->fmap));
	if (!x->shash || !x->fmap ||
	    ap_grow_array((void **)&j->entries, &j->capentries, ns, sizeof(*j->entries)))
		return -ENOMEM;
	for (size_t i = 0; i < ns; i++) {
		const struct ap_flat_sample *smp = &f->samples[i];
		struct pj_entry *e;
		bool zero = true;

		for (uint32_t v = 0; v < j->nvalues; v++)
			zero &= !smp->values[v];
		if (zero)
			continue;
		e = &j->entries[j->nentries];
		memset(e, 0, sizeof(*e));
		memcpy(e->v, smp->values, j->nvalues * sizeof(e->v[0]));
		ret = flat_series_of(j, base, f, smp, sercache, &e->series, err, errlen) ?:
		      flat_stack_of(j, x, smp, &e->stack, err, errlen);
		if (ret)
			return ret;
		j->nentries++;
	}
	return 0;
}

static int check_push(const struct ap_store_write *w, struct lset *base, char *err,
		      size_t errlen)
{
	bool mode = false;

	if (w->push_id && *w->push_id && !push_id_ok(w->push_id))
		return ap_errf(err, errlen, -EINVAL,
			       "push id: 1 to %d characters of [A-Za-z0-9_-] expected",
			       AP_STORE_MAX_PUSH_ID);
	if (w->until_ns < w->from_ns)
		return ap_errf(err, errlen, -EINVAL,
			       "time range: until (%" PRIu64 ") is before from (%" PRIu64 ")",
			       w->until_ns, w->from_ns);
	if (w->from_ns > (uint64_t)INT64_MAX)
		return ap_errf(err, errlen, -EINVAL, "time range: from (%" PRIu64 ") is too large",
			       w->from_ns);
	if (w->nlabels > AP_STORE_MAX_LABELS)
		return ap_errf(err, errlen, -EINVAL, "too many push labels: %zu (at most %d)",
			       w->nlabels, AP_STORE_MAX_LABELS);
	base->n = 0;
	for (size_t i = 0; i < w->nlabels; i++) {
		const char *n = w->labels[i].name, *v = w->labels[i].value ? w->labels[i].value : "";

		if (!name_ok(n) || strlen(n) > AP_STORE_MAX_LABEL_NAME)
			return ap_errf(err, errlen, -EINVAL,
				       "label name '%.64s': expected [A-Za-z_][A-Za-z0-9_.]*, at "
				       "most %d bytes",
				       n ? n : "", AP_STORE_MAX_LABEL_NAME);
		if (strlen(v) > AP_STORE_MAX_LABEL_VALUE)
			return ap_errf(err, errlen, -EINVAL,
				       "label %s: value longer than %d bytes", n,
				       AP_STORE_MAX_LABEL_VALUE);
		if (lset_find(base, n) >= 0)
			return ap_errf(err, errlen, -EINVAL, "label %s given twice", n);
		if (!strcmp(n, "mode")) {
			if (!*v)
				return ap_errf(err, errlen, -EINVAL, "label mode is empty");
			mode = true;
		}
		base->kv[base->n].name = n;
		base->kv[base->n].value = v;
		base->n++;
	}
	if (!mode)
		return ap_errf(err, errlen, -EINVAL,
			       "the push has no mode label (the profile type: cpu, lock, ...)");
	for (size_t i = 0; i < w->nrows; i++) {
		const struct ap_table_row *r = &w->rows[i];

		if (!r->table || !*r->table || !r->key || !*r->key ||
		    strlen(r->table) > AP_STORE_MAX_LABEL_VALUE ||
		    strlen(r->key) > AP_STORE_MAX_LABEL_VALUE)
			return ap_errf(err, errlen, -EINVAL,
				       "table row %zu: table and key must be 1 to %d bytes", i,
				       AP_STORE_MAX_LABEL_VALUE);
	}
	return 0;
}

static int prep_vtypes(struct sq_job *j, const struct ap_profile *p, char *err, size_t errlen)
{
	const struct ap_value_type *pt;
	int ret;

	j->nvalues = 0;
	if (!p)
		return sq_buf_str(&j->vtypes, "") ?: sq_buf_str(&j->vtypes, "");
	pt = ap_profile_period_type(p);
	j->nvalues = (uint32_t)ap_profile_nvalues(p);
	if (!j->nvalues && ap_profile_nsamples(p))
		return ap_errf(err, errlen, -EINVAL, "the profile has samples but no value types");
	if (j->nvalues > AP_MAX_VALUES)
		return ap_errf(err, errlen, -EINVAL, "the profile has more than %d value types",
			       AP_MAX_VALUES);
	j->period = ap_profile_period(p);
	ret = sq_buf_str(&j->vtypes, pt ? ap_profile_str(p, pt->type) : "") ?:
	      sq_buf_str(&j->vtypes, pt ? ap_profile_str(p, pt->unit) : "");
	for (uint32_t i = 0; i < j->nvalues && !ret; i++) {
		const struct ap_value_type *vt = ap_profile_value_type(p, i);
		const char *t = ap_profile_str(p, vt->type);

		if (!*t || strchr(t, '/') || strlen(t) > AP_STORE_MAX_LABEL_NAME)
			return ap_errf(err, errlen, -EINVAL,
				       "value type %u: its name must be 1 to %d bytes without '/'",
				       i, AP_STORE_MAX_LABEL_NAME);
		for (uint32_t k = 0; k < i; k++)
			if (!strcmp(t, ap_profile_str(p, ap_profile_value_type(p, k)->type)))
				return ap_errf(err, errlen, -EINVAL, "value type %s given twice", t);
		ret = sq_buf_str(&j->vtypes, t) ?:
		      sq_buf_str(&j->vtypes, ap_profile_str(p, vt->unit));
	}
	return ret;
}

int sq_job_prepare(struct sq_job *j, const struct ap_store_write *w, char *err, size_t errlen)
{
	struct sq_map sercache = { 0 };
	const struct ap_profile *p = w->profile;
	struct prep x = { .p = p };
	size_t ns;
	struct lset *base;
	int ret;

	memset(j, 0, sizeof(*j));
	j->kind = SQ_JOB_WRITE;
	base = malloc(sizeof(*base));
	if (!base)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	ret = check_push(w, base, err, errlen);
	if (ret)
		goto out;
	j->push_id = w->push_id && *w->push_id ? w->push_id : NULL;
	j->from_ns = w->from_ns;
	if (w->flat) {
		x.f = w->flat;
		ret = prep_vtypes_flat(j, w->flat, err, errlen) ?:
		      prep_flat(j, base, &x, &sercache, err, errlen);
		if (ret)
			goto out;
		p = NULL; /* the rows below */
	} else {
		ret = prep_vtypes(j, p, err, errlen);
		if (ret)
			goto out;
	}
	ns = p ? ap_profile_nsamples(p) : 0;
	if (ns) {
		x.nstrings = ap_profile_nstrings(p);
		x.nframes = ap_profile_nframes(p);
		x.nstacks = ap_profile_nstacks(p);
		x.shash = calloc(x.nstrings + 1, sizeof(*x.shash));
		x.fmap = calloc(x.nframes + 1, sizeof(*x.fmap));
		x.smap = calloc(x.nstacks + 1, sizeof(*x.smap));
		if (!x.shash || !x.fmap || !x.smap ||
		    ap_grow_array((void **)&j->entries, &j->capentries, ns, sizeof(*j->entries)) ||
		    ap_grow_array((void **)&j->frames, &j->capframes, x.nframes, sizeof(*j->frames)) ||
		    ap_grow_array((void **)&j->stacks, &j->capstacks, x.nstacks, sizeof(*j->stacks))) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < ns; i++) {
		const struct ap_sample *smp = ap_profile_sample(p, i);
		struct pj_entry *e;
		bool zero = true;

		for (uint32_t v = 0; v < j->nvalues; v++)
			zero &= !smp->values[v];
		if (zero)
			continue;
		ret = ap_grow_array((void **)&j->entries, &j->capentries, j->nentries + 1,
				    sizeof(*j->entries));
		if (ret)
			goto out;
		e = &j->entries[j->nentries];
		memset(e, 0, sizeof(*e));
		memcpy(e->v, smp->values, j->nvalues * sizeof(e->v[0]));
		ret = series_of(j, base, p, smp->pid, ap_profile_str(p, smp->comm), smp->comm,
				smp->labels, &sercache, &e->series, err, errlen) ?:
		      stack_of(j, &x, smp->stack, &e->stack, err, errlen);
		if (ret)
			goto out;
		j->nentries++;
	}
	if (w->nrows) {
		j->rows = calloc(w->nrows, sizeof(*j->rows));
		if (!j->rows) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < w->nrows; i++) {
			j->rows[i].r = &w->rows[i];
			ret = series_of(j, base, NULL, w->rows[i].pid, w->rows[i].comm, 0, 0,
					&sercache, &j->rows[i].series, err, errlen);
			if (ret)
				goto out;
		}
		j->nrows = w->nrows;
	}
out:
	if (ret == -ENOMEM)
		ap_errf(err, errlen, ret, "out of memory preparing the push");
	sq_map_free(&sercache);
	free(x.shash);
	free(x.fmap);
	free(x.smap);
	free(x.hbuf);
	free(x.jbuf);
	sq_map_free(&x.stacks);
	free(base);
	return ret;
}

void sq_job_release(struct sq_job *j)
{
	for (size_t i = 0; i < j->nseries; i++)
		free(j->series[i].blob.b);
	free(j->series);
	free(j->frames);
	free(j->stacks);
	free(j->stack_frames);
	free(j->vtypes.b);
	free(j->entries);
	free(j->rows);
	free(j->frame_ids);
	free(j->stack_ids);
	free(j->series_ids);
	memset(j, 0, sizeof(*j));
}
