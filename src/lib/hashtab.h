/* SPDX-License-Identifier: MIT */
/*
 * The one hash table of the userspace code: chained buckets of intrusive nodes. The caller
 * embeds a struct ap_hnode in its entries, hashes its keys itself (hash.h) and compares keys
 * itself while walking the nodes that share a hash; the table never allocates or frees nodes.
 *
 * Two ways to use it:
 *  - struct ap_htab directly, for entries that do not move (malloc'd one by one): symbol
 *    tables, processes, cached chains. Removal is O(chain).
 *  - struct ap_hidx, an index of ids over an array the caller owns and grows (interned
 *    strings, table rows): the nodes live in an array of the index's own, one per id, so
 *    the caller's entries may move.
 */
#ifndef AP_HASHTAB_H
#define AP_HASHTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct ap_hnode {
	struct ap_hnode *next;
	uint64_t hash;
};

/* Zero-initialised is an empty table. */
struct ap_htab {
	struct ap_hnode **buckets;
	size_t nbuckets; /* power of two, or 0 before the first insert */
	size_t n;
};

/* Link n under `hash`. Returns 0 or -ENOMEM (only when the table has no buckets yet and none
 * can be allocated; a failed growth keeps the old buckets and longer chains). */
int ap_htab_insert(struct ap_htab *h, struct ap_hnode *n, uint64_t hash);
/* Unlink n (which must be in h). */
void ap_htab_remove(struct ap_htab *h, struct ap_hnode *n);
/* First node with `hash`, then ap_htab_next() for the following ones; NULL at the end. */
struct ap_hnode *ap_htab_first(const struct ap_htab *h, uint64_t hash);
struct ap_hnode *ap_htab_next(const struct ap_hnode *n);
/* Calls drop() on every node; nodes for which it returns true are unlinked (drop may free
 * them: the node is not touched again). */
void ap_htab_sweep(struct ap_htab *h, bool (*drop)(struct ap_hnode *n, void *ctx), void *ctx);
/* Frees the bucket array (not the nodes) and leaves h empty. */
void ap_htab_release(struct ap_htab *h);

/* ---- ids over a caller's array ---- */

#define AP_HIDX_NONE SIZE_MAX

/* Zero-initialised is an empty index. */
struct ap_hidx {
	struct ap_htab tab;
	struct ap_hnode *nodes; /* nodes[id]; owned */
	size_t cap;
	size_t n; /* the last id added + 1 */
};

/* Index `id` under `hash`. Ids are added in increasing order (id >= ap_hidx_count()); ids
 * skipped are simply not in the index (an entry the caller keeps unindexed). Returns 0,
 * -EINVAL (id out of order) or -ENOMEM; on failure the index is unchanged. */
int ap_hidx_add(struct ap_hidx *x, size_t id, uint64_t hash);
/* An id added under `hash`, then ap_hidx_next() for the others with that hash (in no set
 * order); AP_HIDX_NONE at the end. The caller compares its keys to pick the right one. */
size_t ap_hidx_first(const struct ap_hidx *x, uint64_t hash);
size_t ap_hidx_next(const struct ap_hidx *x, size_t id);
/* The last id added + 1. */
size_t ap_hidx_count(const struct ap_hidx *x);
/* Forget every id, keeping the memory for reuse. */
void ap_hidx_clear(struct ap_hidx *x);
/* Frees what x holds and leaves it empty. */
void ap_hidx_release(struct ap_hidx *x);

#endif
