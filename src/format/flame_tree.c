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
			s->pool[s->pool_len++] =
			    frames[j] < nframes ? frame_name[frames[j]] : unknown;
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

/* Walks the sorted paths as a pre-order traversal of the tree they form: a path opens nodes
 * from where it first differs from the previous one (pre-order numbers follow), closes the
 * previous path's nodes below that depth. */
struct walk {
	const struct ap_flame_set *s;
	const struct ap_flame_stack *prev; /* the last path that opened nodes */
	size_t i;			   /* next stack */
	uint32_t common, prev_len;
};

/* The next path with weight, with how much of it continues the previous one; NULL at the
 * end. */
static const struct ap_flame_stack *walk_next(struct walk *w)
{
	while (w->i < w->s->nstacks) {
		const struct ap_flame_stack *cur = &w->s->stacks[w->i++];
		uint32_t common = 0;

		if (!cur->w[0] && !cur->w[1])
			continue; /* scaled down to nothing: opens no node */
		while (w->prev && common < w->prev->len && common < cur->len &&
		       w->prev->ids[common] == cur->ids[common])
			common++;
		w->common = common;
		w->prev_len = w->prev ? w->prev->len : 0;
		w->prev = cur;
		return cur;
	}
	w->common = 0;
	w->prev_len = w->prev ? w->prev->len : 0;
	return NULL;
}

static uint64_t key_of(const uint64_t v[2]) { return v[0] > v[1] ? v[0] : v[1]; }

/* A min-heap of the `cap` largest keys seen: its top is the cap-th largest. */
struct topk {
	uint64_t *v;
	size_t n, cap;
};

static void topk_push(struct topk *h, uint64_t key)
{
	size_t i;

	if (h->n == h->cap) {
		if (key <= h->v[0])
			return;
		/* replace the smallest and sift it down */
		i = 0;
		for (;;) {
			size_t l = 2 * i + 1, r = l + 1, m = i;
			uint64_t cur = key;

			if (l < h->n && h->v[l] < cur)
				m = l, cur = h->v[l];
			if (r < h->n && h->v[r] < cur)
				m = r;
			if (m == i)
				break;
			h->v[i] = h->v[m];
			i = m;
		}
		h->v[i] = key;
		return;
	}
	i = h->n++;
	while (i && h->v[(i - 1) / 2] > key) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = key;
}

/*
 * Three walks over the paths, so that a tree of millions of nodes costs 8 bytes a node and
 * only the kept ones are built: (1) count the nodes, (2) their keys (the larger side's total)
 * in pre-order, and the threshold that keeps max_nodes of them, (3) build the kept nodes.
 * A child never weighs more than its parent, so "key > threshold" keeps whole ancestor
 * chains; ties go to the first in pre-order, which puts a parent before its children.
 */
int ap_flame_tree_build(const struct ap_flame_set *s, size_t max_nodes, struct ap_flame_tree *t)
{
	struct topk heap = {0};
	uint64_t *keys = NULL, (*tot)[2] = NULL, thr = 0;
	uint32_t *idx = NULL, *kept = NULL;
	size_t count = 1, maxlen = 0, pre, ties = 0, budget;
	const struct ap_flame_stack *cur;
	struct walk w = {.s = s};
	bool prune;
	int err = -ENOMEM;

	memset(t, 0, sizeof(*t));
	while ((cur = walk_next(&w))) {
		count += cur->len - w.common;
		if (cur->len > maxlen)
			maxlen = cur->len;
	}
	if (max_nodes == 0)
		max_nodes = SIZE_MAX;
	prune = count > max_nodes;
	budget = prune ? max_nodes - 1 : count - 1; /* the root always stays */
	tot = calloc(maxlen + 1, sizeof(*tot));
	idx = malloc((maxlen + 1) * sizeof(*idx));
	kept = malloc((maxlen + 1) * sizeof(*kept));
	if (!tot || !idx || !kept)
		goto out;
	if (prune && budget == 0) {
		thr = UINT64_MAX; /* the root alone */
	} else if (prune) {
		keys = malloc(count * sizeof(*keys));
		heap.v = malloc(budget * sizeof(*heap.v));
		heap.cap = budget;
		if (!keys || !heap.v)
			goto out;
		w = (struct walk){.s = s};
		pre = 1;
		do {
			cur = walk_next(&w);
			/* close the previous path's nodes below the common part */
			for (uint32_t d = w.prev_len; d > w.common; d--) {
				keys[idx[d]] = key_of(tot[d]);
				topk_push(&heap, keys[idx[d]]);
			}
			if (!cur)
				break;
			for (uint32_t d = w.common + 1; d <= cur->len; d++) {
				idx[d] = (uint32_t)pre++;
				tot[d][0] = tot[d][1] = 0;
			}
			for (uint32_t d = 1; d <= cur->len; d++) {
				tot[d][0] = ap_sat_add(tot[d][0], cur->w[0]);
				tot[d][1] = ap_sat_add(tot[d][1], cur->w[1]);
			}
		} while (cur);
		thr = heap.v[0];
		ties = budget;
		for (size_t i = 1; i < count; i++)
			ties -= keys[i] > thr;
	}

	t->nodes = malloc((budget + 1) * sizeof(*t->nodes));
	if (!t->nodes)
		goto out;
	t->nodes[0] = (struct ap_flame_node){.name = UINT32_MAX, .parent = UINT32_MAX};
	t->n = 1;
	kept[0] = 0;
	w = (struct walk){.s = s};
	pre = 1;
	while ((cur = walk_next(&w))) {
		uint32_t deepest = 0;

		for (uint32_t d = w.common + 1; d <= cur->len; d++, pre++) {
			bool keep = kept[d - 1] != UINT32_MAX;

			if (keep && prune && keys && keys[pre] <= thr) {
				keep = keys[pre] == thr && ties > 0;
				ties -= keep;
			} else if (keep && prune && !keys) {
				keep = false; /* max_nodes 1 */
			}
			kept[d] = UINT32_MAX;
			if (keep) {
				t->nodes[t->n] = (struct ap_flame_node){
				    .name = cur->ids[d - 1], .depth = d, .parent = kept[d - 1]};
				kept[d] = (uint32_t)t->n++;
				if (d > t->max_depth)
					t->max_depth = d;
			}
		}
		for (uint32_t d = 0; d <= cur->len && kept[d] != UINT32_MAX; d++) {
			struct ap_flame_node *nd = &t->nodes[kept[d]];

			nd->total[0] = ap_sat_add(nd->total[0], cur->w[0]);
			nd->total[1] = ap_sat_add(nd->total[1], cur->w[1]);
			deepest = d;
		}
		/* the path ends at its deepest kept node: what was left out below is its own */
		t->nodes[kept[deepest]].self[0] =
		    ap_sat_add(t->nodes[kept[deepest]].self[0], cur->w[0]);
		t->nodes[kept[deepest]].self[1] =
		    ap_sat_add(t->nodes[kept[deepest]].self[1], cur->w[1]);
	}
	t->truncated = count - t->n;
	err = 0;
out:
	if (err)
		ap_flame_tree_release(t);
	free(heap.v);
	free(keys);
	free(tot);
	free(idx);
	free(kept);
	return err;
}

void ap_flame_tree_release(struct ap_flame_tree *t)
{
	free(t->nodes);
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
	r->order = malloc((t->n ? t->n : 1) * sizeof(*r->order));
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

		for (int side = 0; side < 2; side++) {
			r->x[i][side] = child_x[n->depth][side];
			child_x[n->depth][side] = ap_sat_add(child_x[n->depth][side], n->total[side]);
			child_x[n->depth + 1][side] = r->x[i][side];
		}
		r->start[n->depth + 1]++;
	}
	for (uint32_t d = 0; d < nd; d++)
		r->start[d + 1] += r->start[d];
	for (uint32_t d = 0; d <= nd; d++)
		fill[d] = r->start[d];
	for (size_t i = 0; i < t->n; i++)
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
