// SPDX-License-Identifier: MIT
/* Process announcements and deferred stacks from BPF (unwind_events.h). */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "map_dump.h"
#include "bpf/unwind_defer.h"
#include "unwind_events.h"

_Static_assert(sizeof(struct ap_proc_event) == 32, "ap_proc_event layout changed");
_Static_assert(sizeof(struct ap_user_snapshot) == 72 + AP_DEFER_STACK,
	       "ap_user_snapshot layout changed");


/* What the watcher thread learnt of a process, for the symbolizer (main thread). */
struct proc_note {
	struct proc_note *next;
	int pid;
	bool exited;
	bool exec; /* the old image's mappings go first */
	struct ap_maps_capture *maps; /* NULL: nothing new (or exited) */
};

struct ap_unwind_events {
	struct ap_unwinder *u;
	struct ap_symbolizer *sym;
	struct ap_unwind_deferq *q; /* NULL: not deferring */
	size_t payload_len;
	uint64_t lost, bad;
	uint64_t stack_bytes; /* of the deferred snapshots: BPF sends only what the stack holds */

	/* process events are read by their own thread (see handle_proc_event) */
	struct ring_buffer *proc_rb;
	pthread_t watcher;
	bool watcher_ok;
	bool stop; /* read and written atomically */
	pthread_mutex_t lock; /* the notes */
	struct proc_note *notes, **notes_tail;
	uint64_t late_ms_max; /* the most a process event waited to be read */
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
	pthread_mutex_init(&ev->lock, NULL);
	ev->notes_tail = &ev->notes;
	/* the payload must leave the snapshot 8-byte aligned, as BPF lays it out */
	if (u && fn && payload_len % 8 == 0) {
		ev->q = ap_unwind_deferq_new(u, max_queued, fn, ctx);
		if (!ev->q) {
			pthread_mutex_destroy(&ev->lock);
			free(ev);
			return NULL;
		}
	}
	return ev;
}

void ap_unwind_events_detach(struct ap_unwind_events *ev)
{
	if (!ev)
		return;
	if (ev->watcher_ok) {
		__atomic_store_n(&ev->stop, true, __ATOMIC_RELEASE);
		pthread_join(ev->watcher, NULL);
		ev->watcher_ok = false;
		ev->stop = false;
	}
	ring_buffer__free(ev->proc_rb);
	ev->proc_rb = NULL;
}

void ap_unwind_events_free(struct ap_unwind_events *ev)
{
	if (!ev)
		return;
	ap_unwind_events_detach(ev);
	while (ev->notes) {
		struct proc_note *n = ev->notes;

		ev->notes = n->next;
		ap_maps_capture_free(n->maps);
		free(n);
	}
	pthread_mutex_destroy(&ev->lock);
	ap_unwind_deferq_free(ev->q);
	free(ev);
}

bool ap_unwind_events_deferring(const struct ap_unwind_events *ev)
{
	return ev && ev->q;
}

/* For the symbolizer, in order: the mappings of pid as they are now (when it is alive), its
 * exec (the old mappings go, even when the new ones cannot be read), or its exit. */
static void note(struct ap_unwind_events *ev, int pid, bool exited, bool exec)
{
	struct proc_note *n = calloc(1, sizeof(*n));

	if (!n)
		return; /* the symbolizer reads its maps itself when it meets the pid */
	n->pid = pid;
	n->exited = exited;
	n->exec = exec;
	if (!exited && ap_maps_capture(pid, &n->maps) && !exec) {
		free(n); /* gone already: the symbolizer counts it when it meets the pid */
		return;
	}
	pthread_mutex_lock(&ev->lock);
	__atomic_store_n(ev->notes_tail, n, __ATOMIC_RELEASE); /* sync() peeks without the lock */
	ev->notes_tail = &n->next;
	pthread_mutex_unlock(&ev->lock);
}

/*
 * On the watcher thread. A process's tables and mappings must be read while it lives: a
 * compiler or a shell command often lives a few tens of milliseconds, and the main thread
 * can be busy that long (symbolizing a big new binary, writing a drain). So process events
 * have their own thread: the unwinder is thread-safe; the symbolizer is not, and gets the
 * mappings read here through notes, which ap_unwind_events_sync() hands it.
 */
static int handle_proc_event(void *ctx, void *data, size_t size)
{
	struct ap_unwind_events *ev = ctx;
	const struct ap_proc_event *e = data;
	uint64_t late_ms;

	if (size < sizeof(*e)) {
		__atomic_fetch_add(&ev->bad, 1, __ATOMIC_RELAXED);
		return 0;
	}
	late_ms = (ap_mono_ns() - e->ts_ns) / 1000000;
	if (late_ms > __atomic_load_n(&ev->late_ms_max, __ATOMIC_RELAXED) && late_ms < 3600 * 1000)
		__atomic_store_n(&ev->late_ms_max, late_ms, __ATOMIC_RELAXED);
	switch (e->kind) {
	case AP_PROC_NEW:
		/* its mappings first (a fraction of a millisecond): loading its tables takes
		 * milliseconds, and a process announced late (a CUDA program's first call, in a
		 * constructor) may be gone by then. Until its tables are in, its events are
		 * deferred or use frame pointers. */
		note(ev, (int)e->pid, false, false);
		ap_unwinder_load_pid(ev->u, (int)e->pid);
		break;
	case AP_PROC_EXEC:
		/* even when it is gone already: the old image's mappings would be wrong */
		ap_unwinder_exec_pid(ev->u, (int)e->pid);
		note(ev, (int)e->pid, false, true);
		break;
	case AP_PROC_EXIT:
		ap_unwinder_pid_exited(ev->u, (int)e->pid);
		note(ev, (int)e->pid, true, false);
		break;
	case AP_PROC_UNKNOWN_PC:
		/* it ran code outside its known mappings: a library it dlopen()ed */
		if (ap_unwinder_rescan_pid(ev->u, (int)e->pid) > 0)
			note(ev, (int)e->pid, false, false);
		break;
	default:
		__atomic_fetch_add(&ev->bad, 1, __ATOMIC_RELAXED);
		break;
	}
	return 0;
}

static void *watcher_main(void *arg)
{
	struct ap_unwind_events *ev = arg;

	while (!__atomic_load_n(&ev->stop, __ATOMIC_ACQUIRE)) {
		int n = ring_buffer__poll(ev->proc_rb, 50);

		if (n < 0 && n != -EINTR) {
			ap_warn("process events: %s", strerror(-n));
			break;
		}
	}
	ring_buffer__consume(ev->proc_rb); /* the last ones */
	return NULL;
}

void ap_unwind_events_sync(struct ap_unwind_events *ev)
{
	struct proc_note *n;

	if (!ev || !__atomic_load_n(&ev->notes, __ATOMIC_ACQUIRE)) /* the common case: nothing */
		return;
	pthread_mutex_lock(&ev->lock);
	n = ev->notes;
	ev->notes = NULL;
	ev->notes_tail = &ev->notes;
	pthread_mutex_unlock(&ev->lock);
	while (n) {
		struct proc_note *next = n->next;

		if (n->exec)
			ap_symbolizer_pid_exec(ev->sym, n->pid);
		if (n->exited)
			ap_symbolizer_pid_exited(ev->sym, n->pid);
		else if (n->maps)
			ap_symbolizer_snapshot_capture(ev->sym, n->pid, n->maps);
		ap_maps_capture_free(n->maps);
		free(n);
		n = next;
	}
}

/* A deferred event: the mode's payload, then the snapshot. Queue it until its tables are in. */
static int handle_deferred(void *ctx, void *data, size_t size)
{
	struct ap_unwind_events *ev = ctx;
	const size_t head = ev->payload_len + offsetof(struct ap_user_snapshot, stack);
	const struct ap_user_snapshot *s;
	struct ap_unwinder_snapshot snap;

	if (size < head || !ev->q) {
		__atomic_fetch_add(&ev->bad, 1, __ATOMIC_RELAXED);
		return 0;
	}
	s = (const struct ap_user_snapshot *)((const char *)data + ev->payload_len);
	if (s->stack_len > sizeof(s->stack) || size - head < s->stack_len) {
		__atomic_fetch_add(&ev->bad, 1, __ATOMIC_RELAXED);
		return 0;
	}
	snap.pc = s->pc;
	snap.sp = s->sp;
	snap.bp = s->bp;
	snap.stack = s->stack;
	snap.stack_len = s->stack_len;
	ev->stack_bytes += s->stack_len;
	/* what the watcher learnt first: an exit must not overtake the snapshot below */
	ap_unwind_events_sync(ev);
	/* It was taken just now: its mappings are current. Catch up with libraries mapped
	 * since the last scan (by ld.so or dlopen), so that the replay has their tables. */
	if (ap_unwinder_refresh_pid(ev->u, (int)s->pid) > 0)
		ap_symbolizer_snapshot_pid(ev->sym, (int)s->pid);
	/* a library it mapped since the last scan, and it may be gone already: BPF named the
	 * file of the pc, which other processes have shown us */
	if (s->pc_vma.ino && s->pc_vma.end > s->pc_vma.start) {
		const struct ap_snap_vma *v = &s->pc_vma;
		uint64_t off = v->pgoff * (uint64_t)getpagesize();

		ap_unwinder_add_mapping(ev->u, (int)s->pid, v->start, v->end, off, v->dev, v->ino);
		ap_symbolizer_add_mapping(ev->sym, (int)s->pid, v->start, v->end, off,
					  makedev(v->dev >> 20, v->dev & 0xfffff), v->ino);
	}
	if (ap_unwind_deferq_push(ev->q, (int)s->pid, data, ev->payload_len, &snap))
		ev->lost++;
	return 0;
}

/*
 * The ring budget. libbpf 1.1 has no bounded consume: ring_buffer__consume() reads until the
 * rings are empty, which a fast enough producer never lets happen. Each ring's callback goes
 * through a trampoline that counts records against a thread-local budget and, when it is
 * spent, returns RING_YIELD after handling the record: libbpf has already moved past it and
 * stops there, and ap_unwind_events_consume() takes RING_YIELD as "more to read later".
 */
#define RING_YIELD (-ECANCELED)
#define RING_CALLBACKS 64 /* rings added per process: 3 per collector in practice */

struct ring_cb {
	int (*fn)(void *ctx, void *data, size_t size);
	void *ctx;
};

static struct ring_cb ring_cbs[RING_CALLBACKS];
static unsigned int ring_ncbs;
static __thread bool ring_bounded;
static __thread uint64_t ring_left;

void ap_ring_budget(uint64_t records)
{
	ring_bounded = records != 0;
	ring_left = records;
}

static int ring_trampoline(void *ctx, void *data, size_t size)
{
	const struct ring_cb *cb = ctx;
	int ret = cb->fn(cb->ctx, data, size);

	/* libbpf has moved past this record already: handle it, then stop when spent (a spent
	 * budget still lets each read take one record, so nothing waits forever) */
	if (ret == 0 && ring_bounded) {
		if (ring_left)
			ring_left--;
		if (!ring_left)
			return RING_YIELD;
	}
	return ret;
}

int ap_ring_add(struct ring_buffer **rb, int fd, int (*fn)(void *ctx, void *data, size_t size),
		void *ctx)
{
	unsigned int i = __atomic_fetch_add(&ring_ncbs, 1, __ATOMIC_RELAXED);

	/* past the pool (never in practice): the ring is read without a bound */
	if (i < RING_CALLBACKS) {
		ring_cbs[i].fn = fn;
		ring_cbs[i].ctx = ctx;
		fn = ring_trampoline;
		ctx = &ring_cbs[i];
	}
	if (!*rb) {
		*rb = ring_buffer__new(fd, fn, ctx, NULL);
		return *rb ? 0 : -errno;
	}
	return ring_buffer__add(*rb, fd, fn, ctx);
}

int ap_unwind_events_add_rings(struct ap_unwind_events *ev, struct ring_buffer **rb,
			       int proc_fd, int deferred_fd)
{
	int err;

	if (ev->proc_rb)
		return -EBUSY;
	err = ap_ring_add(&ev->proc_rb, proc_fd, handle_proc_event, ev);
	/* without deferring, still one ring (empty) for the collector's poll loop to wait on */
	if (!err && (ev->q || !*rb))
		err = ap_ring_add(rb, deferred_fd, handle_deferred, ev);
	if (err)
		return err;
	err = pthread_create(&ev->watcher, NULL, watcher_main, ev);
	if (err)
		return -err;
	ev->watcher_ok = true;
	return 0;
}

int ap_unwind_events_consume(struct ap_unwind_events *ev, struct ring_buffer *rb)
{
	int n;

	ap_unwind_events_sync(ev);
	n = ring_buffer__consume(rb);
	ap_unwind_events_sync(ev);
	return n < 0 && n != RING_YIELD ? n : 0;
}

void ap_unwind_events_flush(struct ap_unwind_events *ev, bool final)
{
	if (!ev)
		return;
	ap_unwind_events_sync(ev);
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
	out->bad = __atomic_load_n(&ev->bad, __ATOMIC_RELAXED);
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
	ap_profile_set_stat(p, "proc_events_latest_ms",
			    ev ? __atomic_load_n(&ev->late_ms_max, __ATOMIC_RELAXED) : 0);
}
