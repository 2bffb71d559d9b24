// SPDX-License-Identifier: MIT
/*
 * Continuous mode's profiles: the empty profile a collector goes on with after handing out an
 * interval, and the copy of an interval's profile that carries per-process labels (cgroup:
 * container_id, unit) for the push.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "interval.h"

static int copy_shape(struct ap_profile *dst, const struct ap_profile *src)
{
	const struct ap_value_type *pt = ap_profile_period_type(src);

	for (size_t i = 0; i < ap_profile_nvalues(src); i++) {
		const struct ap_value_type *vt = ap_profile_value_type(src, i);

		if (ap_profile_add_value_type(dst, ap_profile_str(src, vt->type),
					      ap_profile_str(src, vt->unit)))
			return -ENOMEM;
	}
	if (pt && pt->type)
		ap_profile_set_period(dst, ap_profile_str(src, pt->type),
				      ap_profile_str(src, pt->unit), ap_profile_period(src));
	ap_profile_set_default_value(dst, ap_profile_default_value(src));
	for (size_t i = 0; i < ap_profile_nmeta(src); i++) {
		const char *k, *v;

		ap_profile_meta(src, i, &k, &v);
		if (ap_profile_set_meta(dst, k, v))
			return -ENOMEM;
	}
	return 0;
}

struct ap_profile *ap_interval_fresh_profile(const struct ap_profile *p)
{
	struct ap_profile *np = ap_profile_new();

	if (np && copy_shape(np, p)) {
		ap_profile_free(np);
		errno = ENOMEM;
		return NULL;
	}
	return np;
}

/* Old ids to new ones, filled as they are met. */
struct relabel {
	const struct ap_profile *src;
	struct ap_profile *dst;
	uint32_t *strs, *maps, *frames, *stacks;
};

static uint32_t str_id(struct relabel *r, uint32_t id)
{
	if (id == 0)
		return 0;
	if (r->strs[id] == UINT32_MAX)
		r->strs[id] = ap_profile_intern(r->dst, ap_profile_str(r->src, id));
	return r->strs[id];
}

static uint32_t map_id(struct relabel *r, uint32_t id)
{
	struct ap_mapping m;

	if (id == 0 || id >= ap_profile_nmappings(r->src))
		return 0;
	if (r->maps[id] != UINT32_MAX)
		return r->maps[id];
	m = *ap_profile_mapping(r->src, id);
	m.file = str_id(r, m.file);
	m.build_id = str_id(r, m.build_id);
	if (m.file == UINT32_MAX || m.build_id == UINT32_MAX)
		return UINT32_MAX;
	return r->maps[id] = ap_profile_add_mapping(r->dst, &m);
}

static uint32_t frame_id(struct relabel *r, uint32_t id)
{
	struct ap_frame f;

	if (r->frames[id] != UINT32_MAX)
		return r->frames[id];
	f = *ap_profile_frame(r->src, id);
	f.name = str_id(r, f.name);
	f.module = str_id(r, f.module);
	f.file = str_id(r, f.file);
	f.mapping = map_id(r, f.mapping);
	if (f.name == UINT32_MAX || f.module == UINT32_MAX || f.file == UINT32_MAX ||
	    f.mapping == UINT32_MAX)
		return UINT32_MAX;
	return r->frames[id] = ap_profile_add_frame(r->dst, &f);
}

static uint32_t stack_id(struct relabel *r, uint32_t id, uint32_t *buf)
{
	const uint32_t *fr;
	size_t n;

	if (r->stacks[id] != UINT32_MAX)
		return r->stacks[id];
	fr = ap_profile_stack(r->src, id, &n);
	for (size_t i = 0; i < n; i++) {
		buf[i] = frame_id(r, fr[i]);
		if (buf[i] == UINT32_MAX)
			return UINT32_MAX;
	}
	return r->stacks[id] = ap_profile_add_stack(r->dst, buf, n);
}

/* The sample's own labels and the extra ones of its process, as one set of dst. */
static uint32_t labels_id(struct relabel *r, uint32_t id, const struct ap_interval_label *extra,
			  size_t nextra)
{
	struct ap_label ls[AP_MAX_LABELS];
	const struct ap_label *old;
	size_t n = 0, nold = 0;

	old = id ? ap_profile_labels(r->src, id, &nold) : NULL;
	for (size_t i = 0; i < nold && n < AP_MAX_LABELS; i++) {
		ls[n] = old[i];
		ls[n].key = str_id(r, old[i].key);
		ls[n].str = str_id(r, old[i].str);
		ls[n].num_unit = str_id(r, old[i].num_unit);
		if (ls[n].key == UINT32_MAX || ls[n].str == UINT32_MAX ||
		    ls[n].num_unit == UINT32_MAX)
			return UINT32_MAX;
		n++;
	}
	for (size_t i = 0; i < nextra && n < AP_MAX_LABELS; i++) {
		memset(&ls[n], 0, sizeof(ls[n]));
		ls[n].key = ap_profile_intern(r->dst, extra[i].key);
		ls[n].str = ap_profile_intern(r->dst, extra[i].value);
		if (ls[n].key == UINT32_MAX || ls[n].str == UINT32_MAX)
			return UINT32_MAX;
		n++;
	}
	return n ? ap_profile_add_labels(r->dst, ls, n) : 0;
}

static int copy_samples(struct relabel *r, ap_interval_labeler fn, void *ctx)
{
	uint32_t *buf = NULL;
	size_t maxdepth = 0;
	int err = 0;

	for (size_t i = 0; i < ap_profile_nstacks(r->src); i++) {
		size_t n;

		ap_profile_stack(r->src, (uint32_t)i, &n);
		if (n > maxdepth)
			maxdepth = n;
	}
	buf = malloc((maxdepth ? maxdepth : 1) * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; !err && i < ap_profile_nsamples(r->src); i++) {
		struct ap_sample s = *ap_profile_sample(r->src, i);
		struct ap_interval_label extra[AP_INTERVAL_MAX_EXTRA];
		size_t nextra = fn ? fn(ctx, s.pid, extra, AP_INTERVAL_MAX_EXTRA) : 0;

		s.stack = stack_id(r, s.stack, buf);
		s.comm = str_id(r, s.comm);
		s.labels = labels_id(r, s.labels, extra, nextra);
		if (s.stack == UINT32_MAX || s.comm == UINT32_MAX || s.labels == UINT32_MAX)
			err = -ENOMEM;
		else
			err = ap_profile_add_sample(r->dst, &s);
	}
	free(buf);
	return err;
}

static uint32_t *ids(size_t n)
{
	uint32_t *a = malloc((n ? n : 1) * sizeof(*a));

	if (a)
		memset(a, 0xff, (n ? n : 1) * sizeof(*a));
	return a;
}

struct ap_profile *ap_interval_relabel(const struct ap_profile *p, ap_interval_labeler fn,
				       void *ctx)
{
	struct relabel r = {.src = p};
	int err = -ENOMEM;

	r.dst = ap_profile_new();
	r.strs = ids(ap_profile_nstrings(p));
	r.maps = ids(ap_profile_nmappings(p));
	r.frames = ids(ap_profile_nframes(p));
	r.stacks = ids(ap_profile_nstacks(p));
	if (r.dst && r.strs && r.maps && r.frames && r.stacks && !copy_shape(r.dst, p))
		err = copy_samples(&r, fn, ctx);
	for (size_t i = 0; !err && i < ap_profile_nstats(p); i++) {
		const struct ap_stat *st = ap_profile_stat(p, i);

		err = ap_profile_set_stat(r.dst, st->name, st->value);
	}
	if (!err)
		ap_profile_set_time(r.dst, ap_profile_start_ns(p), ap_profile_duration_ns(p));
	free(r.strs);
	free(r.maps);
	free(r.frames);
	free(r.stacks);
	if (err) {
		ap_profile_free(r.dst);
		errno = -err;
		return NULL;
	}
	return r.dst;
}
