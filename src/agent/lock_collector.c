// SPDX-License-Identifier: MIT
/* Lock contention: owns the lock skeleton, its attachments, its drains and the lock table. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "filter_hook.h"
#include "lock.skel.h"
#include "lock_record.h"
#include "map_dump.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "unwind_events.h"
#include "unwind/unwinder.h"

_Static_assert(sizeof(struct ap_lock_key) == 64, "ap_lock_key layout changed");
_Static_assert(sizeof(struct ap_lock_stack_ips) == 8 * AP_LOCK_STACK_DEPTH,
	       "ap_lock_stack_ips layout changed");
_Static_assert(sizeof(struct ap_lock_val) == 64 + 8 * AP_LOCK_HIST_SLOTS,
	       "ap_lock_val layout changed");
_Static_assert(sizeof(struct ap_lock_holder_key) == 24, "ap_lock_holder_key layout changed");
_Static_assert(sizeof(struct ap_lock_holder_val) == 32, "ap_lock_holder_val layout changed");
_Static_assert(sizeof(struct ap_lock_comm) == AP_LOCK_COMM_LEN, "ap_lock_comm layout changed");
_Static_assert(AP_LOCK_COMM_LEN == AP_COMM_LEN, "comm lengths differ");
_Static_assert(sizeof(struct ap_lock_event) == sizeof(struct ap_lock_key) + 40,
	       "ap_lock_event layout changed");
_Static_assert(offsetof(struct ap_lock_deferred, snap) ==
			       sizeof(struct ap_lock_event) + 8 * AP_LOCK_STACK_DEPTH &&
		       offsetof(struct ap_lock_deferred, snap) % 8 == 0,
	       "ap_lock_deferred layout changed");

#define WAITS_ENTRIES 8192u
#define HOLDERS_ENTRIES 4096u
#define STACK_ENTRIES 4096u
/* lock_events when it only carries spills of full waits/holders maps (104-byte records + 8
 * of header: ~4,700 waits between two reads of the poll loop); per-event mode keeps 4 MiB. */
#define SPILL_RING_BYTES (512u << 10)
#define MAX_LINKS 10
/* Waits of a new process before its tables are in (~9.3 KiB each): a contended lock can
 * block thousands of times a second, and the tables take 10-30 ms (compiling libc and the
 * binary) while the agent also reads the other ring buffers. */
#define DEFER_RING_BYTES (2u << 20)
#define DEFER_QUEUE 256u

struct lock_collector {
	struct lock_bpf *skel;
	struct bpf_link *links[MAX_LINKS];
	size_t nlinks;
	const char *futex_hook; /* "tracepoint" or "raw_syscalls" */
	char klock_status[160]; /* "on", or why kernel locks are not traced */
	struct ap_lock_table *table;
	struct ap_lock_names *names;
	struct ap_lock_record_stats rec;
	uint64_t drain_errors;
	bool histograms;
	__u32 waits_entries, holders_entries; /* of each waits_<slot> / holders_<slot> map */
	struct ring_buffer *events; /* lock_events, process events, deferred waits */
	struct ap_unwinder *unwinder; /* CFI tables for the BPF stack walker; NULL: FP only */
	struct ap_unwind_events *uev; /* process events, waits waiting for their tables */
	bool stopped;		      /* probes detached: replay every deferred wait */
	/* scratch for one drain */
	struct ap_map_dump waits_dump; /* scratch for one drain */
	struct ap_map_dump holders_dump;
	__u64 kstack[AP_LOCK_STACK_DEPTH];
	__u64 ustack[AP_LOCK_STACK_DEPTH];
};

static void explain_open_error(int err, char *msg, size_t len)
{
	ap_explain_bpf_load_error(err, "lock", "they need BPF with BTF", msg, len);
}

/* Comm of a thread that released a contended futex, for holders that are gone. */
static void waker_comm(void *ctx, uint32_t tid, char *buf, size_t len)
{
	struct lock_collector *lc = ctx;
	struct ap_lock_comm c;

	if (bpf_map_lookup_elem(bpf_map__fd(lc->skel->maps.waker_comms), &tid, &c) == 0)
		snprintf(buf, len, "%.*s", AP_LOCK_COMM_LEN, c.comm);
}

static int add_link(struct lock_collector *lc, struct bpf_program *prog)
{
	struct bpf_link *l;

	if (lc->nlinks == MAX_LINKS)
		return -E2BIG;
	l = bpf_program__attach(prog);
	if (!l)
		return -errno;
	lc->links[lc->nlinks++] = l;
	return 0;
}

static void drop_links_from(struct lock_collector *lc, size_t from)
{
	while (lc->nlinks > from)
		bpf_link__destroy(lc->links[--lc->nlinks]);
}

/* Whether tracefs has syscalls:<event>, where libbpf reads its id to attach (debugfs's
 * tracing/ first, as libbpf, then /sys/kernel/tracing). */
static bool have_syscall_event(const char *event)
{
	static const char *const roots[] = { "/sys/kernel/debug/tracing", "/sys/kernel/tracing" };
	char path[128];

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/syscalls/%s/id", roots[i], event);
		if (access(path, R_OK) == 0)
			return true;
	}
	return false;
}

/*
 * Futex hooks, chosen before load so that the verifier checks one pair (~0.1 s a futex_exit
 * body): the per-syscall tracepoints when tracefs has them (the programs then run for futex
 * calls only), else the raw syscall tracepoints filtered by number. AP_LOCK_FUTEX_HOOK
 * ("tracepoint", "raw_syscalls") forces one, for tests.
 */
static bool want_futex_tracepoints(void)
{
	const char *force = getenv("AP_LOCK_FUTEX_HOOK");

	if (force && *force)
		return strcmp(force, "raw_syscalls") != 0;
	if (have_syscall_event("sys_enter_futex") && have_syscall_event("sys_exit_futex"))
		return true;
	ap_debug("lock: no syscalls:sys_enter_futex in tracefs (is it mounted?), using raw "
		 "syscall tracepoints");
	return false;
}

/* The futex_waitv (5.16+) or futex_wait (6.7+) events, to the same tracepoint programs:
 * optional. */
static void attach_futex_event(struct lock_collector *lc, const char *name)
{
	struct lock_bpf *s = lc->skel;
	size_t mark = lc->nlinks;
	char enter[48], exit[48];
	struct bpf_link *l;

	snprintf(enter, sizeof(enter), "sys_enter_%s", name);
	snprintf(exit, sizeof(exit), "sys_exit_%s", name);
	if (!have_syscall_event(enter) || !have_syscall_event(exit) || lc->nlinks + 2 > MAX_LINKS)
		return;
	l = bpf_program__attach_tracepoint(s->progs.futex_exit_tp, "syscalls", exit);
	if (l) {
		lc->links[lc->nlinks++] = l;
		l = bpf_program__attach_tracepoint(s->progs.futex_enter_tp, "syscalls", enter);
	}
	if (!l) {
		ap_debug("lock: cannot attach to syscalls:%s: %s", enter, strerror(errno));
		drop_links_from(lc, mark);
		return;
	}
	lc->links[lc->nlinks++] = l;
}

/* The pair loaded, exit first: every wait whose start is seen has its end seen. */
static int attach_futex(struct lock_collector *lc, bool tracepoints, char *msg, size_t len)
{
	struct lock_bpf *s = lc->skel;
	size_t mark = lc->nlinks;
	int err;

	err = add_link(lc, tracepoints ? s->progs.futex_exit_tp : s->progs.futex_exit_raw);
	if (!err)
		err = add_link(lc, tracepoints ? s->progs.futex_enter_tp : s->progs.futex_enter_raw);
	if (err) {
		drop_links_from(lc, mark);
		snprintf(msg, len, "cannot attach to the futex syscall tracepoints (%s): %s",
			 tracepoints ? "syscalls:sys_*_futex" : "raw_syscalls", strerror(-err));
		return err;
	}
	lc->futex_hook = tracepoints ? "tracepoint" : "raw_syscalls";
	if (tracepoints) {
		attach_futex_event(lc, "futex_waitv");
		attach_futex_event(lc, "futex_wait");
	}
	return 0;
}

/*
 * A test and tuning knob, not an option: map entries from the environment variable `name`,
 * else `def`. The tests shrink the waits and holders maps with it to make them spill
 * (APERTURE_LOCK_WAITS_ENTRIES, APERTURE_LOCK_HOLDERS_ENTRIES). Returns 0 or -EINVAL.
 */
static int env_entries(const char *name, __u32 def, __u32 *out, char *msg, size_t len)
{
	const char *v = getenv(name);
	uint64_t n;

	*out = def;
	if (!v || !*v)
		return 0;
	if (ap_parse_u64(v, 1, 1u << 24, &n)) {
		snprintf(msg, len, "%s=%s: expected a number of map entries in 1..%u", name, v,
			 1u << 24);
		return -EINVAL;
	}
	*out = (__u32)n;
	ap_debug("lock: %s=%u", name, *out);
	return 0;
}

static int fill_filters(struct lock_collector *lc, const struct ap_agent_opts *opts, char *msg,
			size_t len)
{
	__u8 yes = 1;

	for (size_t i = 0; i < opts->npids; i++) {
		__u32 pid = (__u32)opts->pids[i];

		if (bpf_map_update_elem(bpf_map__fd(lc->skel->maps.target_pids), &pid, &yes, 0)) {
			snprintf(msg, len, "cannot add pid %u to the filter: %s", pid,
				 strerror(errno));
			return -errno;
		}
	}
	for (size_t i = 0; i < opts->ncomms; i++) {
		struct ap_lock_comm c = { { 0 } };

		strncpy(c.comm, opts->comms[i], sizeof(c.comm) - 1);
		if (bpf_map_update_elem(bpf_map__fd(lc->skel->maps.target_comms), &c, &yes, 0)) {
			snprintf(msg, len, "cannot add comm '%s' to the filter: %s", c.comm,
				 strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* The holder part of a record: `count` blocked waits of total_ns, or one EAGAIN return. */
static int record_holder(struct lock_collector *lc, const struct ap_lock_event *e,
			 uint64_t count, uint64_t total_ns)
{
	struct ap_lock_holder_key hk = {
		.addr = e->key.addr,
		.pid = e->key.pid,
		.holder_tid = e->holder_tid,
		.kind = e->key.kind,
	};
	struct ap_lock_holder_val hv = { 0 };

	if (ap_lock_kind_is_kernel(e->key.kind))
		return 0; /* not tracked: the kernel side never sends one */
	if (e->parts & AP_LOCK_EV_EAGAIN) {
		hv.eagain = 1;
	} else {
		hv.count = count;
		hv.wait_ns = total_ns;
	}
	return ap_lock_record_holder(lc->table, &hk, &hv);
}

/*
 * A record from lock_events or a replayed deferred wait: in per-event mode one wait that
 * blocked, through the --filter if any; else what did not fit in a full waits or holders map
 * (e->parts). Either way into the same table and profile the in-kernel aggregates fill, as
 * drains add them.
 */
static int record_wait(struct ap_collector *c, const struct ap_lock_event *e, const __u64 *ks,
		       const __u64 *us)
{
	struct lock_collector *lc = c->priv;
	struct ap_lock_key key = e->key;
	uint64_t count = 1, total = e->wait_ns;
	const struct ap_filter_event *res;
	struct ap_filter_event *ev;
	struct ap_lock_val val;
	char tag[AP_FILTER_TAG_LEN] = "";
	int err;

	/* a full holders map's overflow: attribution only, which no filter sees in the kernel
	 * map either */
	if (!(e->parts & AP_LOCK_EV_WAIT))
		return e->parts & AP_LOCK_EV_HOLDER ? record_holder(lc, e, 1, e->wait_ns) : 0;
	if (c->filter) {
		ev = ap_filter_hook_event(c->filter);
		ap_filter_event_init(ev, AP_FILTER_EV_LOCK, key.pid, key.tid, e->ts_ns, e->cpu,
				     key.comm, e->wait_ns);
		ev->lock.addr = key.addr;
		ev->lock.wait_ns = e->wait_ns;
		ev->lock.kind = key.kind;
		ev->lock.flags = key.flags;
		ev->lock.holder_tid = e->holder_tid;
		ev->lock.lclass = key.lclass;
		ap_filter_event_add_stack(ev, true, ks, AP_LOCK_STACK_DEPTH);
		ap_filter_event_add_stack(ev, false, us, AP_LOCK_STACK_DEPTH);
		if (ap_filter_hook_apply(c, ev, &res) == AP_FILTER_DROP)
			return 0;
		if (res != ev) {
			/* transformed: weight is wait time; a scaled one stands for more waits */
			total = res->weight;
			count = e->wait_ns ? (res->weight + e->wait_ns / 2) / e->wait_ns : 1;
			if (!count)
				count = 1;
			memset(key.comm, 0, sizeof(key.comm));
			memcpy(key.comm, res->comm, AP_LOCK_COMM_LEN - 1);
			memcpy(tag, res->tag, sizeof(tag) - 1);
			ap_filter_event_stack(res, true, lc->kstack, AP_LOCK_STACK_DEPTH);
			ap_filter_event_stack(res, false, lc->ustack, AP_LOCK_STACK_DEPTH);
			ks = lc->kstack;
			us = lc->ustack;
		}
	}
	ap_lock_val_of_wait(&val, e->wait_ns, e->ret, count, total);
	err = ap_lock_record_tagged(c->profile, c->sym, lc->table, &key, &val, ks, us, tag,
				    &lc->rec);
	if (!err && (e->parts & AP_LOCK_EV_HOLDER))
		err = record_holder(lc, e, count, total);
	return err;
}

static int handle_wait_event(void *ctx, void *data, size_t size)
{
	struct ap_collector *c = ctx;
	struct lock_collector *lc = c->priv;
	const struct ap_lock_event *e = data;
	const __u64 *ks = NULL, *us = NULL;
	int stacks_fd;

	if (size < sizeof(*e))
		return 0;
	/* the drain that flips away from e->slot reads the ring before it clears the stacks */
	stacks_fd = bpf_map__fd(e->slot ? lc->skel->maps.stacks_1 : lc->skel->maps.stacks_0);
	if (e->key.kern_stack &&
	    bpf_map_lookup_elem(stacks_fd, &e->key.kern_stack, lc->kstack) == 0)
		ks = lc->kstack;
	if (e->key.user_stack &&
	    bpf_map_lookup_elem(stacks_fd, &e->key.user_stack, lc->ustack) == 0)
		us = lc->ustack;
	if (record_wait(c, e, ks, us))
		lc->drain_errors++;
	return 0;
}

/* A deferred wait (struct ap_lock_deferred) unwound here: recorded like a per-event one, with
 * the kernel stack it carries and the user stack just unwound. */
static void record_replayed(void *ctx, const void *payload, const uint64_t *ips, size_t n,
			    uint32_t status)
{
	struct ap_collector *c = ctx;
	struct lock_collector *lc = c->priv;
	const struct ap_lock_deferred *d = payload; /* the fields before snap are there */

	(void)status;
	if (record_wait(c, &d->ev, d->ev.key.kern_stack && d->kstack[0] ? d->kstack : NULL,
			n ? (const __u64 *)ips : NULL))
		lc->drain_errors++;
}

/*
 * With unwind tables: a process's first wait announces it (the agent loads its tables at
 * once) and its waits before the tables are in are unwound here (unwind_events.h). Without:
 * none of it (the programs stay unloaded, the ring buffers at one page).
 */
static int setup_unwind_events(struct ap_collector *c, struct lock_collector *lc)
{
	struct lock_bpf *s = lc->skel;
	__u32 page = (__u32)getpagesize();

	if (lc->unwinder && !lc->uev) { /* made once, kept when the programs are reloaded */
		lc->uev = ap_unwind_events_new(lc->unwinder, c->sym,
					       offsetof(struct ap_lock_deferred, snap), DEFER_QUEUE,
					       record_replayed, c);
		if (!lc->uev)
			return -errno;
	}
	s->rodata->cfg_defer_unwind = ap_unwind_events_deferring(lc->uev);
	bpf_map__set_max_entries(s->maps.unwind_deferred,
				 s->rodata->cfg_defer_unwind ? DEFER_RING_BYTES : page);
	if (!lc->uev) {
		bpf_map__set_max_entries(s->maps.proc_events, page);
		bpf_program__set_autoload(s->progs.lock_exec, false);
		bpf_program__set_autoload(s->progs.lock_exit, false);
	}
	return 0;
}

/* Exec/exit of announced processes: without them an exec'd process keeps its old tables
 * until a pc outside them asks for a re-scan, and exited ones go at the next gc. */
static void attach_proc_hooks(struct lock_collector *lc)
{
	if (!lc->uev)
		return;
	if (add_link(lc, lc->skel->progs.lock_exec))
		ap_warn("lock: sched_process_exec tracking unavailable (%s): processes that exec "
			"are re-scanned late", strerror(errno));
	if (add_link(lc, lc->skel->progs.lock_exit))
		ap_warn("lock: sched_process_exit tracking unavailable (%s)", strerror(errno));
}

/* Back to before lock_load_attach(), to try again. */
static void lock_unload(struct lock_collector *lc)
{
	drop_links_from(lc, 0);
	ap_unwind_events_detach(lc->uev);
	ring_buffer__free(lc->events);
	lc->events = NULL;
	lock_bpf__destroy(lc->skel);
	lc->skel = NULL;
}

/* Kernel lock tracepoints exist since 5.19; without them user locks still work. */
static bool have_klock_tracepoints(struct lock_collector *lc)
{
	if (libbpf_find_vmlinux_btf_id("contention_begin", BPF_TRACE_RAW_TP) > 0 &&
	    libbpf_find_vmlinux_btf_id("contention_end", BPF_TRACE_RAW_TP) > 0)
		return true;
	snprintf(lc->klock_status, sizeof(lc->klock_status),
		 "kernel has no lock:contention_begin/end tracepoints (Linux 5.19+)");
	return false;
}

static void attach_klocks(struct lock_collector *lc)
{
	size_t mark = lc->nlinks;
	int err;

	err = add_link(lc, lc->skel->progs.klock_end);
	if (!err)
		err = add_link(lc, lc->skel->progs.klock_begin);
	if (err) {
		drop_links_from(lc, mark);
		snprintf(lc->klock_status, sizeof(lc->klock_status),
			 "attaching lock:contention_begin/end failed: %s", strerror(-err));
	} else {
		snprintf(lc->klock_status, sizeof(lc->klock_status), "on");
	}
}

/* Open, size, load (with the futex hooks `tracepoints` picks), read and attach the lock
 * programs. Undone by lock_unload(). */
static int lock_load_attach(struct ap_collector *c, const struct ap_agent_opts *opts,
			    bool tracepoints, bool klocks, char *msg, size_t len)
{
	struct lock_collector *lc = c->priv;
	struct lock_bpf *s;
	int err;

	lc->skel = s = lock_bpf__open();
	if (!s) {
		err = -errno;
		explain_open_error(err, msg, len);
		return err;
	}
	s->rodata->cfg_filter_pids = opts->npids > 0;
	s->rodata->cfg_filter_comms = opts->ncomms > 0;
	s->rodata->cfg_self_pid = (__u32)getpid();
	s->rodata->cfg_per_event = opts->per_event;
	/* aggregated: lock_events only carries what a full waits/holders map could not take */
	if (!opts->per_event)
		bpf_map__set_max_entries(s->maps.lock_events, SPILL_RING_BYTES);
	bpf_map__set_max_entries(s->maps.waits_0, lc->waits_entries);
	bpf_map__set_max_entries(s->maps.waits_1, lc->waits_entries);
	bpf_map__set_max_entries(s->maps.holders_0, lc->holders_entries);
	bpf_map__set_max_entries(s->maps.holders_1, lc->holders_entries);
	bpf_map__set_max_entries(s->maps.stacks_0, STACK_ENTRIES);
	bpf_map__set_max_entries(s->maps.stacks_1, STACK_ENTRIES);
	/* user stacks: in-kernel CFI unwinding (a process's waits before its tables are loaded
	 * are unwound by the agent), or the kernel's frame-pointer walk without it */
	if (lc->unwinder && (err = ap_unwinder_bind(lc->unwinder, s->obj))) {
		ap_warn("lock: unwind tables unavailable (%s): user stacks use frame pointers only",
			strerror(-err));
		lc->unwinder = NULL;
	}
	if (!lc->unwinder)
		s->rodata->cfg_unwind_tables = false;
	err = setup_unwind_events(c, lc);
	if (err)
		return err;
	bpf_program__set_autoload(s->progs.klock_begin, klocks);
	bpf_program__set_autoload(s->progs.klock_end, klocks);
	bpf_program__set_autoload(s->progs.futex_enter_tp, tracepoints);
	bpf_program__set_autoload(s->progs.futex_exit_tp, tracepoints);
	bpf_program__set_autoload(s->progs.futex_enter_raw, !tracepoints);
	bpf_program__set_autoload(s->progs.futex_exit_raw, !tracepoints);

	err = lock_bpf__load(s);
	if (err) {
		explain_open_error(err, msg, len);
		return err;
	}
	err = fill_filters(lc, opts, msg, len);
	if (err)
		return err;
	/* the targets' tables before their first wait (other processes: when seen) */
	for (size_t i = 0; i < opts->npids; i++)
		ap_unwinder_load_pid(lc->unwinder, (int)opts->pids[i]);
	if (opts->npids && ap_unwinder_wait_idle(lc->unwinder, 5000) == -ETIMEDOUT)
		ap_warn("lock: unwind tables still compiling: first waits use frame pointers");
	/* first: a new process's tables should not wait behind a backlog of waits */
	if (lc->uev) {
		err = ap_unwind_events_add_rings(lc->uev, &lc->events,
						 bpf_map__fd(s->maps.proc_events),
						 bpf_map__fd(s->maps.unwind_deferred));
		if (err) {
			snprintf(msg, len, "cannot open the process-event ring buffers: %s",
				 strerror(-err));
			return err;
		}
	}
	/* per-event records, or spills of full maps: read in either mode */
	err = ap_ring_add(&lc->events, bpf_map__fd(s->maps.lock_events), handle_wait_event, c);
	if (err) {
		snprintf(msg, len, "cannot open the lock event ring buffer: %s", strerror(-err));
		return err;
	}
	/* before the futex hooks: a process announced by its first wait has its exit seen */
	attach_proc_hooks(lc);
	err = attach_futex(lc, tracepoints, msg, len);
	if (err)
		return err;
	if (klocks)
		attach_klocks(lc);
	return 0;
}

static int lock_start(struct ap_collector *c, const struct ap_agent_opts *opts, char *msg,
		      size_t len)
{
	struct lock_collector *lc = calloc(1, sizeof(*lc));
	struct ap_lock_resolver res;
	bool tracepoints, klocks;
	int err;

	if (!lc)
		return -ENOMEM;
	c->priv = lc;
	ap_map_dump_init(&lc->waits_dump, sizeof(struct ap_lock_key), sizeof(struct ap_lock_val));
	ap_map_dump_init(&lc->holders_dump, sizeof(struct ap_lock_holder_key),
			 sizeof(struct ap_lock_holder_val));
	lc->histograms = opts->histograms;
	err = ap_lock_profile_init(c->profile);
	if (err)
		return err;
	err = env_entries("APERTURE_LOCK_WAITS_ENTRIES", WAITS_ENTRIES, &lc->waits_entries, msg,
			  len);
	if (!err)
		err = env_entries("APERTURE_LOCK_HOLDERS_ENTRIES", HOLDERS_ENTRIES,
				  &lc->holders_entries, msg, len);
	if (err)
		return err;
	lc->names = ap_lock_names_new(waker_comm, lc);
	if (!lc->names)
		return -ENOMEM;
	ap_lock_names_resolver(lc->names, &res);
	lc->table = ap_lock_table_new(&res);
	if (!lc->table)
		return -ENOMEM;
	lc->unwinder = ap_collector_unwinder(c);
	if (!lc->unwinder)
		ap_warn("lock: unwind tables unavailable (%s): user stacks use frame pointers only",
			strerror(errno));

	klocks = have_klock_tracepoints(lc);
	tracepoints = want_futex_tracepoints();
	err = lock_load_attach(c, opts, tracepoints, klocks, msg, len);
	if (err && tracepoints && err != -EPERM && err != -EACCES) {
		/* as when tracefs is missing: the raw syscall tracepoints need only BTF */
		ap_info("lock: %s; using the raw syscall tracepoints", msg);
		lock_unload(lc);
		err = lock_load_attach(c, opts, false, klocks, msg, len);
	}
	if (err)
		return err;
	if (strcmp(lc->klock_status, "on") != 0)
		ap_warn("lock: kernel locks not traced: %s", lc->klock_status);
	ap_profile_set_meta(c->profile, "futex_hook", lc->futex_hook);
	ap_profile_set_meta(c->profile, "kernel_locks", lc->klock_status);
	return 0;
}

static int lock_poll_fd(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;

	return lc && lc->events ? ring_buffer__epoll_fd(lc->events) : -1;
}

static int lock_consume(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;

	if (!lc || !lc->events)
		return 0;
	return ap_unwind_events_consume(lc->uev, lc->events);
}

/* Detach every probe: the final drains then see every wait recorded, deferred ones too. */
static void lock_stop(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;

	if (!lc)
		return;
	drop_links_from(lc, 0);
	lc->stopped = true;
}

static int drain_holders(struct lock_collector *lc, int fd)
{
	int err = ap_map_dump_take(&lc->holders_dump, fd);

	for (size_t i = 0; !err && i < lc->holders_dump.n; i++)
		err = ap_lock_record_holder(lc->table, ap_map_dump_key(&lc->holders_dump, i),
					    ap_map_dump_val(&lc->holders_dump, i));
	return err;
}

static int lock_drain(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;
	struct timespec settle = { 0, 2 * 1000 * 1000 };
	int waits_fd, stacks_fd, holders_fd, err;
	struct lock_bpf *s = lc->skel;
	__u32 slot;
	size_t n;

	slot = s->bss->active_slot;
	s->bss->active_slot = !slot;
	__sync_synchronize();
	/* a program that read the old slot just before the flip finishes within microseconds */
	nanosleep(&settle, NULL);
	/* per-event records and spills: the old slot's last, while their stacks are there */
	lock_consume(c);

	waits_fd = bpf_map__fd(slot ? s->maps.waits_1 : s->maps.waits_0);
	stacks_fd = bpf_map__fd(slot ? s->maps.stacks_1 : s->maps.stacks_0);
	holders_fd = bpf_map__fd(slot ? s->maps.holders_1 : s->maps.holders_0);
	err = ap_map_dump_take(&lc->waits_dump, waits_fd);
	n = lc->waits_dump.n;
	for (size_t i = 0; !err && i < n; i++) {
		const struct ap_lock_key *k = ap_map_dump_key(&lc->waits_dump, i);
		const __u64 *ks = NULL, *us = NULL;

		if (k->kern_stack &&
		    bpf_map_lookup_elem(stacks_fd, &k->kern_stack, lc->kstack) == 0)
			ks = lc->kstack;
		if (k->user_stack &&
		    bpf_map_lookup_elem(stacks_fd, &k->user_stack, lc->ustack) == 0)
			us = lc->ustack;
		err = ap_lock_record(c->profile, c->sym, lc->table, k, ap_map_dump_val(&lc->waits_dump, i), ks, us,
				     &lc->rec);
	}
	ap_map_clear(stacks_fd, sizeof(__u64));
	/* waits that waited for their tables: those ready now, those that waited two drains,
	 * all of them once the probes are gone; then forget exited processes */
	ap_unwind_events_flush(lc->uev, lc->stopped);
	if (!err)
		err = drain_holders(lc, holders_fd);
	if (err)
		lc->drain_errors++;
	return err;
}

static const char *const bpf_stat_names[AP_LOCK_STAT_MAX] = {
	[AP_LOCK_STAT_FUTEX_WAITS] = "futex_waits_seen",
	[AP_LOCK_STAT_FUTEX_BLOCKED] = "futex_waits_blocked",
	[AP_LOCK_STAT_FUTEX_NO_SLEEP] = "futex_waits_no_sleep",
	[AP_LOCK_STAT_FUTEX_EAGAIN] = "futex_waits_eagain",
	[AP_LOCK_STAT_FUTEX_FILTERED] = "futex_waits_filtered_out",
	[AP_LOCK_STAT_USER_READ_ERR] = "lock_object_read_errors",
	[AP_LOCK_STAT_INFLIGHT_FULL] = "inflight_map_full",
	[AP_LOCK_STAT_KLOCK_BEGIN] = "kernel_contentions_seen",
	[AP_LOCK_STAT_KLOCK_NESTED] = "kernel_contentions_nested",
	[AP_LOCK_STAT_KLOCK_UNMATCHED] = "kernel_contentions_unmatched",
	[AP_LOCK_STAT_USER_STACK_ERR] = "user_stack_errors",
	[AP_LOCK_STAT_KERN_STACK_ERR] = "kernel_stack_errors",
	[AP_LOCK_STAT_STACKS_FULL] = "stacks_map_full",
	[AP_LOCK_STAT_WAITS_SPILLED] = "waits_spilled",
	[AP_LOCK_STAT_WAITS_LOST] = "waits_lost",
	[AP_LOCK_STAT_HOLDERS_SPILLED] = "holders_spilled",
	[AP_LOCK_STAT_HOLDERS_LOST] = "holders_lost",
	[AP_LOCK_STAT_EVENTS_LOST] = "lock_events_lost",
};

static void lock_report_stats(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;
	struct ap_profile *p = c->profile;

	if (!lc || !lc->skel)
		return;
	ap_percpu_stats_report(bpf_map__fd(lc->skel->maps.lock_stats), bpf_stat_names,
			       AP_LOCK_STAT_MAX, p);
	ap_unwind_events_report(lc->uev, bpf_map__fd(lc->skel->maps.proc_stats), p);
	{
		uint64_t uv[AP_UNWIND_STAT_MAX];

		ap_unwind_report_stats(lc->unwinder, bpf_map__fd(lc->skel->maps.unwind_stats), p,
				       uv);
	}
	ap_profile_set_stat(p, "lock_waits", lc->rec.lock_waits);
	ap_profile_set_stat(p, "lock_wait_ns", lc->rec.lock_wait_ns);
	ap_profile_set_stat(p, "kernel_lock_waits", lc->rec.kernel_waits);
	ap_profile_set_stat(p, "kernel_lock_wait_ns", lc->rec.kernel_wait_ns);
	ap_profile_set_stat(p, "condvar_waits", lc->rec.condvar_waits);
	ap_profile_set_stat(p, "condvar_wait_ns", lc->rec.condvar_wait_ns);
	ap_profile_set_stat(p, "other_futex_waits", lc->rec.other_waits);
	ap_profile_set_stat(p, "other_futex_wait_ns", lc->rec.other_wait_ns);
	ap_profile_set_stat(p, "user_stacks_truncated", lc->rec.user_truncated);
	ap_profile_set_stat(p, "kernel_stacks_truncated", lc->rec.kernel_truncated);
	ap_profile_set_stat(p, "kernel_locks_unavailable", strcmp(lc->klock_status, "on") != 0);
	ap_profile_set_stat(p, "drain_errors", lc->drain_errors);
}

static int lock_write(struct ap_collector *c, enum ap_format fmt, FILE *out,
		      const struct ap_write_opts *opts)
{
	struct lock_collector *lc = c->priv;

	switch (fmt) {
	case AP_FORMAT_TEXT:
		return ap_lock_write_text(lc->table, c->profile, out, opts ? opts->top_n : 0,
					  lc->histograms);
	case AP_FORMAT_JSON:
		return ap_lock_write_json(lc->table, c->profile, out);
	default:
		return -ENOTSUP; /* folded, svg, pprof: the generic writers, weighted by delay */
	}
}

/* The mode's JSON report of a table and profile, in memory (malloc'd). */
static int report_to_memory(const struct ap_lock_table *t, const struct ap_profile *p,
			    char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	int err;

	if (!f)
		return -errno;
	err = ap_lock_write_json(t, p, f);
	if (fclose(f) && !err)
		err = -EIO;
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

/* The interval's profile and its lock table (holders, waiters, histograms) out, fresh ones
 * in. Names of locks and threads (lc->names) and the unwinder stay. */
static int lock_rotate(struct ap_collector *c, struct ap_profile **profile, char **tables,
		       size_t *tables_len)
{
	struct lock_collector *lc = c->priv;
	struct ap_profile *np = ap_interval_fresh_profile(c->profile);
	struct ap_lock_resolver res;
	struct ap_lock_table *nt;
	int err;

	ap_lock_names_resolver(lc->names, &res);
	nt = ap_lock_table_new(&res);
	err = np && nt ? report_to_memory(lc->table, c->profile, tables, tables_len) : -ENOMEM;
	if (err) {
		ap_profile_free(np);
		ap_lock_table_free(nt);
		return err;
	}
	ap_lock_table_free(lc->table);
	lc->table = nt;
	*profile = c->profile;
	c->profile = np;
	return 0;
}

static void lock_destroy(struct ap_collector *c)
{
	struct lock_collector *lc = c->priv;

	if (!lc)
		return;
	lock_unload(lc);
	ap_lock_table_free(lc->table);
	ap_lock_names_free(lc->names);
	ap_unwind_events_free(lc->uev);
	ap_map_dump_free(&lc->waits_dump);
	ap_map_dump_free(&lc->holders_dump);
	free(lc);
	c->priv = NULL;
}

const struct ap_collector_ops ap_lock_collector_ops = {
	.name = "lock",
	.mode = AP_MODE_LOCK,
	.start = lock_start,
	.poll_fd = lock_poll_fd,
	.consume = lock_consume,
	.stop = lock_stop,
	.drain = lock_drain,
	.report_stats = lock_report_stats,
	.write = lock_write,
	.rotate = lock_rotate,
	.destroy = lock_destroy,
};
