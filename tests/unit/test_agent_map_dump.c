// SPDX-License-Identifier: MIT
/* Map drains (src/agent/map_dump.c) on real BPF maps: the batch path and the per-entry path
 * each return exactly the entries inserted and leave the map empty; a map type that refuses
 * the batch falls back per entry; ap_map_clear empties a map. Needs root (BPF maps). */
#include <errno.h>
#include <linux/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "bpf/cpu.h"
#include "agent/map_dump.h"

#define N 5000u /* more than one grow step and one clear chunk; not a round number */

/* Entry i: the CPU collector's key shape, its count i + 1. */
static struct ap_cpu_key key_of(__u32 i)
{
	struct ap_cpu_key k = { 0 };

	k.user_stack = 0x1000 + i * 7ULL;
	k.kern_stack = i % 3 ? 0 : 0xffff0000ULL + i;
	k.pid = 100 + i / 10;
	k.tid = i;
	snprintf(k.comm, sizeof(k.comm), "t%u", i);
	return k;
}

static int hash_map(__u32 max_entries)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_dump", sizeof(struct ap_cpu_key),
				sizeof(__u64), max_entries, NULL);

	assert_true(fd >= 0);
	return fd;
}

static void fill(int fd, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		struct ap_cpu_key k = key_of(i);
		__u64 v = i + 1;

		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST), 0);
	}
}

/* d holds entries 0..n-1, each once with its own value, and the map is empty. */
static void assert_exactly(const struct ap_map_dump *d, int fd, __u32 n)
{
	unsigned char *seen = calloc(n, 1);
	struct ap_cpu_key next;

	assert_non_null(seen);
	assert_int_equal(d->n, n);
	for (size_t i = 0; i < d->n; i++) {
		const struct ap_cpu_key *k = ap_map_dump_key(d, i);
		const __u64 *v = ap_map_dump_val(d, i);
		struct ap_cpu_key want;

		assert_true(*v >= 1 && *v <= n);
		assert_int_equal(seen[*v - 1], 0);
		seen[*v - 1] = 1;
		want = key_of((__u32)(*v - 1));
		assert_memory_equal(k, &want, sizeof(want));
	}
	free(seen);
	assert_int_not_equal(bpf_map_get_next_key(fd, NULL, &next), 0);
}

static void take_twice(enum ap_map_dump_path path)
{
	struct ap_map_dump d;
	int fd = hash_map(N);

	ap_map_dump_init(&d, sizeof(struct ap_cpu_key), sizeof(__u64));
	d.path = path;
	fill(fd, N);
	assert_int_equal(ap_map_dump_take(&d, fd), 0);
	assert_exactly(&d, fd, N);
	/* the next drain reuses the arrays and starts from none */
	fill(fd, 17);
	assert_int_equal(ap_map_dump_take(&d, fd), 0);
	assert_exactly(&d, fd, 17);
	/* an empty map is an empty dump */
	assert_int_equal(ap_map_dump_take(&d, fd), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.path, path);
	assert_int_equal(d.batch_refused, 0);
	ap_map_dump_free(&d);
	close(fd);
}

static void test_batch(void **state)
{
	take_twice(AP_MAP_DUMP_BATCH);
}

static void test_per_entry(void **state)
{
	take_twice(AP_MAP_DUMP_PER_ENTRY);
}

/* Auto on a hash map: the batch is accepted, and stays chosen. */
static void test_auto_hash(void **state)
{
	take_twice(AP_MAP_DUMP_AUTO);
}

/* An array has lookup_batch but no lookup_and_delete_batch: the kernel refuses it, auto falls
 * back per entry and stays there, batch-only reports the refusal. */
static void test_auto_fallback(void **state)
{
	const __u32 n = 300;
	struct ap_map_dump d;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_dump_arr", sizeof(__u32), sizeof(__u64),
				n, NULL);

	assert_true(fd >= 0);
	for (__u32 i = 0; i < n; i++) {
		__u64 v = 1000 + i;

		assert_int_equal(bpf_map_update_elem(fd, &i, &v, BPF_ANY), 0);
	}
	ap_map_dump_init(&d, sizeof(__u32), sizeof(__u64));
	d.path = AP_MAP_DUMP_BATCH;
	assert_int_not_equal(ap_map_dump_take(&d, fd), 0);
	assert_int_equal(d.n, 0);

	d.path = AP_MAP_DUMP_AUTO;
	assert_int_equal(ap_map_dump_take(&d, fd), 0);
	assert_int_equal(d.path, AP_MAP_DUMP_PER_ENTRY);
	assert_true(d.batch_refused == -EINVAL || d.batch_refused == -524 /* ENOTSUPP */ ||
		    d.batch_refused == -EOPNOTSUPP);
	/* every element once, with its value (an array's elements cannot be deleted) */
	assert_int_equal(d.n, n);
	for (size_t i = 0; i < d.n; i++)
		assert_int_equal(*(__u64 *)ap_map_dump_val(&d, i),
				 1000 + *(__u32 *)ap_map_dump_key(&d, i));
	ap_map_dump_free(&d);
	close(fd);
}

/* ap_map_clear: a stacks-shaped map (u64 -> 1 KiB), more entries than one batch chunk. */
static void test_clear(void **state)
{
	struct ap_stack *st = calloc(1, sizeof(*st));
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_clear", sizeof(__u64), sizeof(*st), N,
				NULL);
	__u64 next;

	assert_true(fd >= 0);
	assert_non_null(st);
	for (__u64 i = 1; i <= 1000; i++) {
		st->ips[0] = i;
		assert_int_equal(bpf_map_update_elem(fd, &i, st, BPF_NOEXIST), 0);
	}
	assert_int_equal(ap_map_clear(fd, sizeof(__u64)), 0);
	assert_int_not_equal(bpf_map_get_next_key(fd, NULL, &next), 0);
	/* a wrong key size is refused, not misread */
	assert_int_not_equal(ap_map_clear(fd, sizeof(__u32)), 0);
	free(st);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),	      cmocka_unit_test(test_per_entry),
		cmocka_unit_test(test_auto_hash),     cmocka_unit_test(test_auto_fallback),
		cmocka_unit_test(test_clear),
	};
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "probe", 4, 4, 1, NULL);

	if (fd < 0) {
		printf("SKIP: cannot create BPF maps: %s\n", strerror(errno));
		return 77;
	}
	close(fd);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
