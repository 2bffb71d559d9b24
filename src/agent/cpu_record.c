// SPDX-License-Identifier: MIT
#include "cpu_record.h"

#include "collector.h"
#include "filter_hook.h"

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

static int record(struct ap_profile *p, struct ap_symbolizer *sym, const struct ap_cpu_key *key,
		  uint64_t count, const __u64 *kstack, const __u64 *ustack, const char *tag,
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
	if (tag && tag[0]) {
		struct ap_label l = { 0 };

		l.key = ap_profile_intern(p, "tag");
		l.str = ap_profile_intern(p, tag);
		if (l.key == UINT32_MAX || l.str == UINT32_MAX)
			return -ENOMEM;
		s.labels = ap_profile_add_labels(p, &l, 1);
		if (s.labels == UINT32_MAX)
			return -ENOMEM;
	}
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

int ap_cpu_record(struct ap_profile *p, struct ap_symbolizer *sym, const struct ap_cpu_key *key,
		  uint64_t count, const __u64 *kstack, const __u64 *ustack,
		  struct ap_cpu_record_stats *stats)
{
	return record(p, sym, key, count, kstack, ustack, NULL, stats);
}

int ap_cpu_record_event(struct ap_collector *c, const struct ap_cpu_key *key, uint64_t ts_ns,
			uint32_t cpu, const __u64 *kstack, const __u64 *ustack,
			struct ap_cpu_record_stats *stats)
{
	__u64 ks[AP_MAX_STACK_DEPTH + 1], us[AP_MAX_STACK_DEPTH + 1];
	const struct ap_filter_event *res;
	struct ap_filter_event *ev;
	struct ap_cpu_key k;
	char tag[AP_FILTER_TAG_LEN];

	if (!c->filter)
		return record(c->profile, c->sym, key, 1, kstack, ustack, NULL, stats);
	ev = ap_filter_hook_event(c->filter);
	ap_filter_event_init(ev, AP_FILTER_EV_CPU, key->pid, key->tid, ts_ns, cpu, key->comm, 1);
	if (key->tid == 0)
		ev->flags |= AP_FILTER_F_IDLE;
	ev->sample.period_ns = ap_profile_period(c->profile);
	ap_filter_event_add_stack(ev, true, kstack, AP_MAX_STACK_DEPTH);
	ap_filter_event_add_stack(ev, false, ustack, AP_MAX_STACK_DEPTH);
	if (ap_filter_hook_apply(c, ev, &res) == AP_FILTER_DROP)
		return 0;
	if (res == ev) /* kept as it was */
		return record(c->profile, c->sym, key, 1, kstack, ustack, NULL, stats);
	/* transformed: its name, weight (samples), trimmed stacks and tag */
	k = *key;
	memset(k.comm, 0, sizeof(k.comm));
	memcpy(k.comm, res->comm, AP_FILTER_COMM_LEN < AP_TASK_COMM_LEN ? AP_FILTER_COMM_LEN :
									    AP_TASK_COMM_LEN);
	k.comm[AP_TASK_COMM_LEN - 1] = '\0';
	ap_filter_event_stack(res, true, ks, AP_MAX_STACK_DEPTH);
	ap_filter_event_stack(res, false, us, AP_MAX_STACK_DEPTH);
	memcpy(tag, res->tag, sizeof(tag));
	tag[sizeof(tag) - 1] = '\0';
	return record(c->profile, c->sym, &k, res->weight, ks, us, tag, stats);
}
