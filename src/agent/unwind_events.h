/* SPDX-License-Identifier: MIT */
/*
 * The agent side of src/bpf/proc_announce.h, shared by the collectors whose BPF programs walk
 * user stacks with the CFI tables (cpu, lock, syscall):
 *  - process events: a process's first event, exec, exit and unknown pcs load (or re-scan, or
 *    drop) its unwind tables and read its mappings at once, on a thread of their own (the
 *    symbolizer gets those at the next ap_unwind_events_sync);
 *  - deferred events: an event whose stack BPF could not walk for want of tables arrives as
 *    the mode's payload (payload_len bytes) + struct ap_user_snapshot; it is queued until the
 *    process's tables are in, unwound with them, and handed back to the collector's
 *    `replayed` callback with its payload and user stack, to be recorded like any other.
 */
#ifndef AP_UNWIND_EVENTS_H
#define AP_UNWIND_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/profile.h"
#include "symbol/symbolizer.h"
#include "unwind/unwinder.h"

struct ring_buffer;
struct ap_unwind_events;

struct ap_unwind_events_stats {
	uint64_t replayed; /* deferred events unwound here */
	uint64_t complete; /* ... down to the outermost frame */
	uint64_t early;	   /* ... before their tables were ready (queue full, waited too long) */
	uint64_t lost;	   /* ... that could not be queued (no memory): never recorded */
	uint64_t bad;	   /* malformed records (never expected) */
	uint64_t stack_bytes; /* user stack bytes the deferred events carried */
};

/*
 * u: the collector's unwinder, or NULL (no tables: process events still keep the symbolizer
 * current, nothing is deferred). fn/ctx: where replayed events go (NULL fn: nothing is
 * deferred); at most max_queued wait at a time, more are unwound at once with the tables
 * there are. Returns NULL with errno set. Free with ap_unwind_events_free(), before u.
 */
struct ap_unwind_events *ap_unwind_events_new(struct ap_unwinder *u, struct ap_symbolizer *sym,
					      size_t payload_len, size_t max_queued,
					      ap_unwind_replayed_fn fn, void *ctx);
void ap_unwind_events_free(struct ap_unwind_events *ev);

/* Whether deferred events are read (the loader sets cfg_defer_unwind to this). */
bool ap_unwind_events_deferring(const struct ap_unwind_events *ev);

/* Read ring buffer map `fd` with fn(ctx) through *rb, which is created when NULL (a
 * collector's rings share one epoll fd). Returns 0 or -errno. */
int ap_ring_add(struct ring_buffer **rb, int fd, int (*fn)(void *ctx, void *data, size_t size),
		void *ctx);

/* Read the BPF object's proc_events ring buffer (fd proc_fd) and, when deferring, its
 * unwind_deferred one (deferred_fd) through *rb, which is created when NULL. Returns 0 or
 * -errno. Add these before the mode's own rings: a reader goes through them in order, and a
 * new process's tables should not wait behind a backlog of the mode's events. */
int ap_unwind_events_add_rings(struct ap_unwind_events *ev, struct ring_buffer **rb,
			       int proc_fd, int deferred_fd);

/* Stop reading the rings added above (before their BPF object goes; they may be added
 * again, from a new one). */
void ap_unwind_events_detach(struct ap_unwind_events *ev);

/* Hand the symbolizer what the process-event thread learnt (new mappings, exits), in order.
 * Call after reading the collector's rings and before symbolizing what they held. */
void ap_unwind_events_sync(struct ap_unwind_events *ev);

/* Read the collector's rings (rb) with the symbolizer kept current around them: what the
 * process-event thread learnt before the events, and what came meanwhile. ev may be NULL.
 * Reads until the rings are empty, or until the calling thread's ring budget (below) is
 * spent. Returns 0 or -errno. */
int ap_unwind_events_consume(struct ap_unwind_events *ev, struct ring_buffer *rb);

/* At most `records` records per read of rings added with ap_ring_add on this thread (0: no
 * bound, the default). The event loop sets one between drains, so that producers faster than
 * the agent (an overloaded host) cannot keep it from its next drain or its deadline: what is
 * left is read by the next call, and the drains themselves read everything. */
void ap_ring_budget(uint64_t records);

/* At each drain, after the ring buffers were read: unwind the deferred events whose tables
 * are ready or that waited two drains (all of them when `final`: the probes are gone), then
 * forget exited processes' tables. */
void ap_unwind_events_flush(struct ap_unwind_events *ev, bool final);

void ap_unwind_events_get_stats(const struct ap_unwind_events *ev,
				struct ap_unwind_events_stats *out);

/* Into the profile's stats: the BPF side's counters (per-CPU `proc_stats`, fd stats_fd:
 * proc_events_dropped, stacks_deferred, stacks_deferred_dropped) and the agent's
 * (stacks_deferred_unwound, _complete, _early, _lost). ev may be NULL (zeros). */
void ap_unwind_events_report(const struct ap_unwind_events *ev, int stats_fd,
			     struct ap_profile *p);

#endif
