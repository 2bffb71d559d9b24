// SPDX-License-Identifier: MIT
/* Process announcements and deferred stacks from BPF (unwind_events.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "map_dump.h"
#include "unwind_defer.h"
#include "unwind_events.h"

_Static_assert(sizeof(struct ap_proc_event) == 32, "ap_proc_event layout changed");
_Static_assert(sizeof(struct ap_user_snapshot) == 32 + AP_DEFER_STACK,
	       "ap_user_snapshot layout changed");

struct ap_unwind_events {
	struct ap_unwinder *u;
	struct ap_symbolizer *sym;
	struct ap_unwind_deferq *q; /* NULL: not deferring */
	size_t payload_len;
	uint64_t lost, bad;
	uint64_t stack_bytes; /* of the deferred snapshots: BPF sends only what the stack holds */
};

struct ap_unwind_events *ap_unwind_events_new(struct ap_unwinder *u, struct ap_symbolizer *sym,
					      size_t payload_len, size_t max_queued,
					      ap_unwind_replayed_fn fn, void *ctx)
{
	struct ap_unwind_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	ev->u = u;
	ev->sym = sym;
	ev->payload_len = payload_len;
	/* the payload must leave the snapshot 8-byte aligned, as BPF lays it out */
	if (u && fn && payload_len % 8 == 0) {
		ev->q = ap_unwind_deferq_new(u, max_queued, fn, ctx);
		if (!ev->q) {
			free(ev);
			return NULL;
		}
	}
	return ev;
}

void ap_unwind_events_free(struct ap_unwind_events *ev)
{
	if (!ev)
		return;
	ap_unwind_deferq_free(ev->q);
	free(ev);
}

bool ap_unwind_events_deferring(const struct ap_unwind_events *ev)
{
	return ev && ev->q;
}

static int handle_proc_event(void *ctx, void *data, size_t size)
{
	struct ap_unwind_events *ev = ctx;
	const struct ap_proc_event *e = data;

	if (size < sizeof(*e)) {
		ev->bad++;
		return 0;
	}
	switch (e->kind) {
	case AP_PROC_NEW:
	case AP_PROC_EXEC:
		/* unwind tables first: until they are in, its events are deferred or use frame
		 * pointers */
		ap_unwinder_load_pid(ev->u, (int)e->pid);
		/* the process may already be gone: the symbolizer counts that */
		ap_symbolizer_snapshot_pid(ev->sym, (int)e->pid);
		break;
	case AP_PROC_EXIT:
		ap_unwinder_pid_exited(ev->u, (int)e->pid);
		ap_symbolizer_pid_exited(ev->sym, (int)e->pid);
		break;
	case AP_PROC_UNKNOWN_PC:
		/* it ran code outside its known mappings: a library it dlopen()ed */
		if (ap_unwinder_rescan_pid(ev->u, (int)e->pid) > 0)
			ap_symbolizer_snapshot_pid(ev->sym, (int)e->pid);
		break;
	default:
		ev->bad++;
		break;
	}
	return 0;
}

/* A deferred event: the mode's payload, then the snapshot. Queue it until its tables are in. */
static int handle_deferred(void *ctx, void *data, size_t size)
{
	struct ap_unwind_events *ev = ctx;
	const size_t head = ev->payload_len + offsetof(struct ap_user_snapshot, stack);
	const struct ap_user_snapshot *s;
	struct ap_unwinder_snapshot snap;

	if (size < head) {
		ev->bad++;
		return 0;
	}
	s = (const struct ap_user_snapshot *)((const char *)data + ev->payload_len);
	if (s->stack_len > sizeof(s->stack) || size - head < s->stack_len) {
		ev->bad++;
		return 0;
	}
	snap.pc = s->pc;
	snap.sp = s->sp;
	snap.bp = s->bp;
	snap.stack = s->stack;
	snap.stack_len = s->stack_len;
	ev->stack_bytes += s->stack_len;
	/* It was taken just now: its mappings are current. Catch up with libraries mapped
	 * since the last scan (by ld.so or dlopen), so that the replay has their tables. */
	if (ap_unwinder_refresh_pid(ev->u, (int)s->pid) > 0)
		ap_symbolizer_snapshot_pid(ev->sym, (int)s->pid);
	if (ap_unwind_deferq_push(ev->q, (int)s->pid, data, ev->payload_len, &snap))
		ev->lost++;
	return 0;
}

int ap_ring_add(struct ring_buffer **rb, int fd, int (*fn)(void *ctx, void *data, size_t size),
		void *ctx)
{
	if (!*rb) {
		*rb = ring_buffer__new(fd, fn, ctx, NULL);
		return *rb ? 0 : -errno;
	}
	return ring_buffer__add(*rb, fd, fn, ctx);
}

int ap_unwind_events_add_rings(struct ap_unwind_events *ev, struct ring_buffer **rb,
			       int proc_fd, int deferred_fd)
{
	int err = ap_ring_add(rb, proc_fd, handle_proc_event, ev);

	if (!err && ev->q)
		err = ap_ring_add(rb, deferred_fd, handle_deferred, ev);
	return err;
}

void ap_unwind_events_flush(struct ap_unwind_events *ev, bool final)
{
	if (!ev)
		return;
	/* exited processes stay until ap_unwinder_gc(): their last events are unwound first */
	ap_unwind_deferq_flush(ev->q, final ? 0 : 2);
	ap_unwinder_gc(ev->u);
}

void ap_unwind_events_get_stats(const struct ap_unwind_events *ev,
				struct ap_unwind_events_stats *out)
{
	struct ap_unwind_deferq_stats ds;

	memset(out, 0, sizeof(*out));
	if (!ev)
		return;
	ap_unwind_deferq_get_stats(ev->q, &ds);
	out->replayed = ds.replayed;
	out->complete = ds.complete;
	out->early = ds.early;
	out->lost = ev->lost;
	out->bad = ev->bad;
	out->stack_bytes = ev->stack_bytes;
}

static const char *const bpf_stat_names[AP_PROC_STAT_MAX] = {
	[AP_PROC_STAT_EVENTS_DROPPED] = "proc_events_dropped",
	[AP_PROC_STAT_DEFERRED] = "stacks_deferred",
	[AP_PROC_STAT_DEFER_DROPPED] = "stacks_deferred_dropped",
};

void ap_unwind_events_report(const struct ap_unwind_events *ev, int stats_fd,
			     struct ap_profile *p)
{
	struct ap_unwind_events_stats st;

	ap_percpu_stats_report(stats_fd, bpf_stat_names, AP_PROC_STAT_MAX, p);
	ap_unwind_events_get_stats(ev, &st);
	ap_profile_set_stat(p, "stacks_deferred_unwound", st.replayed);
	ap_profile_set_stat(p, "stacks_deferred_complete", st.complete);
	ap_profile_set_stat(p, "stacks_deferred_early", st.early);
	ap_profile_set_stat(p, "stacks_deferred_lost", st.lost);
	ap_profile_set_stat(p, "stacks_deferred_stack_bytes", st.stack_bytes);
	ap_profile_set_stat(p, "unwind_events_malformed", st.bad);
}
