// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The USDT probes of Aperture's CUPTI injection library (libaperture_cupti.so, provider
 * "aperture"; layouts in gpu_activity.h) into one ring buffer for the loader
 * (src/gpu/activity.c):
 *
 *  - correlation: CUPTI's correlation id of a launch/copy call, on the launching thread, with
 *    pid/tid and bpf_ktime_get_ns(), so the model can find the call its uprobes saw in
 *    flight on that thread (and so the CPU stack);
 *  - activity: a batch of up to AP_GA_BATCH_MAX records, read from the library's stack one
 *    by one; a kernel's name pointer is read as a string the first time this (pid, pointer)
 *    is seen (CUPTI keeps one string per kernel), so a name crosses the ring buffer once;
 *  - stats: the library's counters, passed on as they are.
 *
 * Every event that cannot be queued is counted (AP_GA_STAT_RINGBUF_DROPS), as is every read
 * that faults. A name that cannot be read here (page not present) is left to the loader,
 * which reads it from /proc/PID/mem.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "gpu_activity.h"
#include "bpf_stats.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} ga_events SEC(".maps");

AP_BPF_STATS(ga_stats, AP_GA_STAT_MAX);
AP_BPF_STAT_HELPERS(ga_stats)

struct ga_name_key {
	__u32 pid;
	__u32 pad;
	__u64 ptr;
};

/* (pid, name pointer) already sent; LRU so that a long run with many processes stays
 * bounded (an evicted name is simply sent again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ga_name_key);
	__type(value, __u8);
} ga_names_seen SEC(".maps");

SEC("usdt")
int BPF_USDT(ga_correlation, __u32 corr, __u32 cbid, __u32 domain)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ap_ga_ev_corr *e;

	e = bpf_ringbuf_reserve(&ga_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AP_GA_STAT_RINGBUF_DROPS);
		return 0;
	}
	e->hdr.type = AP_GA_EV_CORR;
	e->hdr.pid = id >> 32;
	e->ts_ns = bpf_ktime_get_ns();
	e->tid = (__u32)id;
	e->correlation = corr;
	e->cbid = cbid;
	e->domain = domain;
	bpf_ringbuf_submit(e, 0);
	stat_inc(AP_GA_STAT_CORR);
	return 0;
}

static __always_inline void send_name(__u32 pid, __u64 ptr)
{
	struct ga_name_key k = { .pid = pid, .ptr = ptr };
	struct ap_ga_ev_name *e;
	__u8 one = 1;
	long n;

	if (bpf_map_lookup_elem(&ga_names_seen, &k))
		return;
	e = bpf_ringbuf_reserve(&ga_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AP_GA_STAT_RINGBUF_DROPS);
		return;
	}
	n = bpf_probe_read_user_str(e->name, sizeof(e->name), (const void *)ptr);
	if (n <= 0) {
		bpf_ringbuf_discard(e, 0);
		stat_inc(AP_GA_STAT_NAME_FAULTS);
		return;
	}
	e->hdr.type = AP_GA_EV_NAME;
	e->hdr.pid = pid;
	e->ptr = ptr;
	bpf_ringbuf_submit(e, 0);
	bpf_map_update_elem(&ga_names_seen, &k, &one, BPF_ANY);
}

SEC("usdt")
int BPF_USDT(ga_activity, const struct ap_ga_rec *recs, __u32 count, __u32 abi)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct ap_ga_ev_act *e;
	struct ap_ga_rec r;
	__u32 i;

	if (abi != AP_GA_ABI) {
		stat_inc(AP_GA_STAT_BAD_ABI);
		return 0;
	}
	for (i = 0; i < AP_GA_BATCH_MAX; i++) {
		if (i >= count)
			break;
		if (bpf_probe_read_user(&r, sizeof(r), &recs[i])) {
			stat_inc(AP_GA_STAT_READ_FAULTS);
			continue;
		}
		if (r.kind == AP_GA_KERNEL && r.name_ptr)
			send_name(pid, r.name_ptr);
		e = bpf_ringbuf_reserve(&ga_events, sizeof(*e), 0);
		if (!e) {
			stat_inc(AP_GA_STAT_RINGBUF_DROPS);
			continue;
		}
		e->hdr.type = AP_GA_EV_ACT;
		e->hdr.pid = pid;
		__builtin_memcpy(&e->rec, &r, sizeof(r));
		bpf_ringbuf_submit(e, 0);
		stat_inc(AP_GA_STAT_RECORDS);
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(ga_lib_stats, const struct ap_ga_lib_stats *s)
{
	struct ap_ga_ev_stats *e;

	e = bpf_ringbuf_reserve(&ga_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(AP_GA_STAT_RINGBUF_DROPS);
		return 0;
	}
	if (bpf_probe_read_user(&e->s, sizeof(e->s), s) || e->s.abi != AP_GA_ABI) {
		bpf_ringbuf_discard(e, 0);
		stat_inc(AP_GA_STAT_READ_FAULTS);
		return 0;
	}
	e->hdr.type = AP_GA_EV_STATS;
	e->hdr.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
