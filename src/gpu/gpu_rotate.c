// SPDX-License-Identifier: MIT
/*
 * Continuous mode: hand out the interval's tables and go on into a fresh profile. What is
 * still live moves along with the stacks it points at, copied into the fresh profile: live
 * allocations (their allocation stacks, for leaks found later), launches still waiting for
 * their kernel's activity record (so GPU time that arrives in the next interval is counted
 * there, on the launch's stack), and the threads' calls still waiting for their correlation.
 * Launch counts stay in the interval of the launch: every launch lands in exactly one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"

struct copier {
	const struct ap_profile *src;
	struct ap_profile *dst;
	uint32_t *strs, *maps, *frames, *stacks; /* old id -> new id; UINT32_MAX: not yet */
	size_t nstrs, nmaps, nframes, nstacks;
	int err;
};

static uint32_t copy_str(struct copier *c, uint32_t id)
{
	if (id == 0 || id >= c->nstrs)
		return 0;
	if (c->strs[id] == UINT32_MAX) {
		c->strs[id] = ap_profile_intern(c->dst, ap_profile_str(c->src, id));
		if (c->strs[id] == UINT32_MAX)
			c->err = -ENOMEM;
	}
	return c->strs[id];
}

static uint32_t copy_map(struct copier *c, uint32_t id)
{
	struct ap_mapping mp;

	if (id == 0 || id >= c->nmaps)
		return 0;
	if (c->maps[id] == UINT32_MAX) {
		mp = *ap_profile_mapping(c->src, id);
		mp.file = copy_str(c, mp.file);
		mp.build_id = copy_str(c, mp.build_id);
		c->maps[id] = ap_profile_add_mapping(c->dst, &mp);
		if (c->maps[id] == UINT32_MAX)
			c->err = -ENOMEM;
	}
	return c->maps[id];
}

static uint32_t copy_frame(struct copier *c, uint32_t id)
{
	struct ap_frame f;

	if (id >= c->nframes)
		return UINT32_MAX;
	if (c->frames[id] == UINT32_MAX) {
		f = *ap_profile_frame(c->src, id);
		f.name = copy_str(c, f.name);
		f.module = copy_str(c, f.module);
		f.file = copy_str(c, f.file);
		f.mapping = copy_map(c, f.mapping);
		c->frames[id] = ap_profile_add_frame(c->dst, &f);
		if (c->frames[id] == UINT32_MAX)
			c->err = -ENOMEM;
	}
	return c->frames[id];
}

static uint32_t copy_stack(struct copier *c, uint32_t id)
{
	const uint32_t *frames;
	uint32_t *v;
	size_t n;

	if (id >= c->nstacks)
		return UINT32_MAX;
	if (c->stacks[id] != UINT32_MAX)
		return c->stacks[id];
	frames = ap_profile_stack(c->src, id, &n);
	v = malloc((n + 1) * sizeof(*v));
	if (!v) {
		c->err = -ENOMEM;
		return UINT32_MAX;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = copy_frame(c, frames[i]);
	c->stacks[id] = c->err ? UINT32_MAX : ap_profile_add_stack(c->dst, v, n);
	if (c->stacks[id] == UINT32_MAX)
		c->err = -ENOMEM;
	free(v);
	return c->stacks[id];
}

/* Every stack or profile string the live state holds: pass 1 copies (assign false), pass 2
 * points the state at the copies. */
static void field(struct copier *c, uint32_t *f, bool str, bool assign)
{
	uint32_t v = str ? copy_str(c, *f) : copy_stack(c, *f);

	if (assign)
		*f = v;
}

static void launch_fields(struct copier *c, struct gpu_launch *l, bool assign)
{
	field(c, &l->cpu_stack, false, assign);
	if (l->kind == AP_GPU_CALL_LAUNCH)
		field(c, &l->sample_stack, false, assign);
	field(c, &l->comm, true, assign);
	if (assign)
		l->event = 0; /* the timeline starts over */
}

static bool carried(const struct gpu_corr *k)
{
	return !k->has_activity || k->state == GPU_CORR_PENDING;
}

static void visit(struct ap_gpu_model *m, struct copier *c, bool assign)
{
	for (size_t b = 0; b < m->procs.nbuckets; b++) {
		for (struct ap_hnode *n = m->procs.buckets[b]; n; n = n->next) {
			struct gpu_proc *pr = (struct gpu_proc *)n;

			for (size_t j = 0; j < pr->allocs.nbuckets; j++)
				for (struct ap_hnode *a = pr->allocs.buckets[j]; a; a = a->next)
					field(c, &((struct gpu_alloc *)a)->stack, false, assign);
		}
	}
	for (struct gpu_corr *k = m->oldest; k; k = k->newer) {
		if (!carried(k))
			continue;
		field(c, &k->stack, false, assign);
		if (k->state == GPU_CORR_JOINED)
			launch_fields(c, &k->l, assign);
	}
	for (size_t b = 0; b < m->threads.nbuckets; b++) {
		for (struct ap_hnode *n = m->threads.buckets[b]; n; n = n->next) {
			struct gpu_thread *t = (struct gpu_thread *)n;

			for (size_t i = 0; i < GPU_THREAD_RECENT; i++)
				if (t->recent[i].kind)
					launch_fields(c, &t->recent[i], assign);
		}
	}
}

static int tables_json(struct ap_gpu_model *m, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	int err;

	if (!f)
		return -errno;
	/* the mode and format let the aggregator tell this report from the other modes' */
	fputs("{\"mode\": \"gpu\", \"format\": \"aperture-gpu-report\", \"gpu\": ", f);
	gpu_write_tables(m, f, "");
	fputs("}\n", f);
	err = ferror(f) ? -EIO : 0;
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

static uint32_t *memo(size_t n)
{
	uint32_t *v = malloc((n ? n : 1) * sizeof(*v));

	if (v)
		memset(v, 0xff, (n ? n : 1) * sizeof(*v));
	return v;
}

int ap_gpu_model_rotate(struct ap_gpu_model *m, struct ap_profile *fresh, char **tables,
			size_t *tables_len)
{
	struct ap_profile *old;
	int old_vl, old_vg;
	uint32_t old_empty;
	struct copier c = { 0 };
	char *t = NULL;
	size_t tl = 0;
	int err;

	if (!m || !fresh || fresh == m->p || !tables || !tables_len)
		return -EINVAL;
	old = m->p;
	old_vl = m->vi_launch;
	old_vg = m->vi_gpu;
	old_empty = m->empty_stack;
	err = tables_json(m, &t, &tl);
	if (err)
		return err;
	c.src = old;
	c.dst = fresh;
	c.nstrs = ap_profile_nstrings(old);
	c.nmaps = ap_profile_nmappings(old);
	c.nframes = ap_profile_nframes(old);
	c.nstacks = ap_profile_nstacks(old);
	c.strs = memo(c.nstrs);
	c.maps = memo(c.nmaps);
	c.frames = memo(c.nframes);
	c.stacks = memo(c.nstacks);
	err = c.strs && c.maps && c.frames && c.stacks ? 0 : -ENOMEM;
	if (!err)
		err = gpu_setup_profile(m, fresh); /* the empty stack first: id 0 */
	if (!err) {
		visit(m, &c, false);
		err = c.err;
	}
	if (err) {
		m->p = old;
		m->vi_launch = old_vl;
		m->vi_gpu = old_vg;
		m->empty_stack = old_empty;
		free(t);
		goto out;
	}
	visit(m, &c, true);
	/* launches whose kernel record came are done; the others wait on in the new interval */
	for (struct gpu_corr *k = m->oldest, *next; k; k = next) {
		next = k->newer;
		if (!carried(k))
			gpu_corr_unlink(m, k);
		else
			m->st.correlations_carried++;
	}
	gpu_tables_reset(m);
	*tables = t;
	*tables_len = tl;
out:
	free(c.strs);
	free(c.maps);
	free(c.frames);
	free(c.stacks);
	return err;
}
