// SPDX-License-Identifier: MIT
/*
 * The display-name tree of one or two profiles, shared by the flamebearer JSON and the diff
 * writers (flame_internal.h). Each sample becomes a path of name ids (comm, then frames root
 * first); equal paths merge; sorted paths give the tree in one pass, as in svg.c: a node opens
 * where a path first differs from the previous one.
 */
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Interns `s` (taking ownership) with class cls; returns the id or UINT32_MAX (s freed). */
static uint32_t intern(struct ap_flame_set *s, char *str, uint8_t cls)
{
	uint64_t h = ap_hash_bytes(str, strlen(str), 0);

	for (size_t id = ap_hidx_first(&s->name_idx, h); id != AP_HIDX_NONE;
	     id = ap_hidx_next(&s->name_idx, id)) {
		if (strcmp(s->names[id], str) == 0) {
			free(str);
			return (uint32_t)id;
		}
	}
	if (grow((void **)&s->names, &s->names_cap, s->nnames + 1, sizeof(*s->names)) ||
	    grow((void **)&s->cls, &s->cls_cap, s->nnames + 1, sizeof(*s->cls)))
		goto fail;
	if (ap_hidx_add(&s->name_idx, s->nnames, h))
		goto fail;
	s->names[s->nnames] = str;
	s->cls[s->nnames] = cls;
	return (uint32_t)s->nnames++;
fail:
	free(str);
	return UINT32_MAX;
}

static uint8_t frame_class(const struct ap_profile *p, uint32_t id)
{
	const struct ap_frame *f = ap_profile_frame(p, id);
	const char *name = f ? ap_profile_str(p, f->name) : "";

	if (!*name || strcmp(name, "[unknown]") == 0)
		return AP_FLAME_UNKNOWN;
	return f->kind == AP_FRAME_KERNEL ? AP_FLAME_KERNEL : AP_FLAME_USER;
}

int ap_flame_set_add(struct ap_flame_set *s, const struct ap_profile *p, int vi, int side)
{
	size_t nframes = ap_profile_nframes(p), nstr = ap_profile_nstrings(p);
	size_t nsamples = ap_profile_nsamples(p);
	uint32_t *frame_name = NULL, *comm_name = NULL;
	uint32_t unknown;
	int err = -ENOMEM;

	frame_name = malloc((nframes ? nframes : 1) * sizeof(*frame_name));
	comm_name = malloc((nstr ? nstr : 1) * sizeof(*comm_name));
	if (!frame_name || !comm_name)
		goto out;
	for (size_t i = 0; i < nstr; i++)
		comm_name[i] = UINT32_MAX; /* interned on first use: most strings are no comm */
	for (size_t i = 0; i < nframes; i++) {
		char *d = ap_frame_display_dup(p, (uint32_t)i);

		if (!d)
			goto out;
		frame_name[i] = intern(s, d, frame_class(p, (uint32_t)i));
		if (frame_name[i] == UINT32_MAX)
			goto out;
	}
	{
		char *d = strdup("[unknown]");

		if (!d || (unknown = intern(s, d, AP_FLAME_UNKNOWN)) == UINT32_MAX)
			goto out;
	}
	{
		/* one allocation for the whole profile: growing by doubling would copy it */
		size_t need = s->pool_len, nst = s->nstacks;

		for (size_t i = 0; i < nsamples; i++) {
			const struct ap_sample *smp = ap_profile_sample(p, i);
			size_t n;

			if (!smp->values[vi])
				continue;
			ap_profile_stack(p, smp->stack, &n);
			need += n + 1;
			nst++;
		}
		if (grow((void **)&s->pool, &s->pool_cap, need, sizeof(*s->pool)) ||
		    grow((void **)&s->stacks, &s->stacks_cap, nst, sizeof(*s->stacks)))
			goto out;
	}
	for (size_t i = 0; i < nsamples; i++) {
		const struct ap_sample *smp = ap_profile_sample(p, i);
		uint64_t w = smp->values[vi];
		struct ap_flame_stack *st;
		const uint32_t *frames;
		uint32_t comm;
		size_t n;

		if (!w)
			continue;
		frames = ap_profile_stack(p, smp->stack, &n);
		if (smp->comm && smp->comm < nstr) {
			if (comm_name[smp->comm] == UINT32_MAX) {
				char *d = strdup(ap_profile_str(p, smp->comm));

				if (!d)
					goto out;
				comm_name[smp->comm] = intern(s, d, AP_FLAME_COMM);
				if (comm_name[smp->comm] == UINT32_MAX)
					goto out;
			}
			comm = comm_name[smp->comm];
		} else {
			comm = unknown; /* as folded and svg write a missing comm */
		}
		if (grow((void **)&s->pool, &s->pool_cap, s->pool_len + n + 1, sizeof(*s->pool)) ||
		    grow((void **)&s->stacks, &s->stacks_cap, s->nstacks + 1, sizeof(*s->stacks)))
			goto out;
		st = &s->stacks[s->nstacks++];
		*st = (struct ap_flame_stack){.off = s->pool_len};
		st->w[side] = w;
		s->pool[s->pool_len++] = comm;
		for (size_t j = n; j-- > 0;) /* leaf first in the model */
			s->pool[s->pool_len++] = frames[j] < nframes ? frame_name[frames[j]] : unknown;
		st->len = (uint32_t)(s->pool_len - st->off);
		s->total[side] = ap_sat_add(s->total[side], w);
	}
	err = 0;
out:
	free(frame_name);
	free(comm_name);
	return err;
}

static int path_cmp(const void *a, const void *b)
{
	const struct ap_flame_stack *x = a, *y = b;
	uint32_t n = x->len < y->len ? x->len : y->len;

	for (uint32_t i = 0; i < n; i++)
		if (x->ids[i] != y->ids[i])
			return x->ids[i] < y->ids[i] ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len;
}

struct name_ord {
	const char *s;
	uint32_t id;
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_ord *)a)->s, ((const struct name_ord *)b)->s);
}

int ap_flame_set_finish(struct ap_flame_set *s)
{
	struct name_ord *order = NULL;
	uint32_t *rank = NULL;
	char **names = NULL;
	uint8_t *cls = NULL;
	size_t n = 0;

	order = malloc((s->nnames ? s->nnames : 1) * sizeof(*order));
	rank = malloc((s->nnames ? s->nnames : 1) * sizeof(*rank));
	names = malloc((s->nnames ? s->nnames : 1) * sizeof(*names));
	cls = malloc(s->nnames ? s->nnames : 1);
	if (!order || !rank || !names || !cls) {
		free(order);
		free(rank);
		free(names);
		free(cls);
		return -ENOMEM;
	}
	/* alphabetical ids, so that sorting paths by id orders siblings by name */
	for (size_t i = 0; i < s->nnames; i++)
		order[i] = (struct name_ord){.s = s->names[i], .id = (uint32_t)i};
	if (s->nnames > 1) /* qsort(NULL, 0) is UB */
		qsort(order, s->nnames, sizeof(*order), name_cmp);
	for (size_t i = 0; i < s->nnames; i++) {
		rank[order[i].id] = (uint32_t)i;
		names[i] = s->names[order[i].id];
		cls[i] = s->cls[order[i].id];
	}
	free(s->names);
	free(s->cls);
	s->names = names;
	s->cls = cls;
	s->names_cap = s->cls_cap = s->nnames;
	ap_hidx_release(&s->name_idx); /* ids changed: no more interning */
	for (size_t i = 0; i < s->pool_len; i++)
		s->pool[i] = rank[s->pool[i]];
	free(order);
	free(rank);

	for (size_t i = 0; i < s->nstacks; i++)
		s->stacks[i].ids = s->pool + s->stacks[i].off;
	if (s->nstacks > 1)
		qsort(s->stacks, s->nstacks, sizeof(*s->stacks), path_cmp);
	/* samples that differ only in pid, tid or labels show the same path: merge them */
	for (size_t i = 0; i < s->nstacks;) {
		struct ap_flame_stack m = s->stacks[i];
		size_t j = i + 1;

		for (; j < s->nstacks && path_cmp(&s->stacks[j], &m) == 0; j++) {
			m.w[0] = ap_sat_add(m.w[0], s->stacks[j].w[0]);
			m.w[1] = ap_sat_add(m.w[1], s->stacks[j].w[1]);
		}
		s->stacks[n++] = m;
		i = j;
	}
	s->nstacks = n;
	s->finished = true;
	return 0;
}

struct rem_ent {
	uint64_t rem;
	size_t i;
};

static int rem_cmp(const void *a, const void *b)
{
	const struct rem_ent *x = a, *y = b;

	if (x->rem != y->rem)
		return x->rem > y->rem ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i; /* stable: path order */
}

int ap_flame_set_scale(struct ap_flame_set *s, int side, uint64_t target)
{
	uint64_t from = s->total[side], sum = 0;
	struct rem_ent *rems;
	size_t nrem = 0;

	if (!from || from == target)
		return 0;
	rems = malloc((s->nstacks ? s->nstacks : 1) * sizeof(*rems));
	if (!rems)
		return -ENOMEM;
	for (size_t i = 0; i < s->nstacks; i++) {
		unsigned __int128 x = (unsigned __int128)s->stacks[i].w[side] * target;

		if (!s->stacks[i].w[side])
			continue;
		s->stacks[i].w[side] = (uint64_t)(x / from);
		sum += s->stacks[i].w[side];
		rems[nrem++] = (struct rem_ent){.rem = (uint64_t)(x % from), .i = i};
	}
	if (nrem > 1)
		qsort(rems, nrem, sizeof(*rems), rem_cmp);
	/* the floors fall short by less than one unit per stack: hand those units to the
	 * largest remainders */
	for (size_t k = 0; k < nrem && sum < target; k++, sum++)
		s->stacks[rems[k].i].w[side]++;
	s->total[side] = sum;
	free(rems);
	return 0;
}

void ap_flame_set_release(struct ap_flame_set *s)
{
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	free(s->cls);
	ap_hidx_release(&s->name_idx);
	free(s->pool);
	free(s->stacks);
	memset(s, 0, sizeof(*s));
}

int ap_flame_tree_build(const struct ap_flame_set *s, struct ap_flame_tree *t)
{
	const struct ap_flame_stack *prev = NULL; /* the last path that opened nodes */
	size_t maxlen = 0, cap = 1;
	uint32_t *open;

	memset(t, 0, sizeof(*t));
	/* count the nodes first: the tree can be millions of them, allocate it once */
	for (size_t i = 0; i < s->nstacks; i++) {
		const struct ap_flame_stack *cur = &s->stacks[i];
		uint32_t common = 0;

		if (!cur->w[0] && !cur->w[1])
			continue;
		while (prev && common < prev->len && common < cur->len &&
		       prev->ids[common] == cur->ids[common])
			common++;
		cap += cur->len - common;
		if (cur->len > maxlen)
			maxlen = cur->len;
		prev = cur;
	}
	prev = NULL;
	t->nodes = malloc(cap * sizeof(*t->nodes));
	open = malloc((maxlen + 1) * sizeof(*open));
	if (!t->nodes || !open) {
		free(open);
		free(t->nodes);
		t->nodes = NULL;
		return -ENOMEM;
	}
	t->nodes[0] = (struct ap_flame_node){.name = UINT32_MAX, .parent = UINT32_MAX};
	t->n = 1;
	open[0] = 0;
	for (size_t i = 0; i < s->nstacks; i++) {
		const struct ap_flame_stack *cur = &s->stacks[i];
		uint32_t common = 0;

		if (!cur->w[0] && !cur->w[1])
			continue; /* scaled down to nothing: opens no node */
		while (prev && common < prev->len && common < cur->len &&
		       prev->ids[common] == cur->ids[common])
			common++;
		for (int side = 0; side < 2; side++)
			t->nodes[0].total[side] = ap_sat_add(t->nodes[0].total[side], cur->w[side]);
		for (uint32_t k = 0; k < cur->len; k++) {
			struct ap_flame_node *nd;

			if (k >= common) {
				t->nodes[t->n] = (struct ap_flame_node){
				    .name = cur->ids[k], .depth = k + 1, .parent = open[k]};
				open[k + 1] = (uint32_t)t->n++;
				if (k + 1 > t->max_depth)
					t->max_depth = k + 1;
			}
			nd = &t->nodes[open[k + 1]];
			for (int side = 0; side < 2; side++)
				nd->total[side] = ap_sat_add(nd->total[side], cur->w[side]);
		}
		/* the path ends here: its weight is this node's own */
		for (int side = 0; side < 2; side++) {
			struct ap_flame_node *leaf = &t->nodes[open[cur->len]];

			leaf->self[side] = ap_sat_add(leaf->self[side], cur->w[side]);
		}
		prev = cur;
	}
	free(open);
	t->nkept = t->n;
	return 0;
}

static uint64_t node_key(const struct ap_flame_node *n)
{
	return n->total[0] > n->total[1] ? n->total[0] : n->total[1];
}

/* The k-th largest (0-based) of v[0..n): quickselect, the array is reordered. */
static uint64_t kth_largest(uint64_t *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n; /* the answer lies in [lo, hi) */
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	while (hi - lo > 1) {
		size_t lt = lo, i = lo, gt = hi; /* [lo,lt) > p, [lt,i) == p, [gt,hi) < p */
		uint64_t pivot, tmp;

		seed = ap_hash_mix64(seed + lo + hi);
		pivot = v[lo + seed % (hi - lo)];
		while (i < gt) {
			if (v[i] > pivot) {
				tmp = v[i], v[i] = v[lt], v[lt] = tmp;
				lt++, i++;
			} else if (v[i] < pivot) {
				gt--;
				tmp = v[i], v[i] = v[gt], v[gt] = tmp;
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt;
		else if (k >= gt)
			lo = gt;
		else
			return pivot;
	}
	return v[lo];
}

long ap_flame_tree_prune(struct ap_flame_tree *t, size_t max_nodes)
{
	size_t budget, above = 0, ties;
	uint64_t *keys, thr;

	free(t->keep);
	t->keep = malloc((t->n ? t->n : 1) * sizeof(*t->keep));
	if (!t->keep)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		t->keep[i] = true;
	t->nkept = t->n;
	if (max_nodes == 0)
		max_nodes = 1;
	if (t->n <= max_nodes)
		return 0;
	budget = max_nodes - 1; /* the root always stays */
	if (budget == 0) {
		thr = UINT64_MAX;
		ties = 0;
	} else {
		keys = malloc((t->n - 1) * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		for (size_t i = 1; i < t->n; i++)
			keys[i - 1] = node_key(&t->nodes[i]);
		thr = kth_largest(keys, t->n - 1, budget - 1);
		free(keys);
		for (size_t i = 1; i < t->n; i++)
			above += node_key(&t->nodes[i]) > thr;
		ties = budget - above;
	}
	/* A child never weighs more than its parent, so "key > thr" keeps whole ancestor chains;
	 * ties go to the first in pre-order, which puts a parent before its children. */
	t->nkept = 1;
	for (size_t i = 1; i < t->n; i++) {
		struct ap_flame_node *n = &t->nodes[i];
		uint64_t key = node_key(n);
		bool keep = t->keep[n->parent];

		if (keep && key <= thr) {
			keep = key == thr && ties > 0;
			if (keep)
				ties--;
		}
		t->keep[i] = keep;
		if (keep) {
			t->nkept++;
		} else if (t->keep[n->parent]) {
			/* the top of a left-out subtree: its weight becomes the parent's own */
			for (int side = 0; side < 2; side++)
				t->nodes[n->parent].self[side] =
				    ap_sat_add(t->nodes[n->parent].self[side], n->total[side]);
		}
	}
	return (long)(t->n - t->nkept);
}

void ap_flame_tree_release(struct ap_flame_tree *t)
{
	free(t->nodes);
	free(t->keep);
	memset(t, 0, sizeof(*t));
}

int ap_flame_rows_build(const struct ap_flame_tree *t, struct ap_flame_rows *r)
{
	uint32_t nd = t->max_depth + 1;
	uint64_t(*child_x)[2] = NULL;
	size_t *fill = NULL;

	memset(r, 0, sizeof(*r));
	r->ndepths = nd;
	r->start = calloc(nd + 1, sizeof(*r->start));
	fill = calloc(nd + 1, sizeof(*fill));
	r->order = malloc((t->nkept ? t->nkept : 1) * sizeof(*r->order));
	r->x = calloc(t->n ? t->n : 1, sizeof(*r->x));
	child_x = calloc(nd + 1, sizeof(*child_x));
	if (!r->start || !fill || !r->order || !r->x || !child_x) {
		free(fill);
		free(child_x);
		ap_flame_rows_release(r);
		return -ENOMEM;
	}
	/* pre-order: a node's children come right after it, before its next sibling */
	for (size_t i = 0; i < t->n; i++) {
		const struct ap_flame_node *n = &t->nodes[i];

		if (t->keep && !t->keep[i])
			continue;
		for (int side = 0; side < 2; side++) {
			r->x[i][side] = child_x[n->depth][side];
			child_x[n->depth][side] += n->total[side];
			child_x[n->depth + 1][side] = r->x[i][side];
		}
		r->start[n->depth + 1]++;
	}
	for (uint32_t d = 0; d < nd; d++)
		r->start[d + 1] += r->start[d];
	for (uint32_t d = 0; d <= nd; d++)
		fill[d] = r->start[d];
	for (size_t i = 0; i < t->n; i++)
		if (!t->keep || t->keep[i])
			r->order[fill[t->nodes[i].depth]++] = (uint32_t)i;
	free(fill);
	free(child_x);
	return 0;
}

void ap_flame_rows_release(struct ap_flame_rows *r)
{
	free(r->start);
	free(r->order);
	free(r->x);
	memset(r, 0, sizeof(*r));
}
