// SPDX-License-Identifier: MIT
/* The shared hash table (hashtab.h) and hashing (hash.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lib/hash.h"
#include "lib/hashtab.h"

struct item {
	struct ap_hnode node;
	uint64_t key;
};

static struct item *find(struct ap_htab *h, uint64_t key)
{
	for (struct ap_hnode *n = ap_htab_first(h, ap_hash_mix64(key)); n; n = ap_htab_next(n)) {
		struct item *it = AP_CONTAINER_OF(n, struct item, node);

		if (it->key == key)
			return it;
	}
	return NULL;
}

static bool drop_odd(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	return AP_CONTAINER_OF(n, struct item, node)->key & 1;
}

/* Intrusive nodes: found after many growths, gone after removal and sweep. */
static void test_htab(void **state)
{
	enum { N = 5000 };
	struct item *items = calloc(N, sizeof(*items));
	struct ap_htab h = { 0 };

	(void)state;
	assert_null(ap_htab_first(&h, 1)); /* empty, no buckets yet */
	for (uint64_t i = 0; i < N; i++) {
		items[i].key = i * 7919;
		assert_int_equal(ap_htab_insert(&h, &items[i].node, ap_hash_mix64(items[i].key)), 0);
	}
	assert_int_equal(h.n, N);
	for (uint64_t i = 0; i < N; i++)
		assert_ptr_equal(find(&h, i * 7919), &items[i]);
	assert_null(find(&h, 3));
	ap_htab_remove(&h, &items[10].node);
	assert_null(find(&h, 10 * 7919));
	assert_int_equal(h.n, N - 1);
	ap_htab_sweep(&h, drop_odd, NULL);
	assert_int_equal(h.n, N / 2 - 1); /* the odd keys (i odd) out; item 10 was removed */
	assert_null(find(&h, 11 * 7919));
	assert_ptr_equal(find(&h, 12 * 7919), &items[12]);
	ap_htab_release(&h);
	assert_null(ap_htab_first(&h, ap_hash_mix64(12 * 7919)));
	free(items);
}

/* Ids over a caller's array: every id is found under its hash through the node array's
 * moves, ids skipped are not in the index, out-of-order ids are refused. */
static void test_hidx(void **state)
{
	enum { N = 3000 };
	struct ap_hidx x = { 0 };
	size_t seen;

	(void)state;
	assert_int_equal(ap_hidx_first(&x, 5), AP_HIDX_NONE);
	/* id 0 stays out (a "none" entry the caller keeps unindexed) */
	for (size_t id = 1; id < N; id++)
		assert_int_equal(ap_hidx_add(&x, id, ap_hash_mix64(id % 1000)), 0);
	assert_int_equal(ap_hidx_count(&x), N);
	assert_int_equal(ap_hidx_add(&x, 5, 1), -EINVAL);
	/* keys 1..999 have three ids each (k, k + 1000, k + 2000); key 0 two (1000, 2000) */
	for (uint64_t k = 0; k < 1000; k++) {
		seen = 0;
		for (size_t id = ap_hidx_first(&x, ap_hash_mix64(k)); id != AP_HIDX_NONE;
		     id = ap_hidx_next(&x, id)) {
			assert_int_equal(id % 1000, k);
			assert_int_not_equal(id, 0);
			seen++;
		}
		assert_int_equal(seen, k ? 3 : 2);
	}
	ap_hidx_clear(&x);
	assert_int_equal(ap_hidx_count(&x), 0);
	assert_int_equal(ap_hidx_first(&x, ap_hash_mix64(7)), AP_HIDX_NONE);
	assert_int_equal(ap_hidx_add(&x, 0, 42), 0);
	assert_int_equal(ap_hidx_first(&x, 42), 0);
	ap_hidx_release(&x);
}

/* The hash family: seeds separate, the mixer is a bijection with 0 fixed, and folding a
 * piece into a running hash depends on it. */
static void test_hash(void **state)
{
	static const char a[] = "tasklist_lock";

	(void)state;
	assert_int_equal(ap_hash_mix64(0), 0);
	assert_int_not_equal(ap_hash_mix64(1), ap_hash_mix64(2));
	assert_int_equal(ap_hash_bytes(a, sizeof(a) - 1, 3), ap_hash_bytes(a, sizeof(a) - 1, 3));
	assert_int_not_equal(ap_hash_bytes(a, sizeof(a) - 1, 0), ap_hash_bytes(a, sizeof(a) - 1, 1));
	assert_int_not_equal(ap_hash_bytes(a, 4, ap_hash_bytes(a, 3, 0)),
			     ap_hash_bytes(a, 4, ap_hash_bytes(a + 1, 3, 0)));
	/* the low bits (bucket index) of consecutive integers spread out */
	{
		unsigned used[64] = { 0 }, filled = 0;

		for (uint64_t i = 0; i < 64; i++)
			used[ap_hash_mix64(i * 4096) & 63]++;
		for (int i = 0; i < 64; i++)
			filled += used[i] != 0;
		assert_true(filled > 32);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_htab),
		cmocka_unit_test(test_hidx),
		cmocka_unit_test(test_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
