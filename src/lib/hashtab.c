// SPDX-License-Identifier: MIT
/*
 * Chained hash table of intrusive nodes (hashtab.h). Chaining (rather than open addressing)
 * makes removal trivial, which the symbolizer and the unwinder need for snapshots, exited
 * processes and evicted symbol tables; the pointer per node is cheap next to the entries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hashtab.h"

static void htab_rehash(struct ap_htab *h, size_t nb)
{
	struct ap_hnode **b = calloc(nb, sizeof(*b));

	/* growing is an optimisation: on failure keep the longer chains */
	if (!b)
		return;
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct ap_hnode *n = h->buckets[i], *next;

		for (; n; n = next) {
			size_t j = n->hash & (nb - 1);

			next = n->next;
			n->next = b[j];
			b[j] = n;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = nb;
}

int ap_htab_insert(struct ap_htab *h, struct ap_hnode *n, uint64_t hash)
{
	size_t j;

	if (h->n + 1 > h->nbuckets)
		htab_rehash(h, h->nbuckets ? h->nbuckets * 2 : 64);
	if (!h->nbuckets)
		return -ENOMEM;
	n->hash = hash;
	j = hash & (h->nbuckets - 1);
	n->next = h->buckets[j];
	h->buckets[j] = n;
	h->n++;
	return 0;
}

void ap_htab_remove(struct ap_htab *h, struct ap_hnode *n)
{
	struct ap_hnode **pp;

	if (!h->nbuckets)
		return;
	for (pp = &h->buckets[n->hash & (h->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			h->n--;
			return;
		}
	}
}

struct ap_hnode *ap_htab_first(const struct ap_htab *h, uint64_t hash)
{
	struct ap_hnode *n;

	if (!h->nbuckets)
		return NULL;
	for (n = h->buckets[hash & (h->nbuckets - 1)]; n; n = n->next)
		if (n->hash == hash)
			return n;
	return NULL;
}

struct ap_hnode *ap_htab_next(const struct ap_hnode *n)
{
	uint64_t hash = n->hash;

	for (n = n->next; n; n = n->next)
		if (n->hash == hash)
			return (struct ap_hnode *)n;
	return NULL;
}

void ap_htab_sweep(struct ap_htab *h, bool (*drop)(struct ap_hnode *n, void *ctx), void *ctx)
{
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct ap_hnode **pp = &h->buckets[i];

		while (*pp) {
			struct ap_hnode *n = *pp, *next = n->next;

			if (drop(n, ctx)) {
				*pp = next;
				h->n--;
			} else {
				pp = &n->next;
			}
		}
	}
}

void ap_htab_release(struct ap_htab *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->nbuckets = 0;
	h->n = 0;
}

/* ---- ids over a caller's array ---- */

/* Move the nodes into a bigger array, re-pointing the chains at the new copies (the old
 * array is freed only once every pointer into it has been translated). */
static int hidx_grow(struct ap_hidx *x, size_t need)
{
	struct ap_hnode *old = x->nodes, *nv;
	size_t ncap = x->cap ? x->cap : 64;

	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / sizeof(*nv))
			return -ENOMEM;
		ncap *= 2;
	}
	nv = malloc(ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	if (old) {
		memcpy(nv, old, x->cap * sizeof(*nv));
		for (size_t b = 0; b < x->tab.nbuckets; b++) {
			struct ap_hnode **pp = &x->tab.buckets[b];

			for (; *pp; pp = &(*pp)->next)
				*pp = nv + (*pp - old);
		}
	}
	free(old);
	x->nodes = nv;
	x->cap = ncap;
	return 0;
}

int ap_hidx_add(struct ap_hidx *x, size_t id, uint64_t hash)
{
	int err;

	if (id < x->n || id == SIZE_MAX)
		return -EINVAL;
	if (id >= x->cap) {
		err = hidx_grow(x, id + 1);
		if (err)
			return err;
	}
	err = ap_htab_insert(&x->tab, &x->nodes[id], hash);
	if (!err)
		x->n = id + 1;
	return err;
}

size_t ap_hidx_first(const struct ap_hidx *x, uint64_t hash)
{
	const struct ap_hnode *n = ap_htab_first(&x->tab, hash);

	return n ? (size_t)(n - x->nodes) : AP_HIDX_NONE;
}

size_t ap_hidx_next(const struct ap_hidx *x, size_t id)
{
	const struct ap_hnode *n = ap_htab_next(&x->nodes[id]);

	return n ? (size_t)(n - x->nodes) : AP_HIDX_NONE;
}

size_t ap_hidx_count(const struct ap_hidx *x)
{
	return x->n;
}

void ap_hidx_clear(struct ap_hidx *x)
{
	if (x->tab.nbuckets)
		memset(x->tab.buckets, 0, x->tab.nbuckets * sizeof(*x->tab.buckets));
	x->tab.n = 0;
	x->n = 0;
}

void ap_hidx_release(struct ap_hidx *x)
{
	ap_htab_release(&x->tab);
	free(x->nodes);
	x->nodes = NULL;
	x->cap = 0;
	x->n = 0;
}
