/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-CPU counters of a BPF program (include after vmlinux.h and bpf_helpers.h). Each program
 * declares its own array, one u64 slot per counter of its enum, and the agent sums the CPUs
 * (ap_percpu_stats_report): a per-CPU slot needs no atomic, and a program never nests on its
 * CPU.
 *
 *     AP_BPF_STATS(lock_stats, AP_LOCK_STAT_MAX);
 *     ap_stat_add(&lock_stats, AP_LOCK_STAT_WAITS_LOST, 1);
 *
 * A program's own array gets the short forms stat_add(which, n) and stat_inc(which) with
 * AP_BPF_STAT_HELPERS(lock_stats) (once per program: the names are not prefixed).
 */
#ifndef AP_BPF_STATS_H
#define AP_BPF_STATS_H

#define AP_BPF_STATS(name, nslots)                         \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);   \
		__uint(max_entries, nslots);               \
		__type(key, __u32);                        \
		__type(value, __u64);                      \
	} name SEC(".maps")

static __always_inline void ap_stat_add(void *stats, __u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(stats, &which);

	if (v)
		*v += n;
}

#define AP_BPF_STAT_HELPERS(name)                                  \
	static __always_inline void stat_add(__u32 which, __u64 n) \
	{                                                          \
		ap_stat_add(&name, which, n);                      \
	}                                                          \
	static __always_inline void stat_inc(__u32 which)          \
	{                                                          \
		ap_stat_add(&name, which, 1);                      \
	}

#endif
