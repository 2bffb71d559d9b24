/* SPDX-License-Identifier: MIT */
/* The --pid filter shared by the programs: thread-group ids to keep, filled by the loader.
 * Keyed by tgid, so threads created later are kept too. Include once per program. */
#ifndef AP_BPF_PID_FILTER_H
#define AP_BPF_PID_FILTER_H

/* Off: every process is kept and the map is never read. */
const volatile bool cfg_filter_pids = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* >= AP_MAX_PIDS (agent.h) */
	__type(key, __u32);	   /* tgid */
	__type(value, __u8);
} target_pids SEC(".maps");

static __always_inline bool ap_tgid_in_targets(__u32 tgid)
{
	return bpf_map_lookup_elem(&target_pids, &tgid) != NULL;
}

#endif
