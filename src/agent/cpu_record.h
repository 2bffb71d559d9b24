/* SPDX-License-Identifier: MIT */
/* Pure part of the CPU collector: one aggregated BPF entry -> one profile sample. */
#ifndef AP_CPU_RECORD_H
#define AP_CPU_RECORD_H

#include <linux/types.h>
#include <stdint.h>

#include "bpf/cpu.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"

struct ap_cpu_record_stats {
	uint64_t samples;	   /* samples added to the profile */
	uint64_t user_truncated;   /* user stacks that hit AP_MAX_STACK_DEPTH */
	uint64_t kernel_truncated; /* kernel stacks that hit AP_MAX_STACK_DEPTH */
	uint64_t no_stack;	   /* samples without any stack */
};

/* Value types of a CPU profile, in this order. */
enum { AP_CPU_VALUE_SAMPLES = 0, AP_CPU_VALUE_CPU_NS = 1 };

/* Set up an empty profile for CPU samples at `rate_hz`. Returns 0 or -ENOMEM. */
int ap_cpu_profile_init(struct ap_profile *p, uint64_t rate_hz);

/*
 * Add `count` samples of `key`. kstack/ustack are the kernel and user stacks as returned by
 * the stack map (leaf first, zero-terminated, at most AP_MAX_STACK_DEPTH), or NULL when the
 * key has none. Returns 0 or -ENOMEM.
 */
int ap_cpu_record(struct ap_profile *p, struct ap_symbolizer *sym, const struct ap_cpu_key *key,
		  uint64_t count, const __u64 *kstack, const __u64 *ustack,
		  struct ap_cpu_record_stats *stats);

/*
 * Per-event mode: one sample taken at ts_ns on `cpu`. Without a filter it is recorded as
 * ap_cpu_record(count 1) would; with one (c->filter) the filter sees it first, a dropped
 * sample is not recorded, and a transformed one is recorded with its new comm, weight (as the
 * sample count), trimmed stacks and tag (a "tag" label). Returns 0 or -ENOMEM.
 */
struct ap_collector;
int ap_cpu_record_event(struct ap_collector *c, const struct ap_cpu_key *key, uint64_t ts_ns,
			uint32_t cpu, const __u64 *kstack, const __u64 *ustack,
			struct ap_cpu_record_stats *stats);

#endif
