// SPDX-License-Identifier: MIT
#include "cpu_record.h"

#include <errno.h>
#include <string.h>

int ap_cpu_profile_init(struct ap_profile *p, uint64_t rate_hz)
{
	uint64_t period_ns = rate_hz ? 1000000000ULL / rate_hz : 0;

	if (ap_profile_add_value_type(p, "samples", "count") ||
	    ap_profile_add_value_type(p, "cpu", "nanoseconds"))
		return -ENOMEM;
	ap_profile_set_period(p, "cpu", "nanoseconds", period_ns);
	/* flamegraphs and tables count samples, as perf and flamegraph.pl do */
	ap_profile_set_default_value(p, AP_CPU_VALUE_SAMPLES);
	return ap_profile_set_meta(p, "mode", "cpu");
}

static size_t stack_len(const __u64 *ips)
{
	size_t n = 0;

	while (ips && n < AP_MAX_STACK_DEPTH && ips[n])
		n++;
	return n;
}

int ap_cpu_record(struct ap_profile *p, struct ap_symbolizer *sym, const struct ap_cpu_key *key,
		  uint64_t count, const __u64 *kstack, const __u64 *ustack,
		  struct ap_cpu_record_stats *stats)
{
	/* user addresses expand into their inline chains: room for a few frames each */
	uint32_t frames[AP_MAX_STACK_DEPTH + 4 * AP_MAX_STACK_DEPTH];
	size_t nk = stack_len(kstack), nu = stack_len(ustack), n = 0;
	bool inline_cut = false;
	struct ap_sample s = { 0 };
	char comm[AP_TASK_COMM_LEN + 1];

	/* leaf first: kernel frames sit on top of the user frames that entered the kernel */
	for (size_t i = 0; i < nk; i++) {
		frames[n] = ap_symbolizer_kernel_frame(sym, p, kstack[i], i > 0);
		if (frames[n++] == UINT32_MAX)
			return -ENOMEM;
	}
	for (size_t i = 0; i < nu; i++) {
		size_t got;

		/* full: the outermost callers are lost, as with a truncated capture */
		if (n == sizeof(frames) / sizeof(frames[0])) {
			inline_cut = true;
			break;
		}
		got = ap_symbolizer_user_frames(sym, p, (int)key->pid, ustack[i], i > 0, frames + n,
						sizeof(frames) / sizeof(frames[0]) - n);
		if (!got)
			return -ENOMEM;
		n += got;
	}
	memcpy(comm, key->comm, AP_TASK_COMM_LEN);
	comm[AP_TASK_COMM_LEN] = '\0';

	s.stack = ap_profile_add_stack(p, frames, n);
	s.comm = ap_profile_intern(p, comm);
	if (s.stack == UINT32_MAX || s.comm == UINT32_MAX)
		return -ENOMEM;
	s.pid = key->pid;
	s.tid = key->tid;
	s.values[AP_CPU_VALUE_SAMPLES] = count;
	s.values[AP_CPU_VALUE_CPU_NS] = count * ap_profile_period(p);
	if (ap_profile_add_sample(p, &s))
		return -ENOMEM;

	stats->samples += count;
	if (nu == AP_MAX_STACK_DEPTH || inline_cut)
		stats->user_truncated += count;
	if (nk == AP_MAX_STACK_DEPTH)
		stats->kernel_truncated += count;
	if (n == 0)
		stats->no_stack += count;
	return 0;
}
