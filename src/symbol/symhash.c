// SPDX-License-Identifier: MIT
/*
 * Chained hash table of intrusive nodes. Chaining (rather than open addressing) makes removal
 * trivial, which the symbolizer needs for snapshots and evicted symbol tables; the tables hold
 * at most a few thousand entries, so the pointer per node is cheap.
 */
#include <errno.h>
#include <stdlib.h>

#include "symbol_internal.h"

uint64_t ap_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *b = data;
	uint64_t h = seed ^ 0xcbf29ce484222325ULL;

	/* FNV-1a with a final avalanche so that the low bits pick buckets well */
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

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
