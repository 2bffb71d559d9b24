/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of WebAssembly event filters (--filter, docs/filters.md): one filter
 * instance per active mode, loaded before sampling starts, and the per-event call every
 * collector makes before it aggregates an event.
 *
 *	ap_filter_hook_new(opts, "cpu", sym, &c->filter, err, sizeof(err));  // exit 2 on error
 *	...
 *	struct ap_filter_event *ev = ap_filter_hook_event(c->filter);        // scratch record
 *	ap_filter_event_init(ev, AP_FILTER_EV_CPU, pid, tid, ts, cpu, comm, 1);
 *	ap_filter_event_add_stack(ev, true, kstack, depth);                  // kernel first
 *	ap_filter_event_add_stack(ev, false, ustack, depth);
 *	if (ap_filter_hook_apply(c, ev, &res) == AP_FILTER_DROP)
 *		return;                                                       // counted
 *	... aggregate *res (ev itself, or the transformed copy) ...
 *
 * Everything runs on the agent's main thread (the ring buffer callbacks).
 */
#ifndef AP_FILTER_HOOK_H
#define AP_FILTER_HOOK_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "filter/filter.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"

struct ap_collector;
struct ap_filter_hook;

/*
 * Load opts->filter for `mode` ("cpu", "lock", "syscall"): names for env.frame_symbol and
 * env.frame_module come from `sym` (kept, not owned), messages go to the agent's log, and
 * env.agent_pid is this process. An aot compilation happens here. Returns 0 with *out set
 * (free with ap_filter_hook_free), or -errno with "FILE: reason" in err.
 */
int ap_filter_hook_new(const struct ap_agent_opts *opts, const char *mode,
		       struct ap_symbolizer *sym, struct ap_filter_hook **out, char *err,
		       size_t errlen);
void ap_filter_hook_free(struct ap_filter_hook *h);

/* A scratch record owned by the hook, for the collector to fill (valid until the next call;
 * NULL for a NULL hook). */
struct ap_filter_event *ap_filter_hook_event(struct ap_filter_hook *h);

/*
 * Run c->filter on ev. Returns AP_FILTER_KEEP with *result = ev, or the transformed record
 * (owned by the hook, valid until the next call), or AP_FILTER_DROP. Without a filter every
 * event is kept unchanged. Traps are resolved by --filter-on-error and counted by the engine.
 */
int ap_filter_hook_apply(struct ap_collector *c, struct ap_filter_event *ev,
			 const struct ap_filter_event **result);

/* Add the counters to p's stats: filter_events_seen, filter_kept, filter_dropped,
 * filter_transformed, filter_traps, filter_traps_<reason>, filter_fuel_exhausted,
 * filter_fuel_used, filter_time_ns, filter_log_messages, filter_log_suppressed. */
void ap_filter_hook_report(const struct ap_filter_hook *h, struct ap_profile *p);
/* The counters for humans ("filter FILE (mode, engine): ..." then indented lines). */
void ap_filter_hook_print(const struct ap_filter_hook *h, FILE *out);

/* ---- building records (pure) ---- */

/* Reset ev to an event without frames; comm is copied up to its NUL (at most 15 bytes). */
void ap_filter_event_init(struct ap_filter_event *ev, uint32_t type, uint32_t pid, uint32_t tid,
			  uint64_t timestamp_ns, uint32_t cpu, const char *comm, uint64_t weight);
/*
 * Append a stack (leaf first, ends at the first zero or after max frames; NULL: none) as
 * kernel or user frames; add the kernel stack first. A stack of max frames (the capture
 * depth) sets the matching *_TRUNCATED flag.
 */
void ap_filter_event_add_stack(struct ap_filter_event *ev, bool kernel, const __u64 *ips,
			       size_t max);
/* Copy ev's kernel or user frames to out (room for max + 1), zero-terminated, as the stack
 * maps hold them. Returns the frame count. */
size_t ap_filter_event_stack(const struct ap_filter_event *ev, bool kernel, __u64 *out,
			     size_t max);
/* comm of ev as a NUL-terminated string (buf has AP_FILTER_COMM_LEN bytes). Returns buf. */
const char *ap_filter_event_comm(const struct ap_filter_event *ev, char *buf);

#endif
