// SPDX-License-Identifier: MIT
/*
 * Syscall mode: owns the syscall skeleton. The BPF side aggregates per (process, syscall) in
 * per-CPU caches; aggregates evicted while tracing, errnos that did not fit and slow calls
 * arrive through the ring buffer, and at the end the programs are detached and what is left
 * in the caches is read, so the totals are exact and nothing is counted twice.
 *
 * The programs load as tp_btf (BTF-typed, cheaper context access) and fall back to raw_tp when
 * the kernel refuses tp_btf: the object declares raw_tp programs and the loader upgrades them,
 * because libbpf resolves a tp_btf section's attach point in a way that cannot be undone.
 * AP_SYSCALL_ATTACH=raw_tp in the environment forces the fallback (tests, benchmarks).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "map_dump.h"
#include "filter_hook.h"
#include "lib/log.h"
#include "syscall.skel.h"
#include "unwind_events.h"
#include "unwind/unwinder.h"
#include "syscall_record.h"
#include "lib/syscalls.h"

_Static_assert(sizeof(struct ap_sys_key) == 8, "ap_sys_key layout changed");
_Static_assert(sizeof(struct ap_sys_agg) ==
		       8 + 8 * 8 + AP_SYS_HIST_SLOTS * 8 + AP_SYS_ERRNO_SLOTS * 16 + 8 +
			       AP_SYS_COMM_LEN,
	       "ap_sys_agg layout changed");
_Static_assert(sizeof(struct ap_sys_agg) % 8 == 0, "per-CPU values must be 8-byte multiples");
_Static_assert(sizeof(struct ap_sys_errno_event) == 16, "ap_sys_errno_event layout changed");
_Static_assert(sizeof(struct ap_sys_slow_event) == 40, "ap_sys_slow_event layout changed");
_Static_assert(sizeof(struct ap_sys_inflight) == 24, "ap_sys_inflight layout changed");
_Static_assert(sizeof(struct ap_sys_call_event) == 56 + 2 * AP_SYS_COMM_LEN,
	       "ap_sys_call_event layout changed");
_Static_assert(offsetof(struct ap_sys_agg, kind) == 0 && offsetof(struct ap_sys_errno_event, kind) == 0 &&
		       offsetof(struct ap_sys_slow_event, kind) == 0 &&
		       offsetof(struct ap_sys_call_event, kind) == 0,
	       "ring buffer records must start with their kind");
_Static_assert(offsetof(struct ap_sys_deferred, snap) == sizeof(struct ap_sys_call_event),
	       "ap_sys_deferred layout changed");
_Static_assert(AP_MAX_COMMS <= AP_SYS_MAX_COMMS && AP_COMM_LEN == AP_SYS_COMM_LEN,
	       "--comm filter does not fit the BPF side");

/* Per-CPU cache: 2 ways x CACHE_SETS aggregates (~670 bytes each) per CPU. */
#define CACHE_SETS 256u
#define RINGBUF_BYTES (4u << 20)
#define RINGBUF_BYTES_PER_EVENT (16u << 20) /* ~190,000 calls between two reads */
#define STACK_ENTRIES 4096u
/* Slow calls of new processes that may wait for their tables at once (~8 KiB each). */
#define DEFER_QUEUE 256u

struct sys_collector {
	struct syscall_bpf *skel;
	struct ap_unwinder *unwinder; /* --slow-stacks: CFI tables for the BPF walker; NULL: FP */
	struct ap_unwind_events *uev; /* ... process events, slow calls waiting for tables */
	struct bpf_link *links[3]; /* sched_switch, sys_exit, sys_enter: attach order */
	struct bpf_link *proc_links[2]; /* exec, exit of announced processes (with uev) */
	struct ring_buffer *events; /* sys_events, process events, deferred */
	struct ap_sys_table *table;
	struct ap_collector *owner;
	bool raw_tp;
	bool histograms;
	bool slow_stacks;
	bool finished;
	bool continuous; /* the cache has two halves (rotate) */
	uint64_t min_latency_ns;
	/* what earlier intervals' tables counted (rotate), for the run's stats */
	uint64_t prev_calls, prev_errors, prev_slow;
	struct ap_sys_agg *zeros; /* ncpus empty aggregates: a way of every CPU cleared */
	int ncpus;
	struct ap_sys_agg *percpu; /* ncpus aggregates */
	__u64 *percpu_u64;	    /* ncpus counters */
	uint64_t drain_errors, slow_unresolved, bad_events;
	__u64 ustack[AP_SYS_STACK_DEPTH];
};

static void configure(struct syscall_bpf *skel, const struct ap_agent_opts *opts)
{
	int exit_nr = ap_syscall_from_name("exit"), group_nr = ap_syscall_from_name("exit_group");
	int cexit = ap_syscall_compat_from_name("exit"),
	    cgroup = ap_syscall_compat_from_name("exit_group");
	struct syscall_bpf__rodata *ro = skel->rodata;

	ro->cfg_self_tgid = (__u32)getpid();
	ro->cfg_filter_pids = opts->npids > 0;
	ro->cfg_filter_pids_map = opts->npids > AP_SYS_INLINE_PIDS;
	if (opts->npids <= AP_SYS_INLINE_PIDS) {
		ro->cfg_npids_inline = (__u32)opts->npids;
		for (size_t i = 0; i < opts->npids; i++)
			ro->cfg_pids[i] = (__u32)opts->pids[i];
	}
	ro->cfg_filter_syscalls = opts->nsyscalls > 0;
	for (size_t i = 0; i < opts->nsyscalls; i++) {
		unsigned int nr = (unsigned int)opts->syscalls[i];

		ro->cfg_syscall_bits[nr / 64] |= 1ULL << (nr % 64);
	}
	ro->cfg_ncomms = (__u32)opts->ncomms;
	for (size_t i = 0; i < opts->ncomms; i++)
		memcpy(ro->cfg_comms[i], opts->comms[i], AP_SYS_COMM_LEN); /* zero-padded */
	ro->cfg_min_latency_ns = opts->min_latency_ns;
	ro->cfg_slow_stacks = opts->slow_stacks;
	ro->cfg_count_unmatched = !opts->npids && !opts->ncomms && !opts->nsyscalls;
	ro->cfg_noreturn[0] = exit_nr >= 0 ? (__u32)exit_nr : ~0u;
	ro->cfg_noreturn[1] = group_nr >= 0 ? (__u32)group_nr : ~0u;
	ro->cfg_noreturn[2] = cexit >= 0 ? (__u32)cexit | AP_SYS_ABI_COMPAT : ~0u;
	ro->cfg_noreturn[3] = cgroup >= 0 ? (__u32)cgroup | AP_SYS_ABI_COMPAT : ~0u;
	ro->cfg_per_event = opts->per_event;
	if (opts->per_event) {
		/* every call is a record: no cache, a bigger ring read more often */
		ro->cfg_set_mask = 0;
		ro->cfg_wakeup_bytes = RINGBUF_BYTES_PER_EVENT / 16;
		bpf_map__set_max_entries(skel->maps.sys_cache, 2);
		bpf_map__set_max_entries(skel->maps.sys_events, RINGBUF_BYTES_PER_EVENT);
	} else {
		/* continuous mode: two halves, flipped at every interval's end (rotate) */
		bool halves = opts->nservers > 0;

		ro->cfg_set_mask = CACHE_SETS - 1;
		ro->cfg_wakeup_bytes = RINGBUF_BYTES / 4;
		ro->cfg_slot_entries = halves ? 2 * CACHE_SETS : 0;
		bpf_map__set_max_entries(skel->maps.sys_cache, (halves ? 2 : 1) * 2 * CACHE_SETS);
		bpf_map__set_max_entries(skel->maps.sys_events, RINGBUF_BYTES);
	}
	/* the stack map is preallocated: keep it tiny unless stacks are wanted */
	bpf_map__set_max_entries(skel->maps.sys_stacks, opts->slow_stacks ? STACK_ENTRIES : 1);
	ro->cfg_unwind_tables = false; /* open_and_load() turns it on with an unwinder */
}

/* Process events and deferred slow calls, with an unwinder only (proc_announce.h): else the
 * exec/exit programs stay unloaded and their ring buffers at one page. */
static void configure_unwind_events(struct sys_collector *sc)
{
	struct syscall_bpf *skel = sc->skel;
	__u32 page = (__u32)getpagesize();
	bool on = sc->uev && skel->rodata->cfg_unwind_tables;

	skel->rodata->cfg_defer_unwind = on && ap_unwind_events_deferring(sc->uev);
	if (!skel->rodata->cfg_defer_unwind)
		bpf_map__set_max_entries(skel->maps.unwind_deferred, page);
	if (!on)
		bpf_map__set_max_entries(skel->maps.proc_events, page);
	bpf_program__set_autoload(skel->progs.sys_exec, on);
	bpf_program__set_autoload(skel->progs.sys_exit_proc, on);
}

static int open_and_load(struct sys_collector *sc, const struct ap_agent_opts *opts)
{
	int err;

	sc->skel = syscall_bpf__open();
	if (!sc->skel)
		return -errno;
	configure(sc->skel, opts);
	/* slow calls' user stacks: in-kernel CFI unwinding (a process's slow calls before its
	 * tables are loaded are unwound by the agent), else frame pointers only */
	if (sc->unwinder && !ap_unwinder_bind(sc->unwinder, sc->skel->obj))
		sc->skel->rodata->cfg_unwind_tables = true;
	configure_unwind_events(sc);
	/* the object declares raw_tp programs; tp_btf is the same body with a BTF attach point */
	if (!sc->raw_tp) {
		struct bpf_program *progs[] = { sc->skel->progs.sys_enter, sc->skel->progs.sys_exit,
						sc->skel->progs.sys_switch, sc->skel->progs.sys_exec,
						sc->skel->progs.sys_exit_proc };
		const char *tps[] = { "sys_enter", "sys_exit", "sched_switch", "sched_process_exec",
				      "sched_process_exit" };

		for (size_t i = 0; i < 5; i++) {
			bpf_program__set_type(progs[i], BPF_PROG_TYPE_TRACING);
			bpf_program__set_expected_attach_type(progs[i], BPF_TRACE_RAW_TP);
			err = bpf_program__set_attach_target(progs[i], 0, tps[i]);
			if (err)
				goto fail;
		}
	}
	err = syscall_bpf__load(sc->skel);
	if (!err)
		return 0;
fail:
	syscall_bpf__destroy(sc->skel);
	sc->skel = NULL;
	return err;
}

static struct bpf_link *attach_one(struct sys_collector *sc, struct bpf_program *prog,
				   const char *tp)
{
	return sc->raw_tp ? bpf_program__attach_raw_tracepoint(prog, tp) :
			    bpf_program__attach_trace(prog);
}

/* Exec/exit of announced processes: optional (an exec'd process is then re-scanned when a pc
 * falls outside its old mappings, and exited ones go at the next gc). */
static void attach_proc_hooks(struct sys_collector *sc)
{
	struct bpf_program *progs[2] = { sc->skel->progs.sys_exec, sc->skel->progs.sys_exit_proc };
	const char *tps[2] = { "sched_process_exec", "sched_process_exit" };

	for (int i = 0; i < 2; i++) {
		sc->proc_links[i] = attach_one(sc, progs[i], tps[i]);
		if (!sc->proc_links[i])
			ap_warn("syscall: %s tracking unavailable (%s)", tps[i], strerror(errno));
	}
}

static void explain_load_error(int err, char *msg, size_t len)
{
	ap_explain_bpf_load_error(err, "syscall tracer", "they need tp_btf and raw_tp sys_enter/sys_exit, BPF with BTF and task storage: Linux 5.11 or later", msg, len);
}

/* The user stack of a slow call in sys_stacks, or NULL (counted). */
static const __u64 *slow_stack(struct sys_collector *sc, __s32 stack_id)
{
	if (stack_id >= 0 &&
	    bpf_map_lookup_elem(bpf_map__fd(sc->skel->maps.sys_stacks), &stack_id, sc->ustack) == 0)
		return sc->ustack;
	sc->slow_unresolved++;
	return NULL;
}

/*
 * Per-event mode: one call, through the --filter if any, into the same table the kernel's
 * cache fills, and (a slow call with --slow-stacks) into the profile with its stack, exactly
 * as the cache and the slow-call event would have put it. `replayed`: the stack the agent
 * unwound for a deferred call (NULL: the one in sys_stacks under e->stack_id).
 */
static int handle_call(struct ap_collector *c, const struct ap_sys_call_event *e,
		       const __u64 *replayed)
{
	struct sys_collector *sc = c->priv;
	bool noreturn = e->flags & AP_SYS_CALL_NORETURN;
	bool slow = sc->slow_stacks && sc->min_latency_ns && !noreturn &&
		    e->latency_ns >= sc->min_latency_ns;
	struct ap_sys_call call = {
		.pid = e->pid,
		.nr = e->nr,
		.ret = e->ret,
		.latency_ns = e->latency_ns,
		.min_latency_ns = sc->min_latency_ns,
		.weight = 1,
		.noreturn = noreturn,
	};
	struct ap_sys_slow_event se = {
		.kind = AP_SYS_EV_SLOW,
		.pid = e->pid,
		.nr = e->nr,
		.stack_id = e->stack_id,
		.latency_ns = e->latency_ns,
	};
	const __u64 *us = NULL;
	const struct ap_filter_event *res;
	struct ap_filter_event *ev;
	int err;

	if (slow)
		us = replayed ? replayed : slow_stack(sc, e->stack_id);
	memcpy(call.comm, e->pcomm, AP_SYS_COMM_LEN);
	if (c->filter) {
		ev = ap_filter_hook_event(c->filter);
		ap_filter_event_init(ev, AP_FILTER_EV_SYSCALL, e->pid, e->tid, e->ts_ns, e->cpu,
				     e->comm, 1);
		ev->syscall.latency_ns = e->latency_ns;
		ev->syscall.ret = e->ret;
		ev->syscall.nr = e->nr;
		ap_filter_event_add_stack(ev, false, us, AP_SYS_STACK_DEPTH);
		if (ap_filter_hook_apply(c, ev, &res) == AP_FILTER_DROP)
			return 0;
		if (res != ev) {
			/* transformed: its weight (calls), name and trimmed stack */
			call.weight = res->weight;
			if (memcmp(res->comm, ev->comm, AP_FILTER_COMM_LEN) != 0)
				memcpy(call.comm, res->comm, AP_SYS_COMM_LEN);
			if (us) {
				ap_filter_event_stack(res, false, sc->ustack, AP_SYS_STACK_DEPTH);
				us = sc->ustack;
			}
		}
	}
	err = ap_sys_table_add_call(sc->table, &call);
	if (!err && slow)
		err = ap_sys_record_slow_n(c->profile, c->sym, sc->table, &se, us, call.weight);
	return err;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct ap_collector *c = ctx;
	struct sys_collector *sc = c->priv;
	__u32 kind = size >= sizeof(__u32) ? *(const __u32 *)data : 0;
	int err = 0;

	if (kind == AP_SYS_EV_STATS && size >= sizeof(struct ap_sys_agg)) {
		err = ap_sys_table_add_agg(sc->table, data);
	} else if (kind == AP_SYS_EV_ERRNO && size >= sizeof(struct ap_sys_errno_event)) {
		const struct ap_sys_errno_event *e = data;

		err = ap_sys_table_add_errno(sc->table, e->pid, e->nr, e->err, 1);
	} else if (kind == AP_SYS_EV_CALL && size >= sizeof(struct ap_sys_call_event)) {
		err = handle_call(c, data, NULL);
	} else if (kind == AP_SYS_EV_SLOW && size >= sizeof(struct ap_sys_slow_event)) {
		const struct ap_sys_slow_event *e = data;

		err = ap_sys_record_slow(c->profile, c->sym, sc->table, e,
					 slow_stack(sc, e->stack_id));
	} else {
		sc->bad_events++;
	}
	if (err)
		sc->drain_errors++;
	return 0; /* keep consuming: one failed record is counted, not fatal */
}

/*
 * A deferred slow call (struct ap_sys_deferred) unwound here: recorded as the event it stands
 * for would have been, with the user stack just unwound (NULL when there is none, which
 * slow_stack() would have counted as unresolved).
 */
static void record_replayed(void *ctx, const void *payload, const uint64_t *ips, size_t n,
			    uint32_t status)
{
	struct ap_collector *c = ctx;
	struct sys_collector *sc = c->priv;
	const struct ap_sys_call_event *e = payload; /* the fields before snap are there */
	const __u64 *us = n ? (const __u64 *)ips : NULL;
	int err;

	(void)status;
	if (e->kind == AP_SYS_EV_CALL) {
		err = handle_call(c, e, us); /* without a stack: counted there as unresolved */
	} else {
		struct ap_sys_slow_event se = {
			.kind = AP_SYS_EV_SLOW,
			.pid = e->pid,
			.nr = e->nr,
			.stack_id = -1,
			.latency_ns = e->latency_ns,
		};

		memcpy(se.comm, e->pcomm, sizeof(se.comm));
		sc->slow_unresolved += !us;
		err = ap_sys_record_slow(c->profile, c->sym, sc->table, &se, us);
	}
	if (err)
		sc->drain_errors++;
}

static int sys_start(struct ap_collector *c, const struct ap_agent_opts *opts, char *msg,
		     size_t len)
{
	struct sys_collector *sc = calloc(1, sizeof(*sc));
	const char *force = getenv("AP_SYSCALL_ATTACH");
	struct bpf_program *progs[3];
	const char *tps[3] = { "sched_switch", "sys_exit", "sys_enter" };
	int err;

	if (!sc)
		return -ENOMEM;
	c->priv = sc;
	sc->owner = c;
	sc->histograms = opts->histograms;
	sc->slow_stacks = opts->slow_stacks;
	sc->min_latency_ns = opts->min_latency_ns;
	sc->continuous = opts->nservers > 0 && !opts->per_event;
	if (opts->slow_stacks && !opts->min_latency_ns) {
		snprintf(msg, len, "--slow-stacks needs --min-latency (e.g. --min-latency 1ms)");
		return -EINVAL;
	}
	for (size_t i = 0; i < opts->nsyscalls; i++) {
		if (opts->syscalls[i] < 0 || opts->syscalls[i] >= AP_SYS_FILTER_BITS) {
			snprintf(msg, len, "--syscall: number %d is beyond the filter's %d entries",
				 opts->syscalls[i], AP_SYS_FILTER_BITS);
			return -EINVAL;
		}
	}
	sc->ncpus = libbpf_num_possible_cpus();
	if (sc->ncpus <= 0) {
		snprintf(msg, len, "cannot count CPUs: %s", strerror(-sc->ncpus));
		return sc->ncpus ? sc->ncpus : -EINVAL;
	}
	sc->table = ap_sys_table_new();
	sc->percpu = calloc((size_t)sc->ncpus, sizeof(*sc->percpu));
	sc->percpu_u64 = calloc((size_t)sc->ncpus, sizeof(*sc->percpu_u64));
	if (sc->continuous)
		sc->zeros = calloc((size_t)sc->ncpus, sizeof(*sc->zeros));
	if (!sc->table || !sc->percpu || !sc->percpu_u64 || (sc->continuous && !sc->zeros))
		return -ENOMEM;
	err = ap_sys_profile_init(c->profile, opts->min_latency_ns);
	if (err)
		return err;

	sc->raw_tp = force && strcmp(force, "raw_tp") == 0;
	if (opts->slow_stacks) {
		sc->unwinder = ap_collector_unwinder(c);
		if (!sc->unwinder)
			ap_warn("syscall: unwind tables unavailable (%s): slow-call stacks use "
				"frame pointers only", strerror(errno));
	}
	/* a process's first slow call announces it (its tables load at once); its slow calls
	 * before they are in are unwound here */
	if (sc->unwinder) {
		sc->uev = ap_unwind_events_new(sc->unwinder, c->sym,
					       offsetof(struct ap_sys_deferred, snap), DEFER_QUEUE,
					       record_replayed, c);
		if (!sc->uev)
			return -ENOMEM;
	}
	err = open_and_load(sc, opts);
	if (err && !sc->raw_tp && err != -EPERM && err != -EACCES) {
		ap_info("syscall: tp_btf programs refused (%s); trying raw_tp", strerror(-err));
		sc->raw_tp = true;
		err = open_and_load(sc, opts);
	}
	if (err) {
		explain_load_error(err, msg, len);
		return err;
	}
	ap_profile_set_meta(c->profile, "attach", sc->raw_tp ? "raw_tp" : "tp_btf");
	if (!sc->skel->rodata->cfg_unwind_tables && sc->unwinder) {
		ap_warn("syscall: unwind tables unavailable: slow-call stacks use frame pointers "
			"only");
		ap_unwind_events_free(sc->uev);
		sc->uev = NULL;
		sc->unwinder = NULL;
	}
	/* the targets' tables before their first slow call (other processes: when seen) */
	for (size_t i = 0; sc->unwinder && i < opts->npids; i++)
		ap_unwinder_load_pid(sc->unwinder, (int)opts->pids[i]);
	if (sc->unwinder && opts->npids && ap_unwinder_wait_idle(sc->unwinder, 5000) == -ETIMEDOUT)
		ap_warn("syscall: unwind tables still compiling: first stacks use frame pointers");

	for (size_t i = 0; opts->npids > AP_SYS_INLINE_PIDS && i < opts->npids; i++) {
		__u32 pid = (__u32)opts->pids[i];
		__u8 yes = 1;

		if (bpf_map_update_elem(bpf_map__fd(sc->skel->maps.target_pids), &pid, &yes, 0)) {
			err = -errno;
			snprintf(msg, len, "cannot add pid %u to the filter: %s", pid, strerror(-err));
			return err;
		}
	}
	/* process events first: a new process's tables should not wait behind a backlog of
	 * calls */
	if (sc->uev) {
		err = ap_unwind_events_add_rings(sc->uev, &sc->events,
						 bpf_map__fd(sc->skel->maps.proc_events),
						 bpf_map__fd(sc->skel->maps.unwind_deferred));
		if (err) {
			snprintf(msg, len, "cannot open the process-event ring buffers: %s",
				 strerror(-err));
			return err;
		}
		attach_proc_hooks(sc);
	}
	err = ap_ring_add(&sc->events, bpf_map__fd(sc->skel->maps.sys_events), handle_event, c);
	if (err) {
		snprintf(msg, len, "cannot open the syscall ring buffer: %s", strerror(-err));
		return err;
	}
	/*
	 * sched_switch first, so a call can never be in flight unseen by it; then sys_exit, so
	 * that an enter never misses its exit (an exit without its enter is ignored).
	 */
	progs[0] = sc->skel->progs.sys_switch;
	progs[1] = sc->skel->progs.sys_exit;
	progs[2] = sc->skel->progs.sys_enter;
	for (int i = 0; i < 3; i++) {
		sc->links[i] = attach_one(sc, progs[i], tps[i]);
		if (!sc->links[i]) {
			err = -errno;
			snprintf(msg, len, "attaching to %s failed: %s", tps[i], strerror(-err));
			return err;
		}
	}
	return 0;
}

static int sys_poll_fd(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	return sc && sc->events ? ring_buffer__epoll_fd(sc->events) : -1;
}

static int sys_consume(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	if (!sc || !sc->events)
		return 0;
	return ap_unwind_events_consume(sc->uev, sc->events);
}

/* While tracing, everything that leaves the kernel comes through the ring buffer. */
static int sys_drain(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	int err = sys_consume(c);

	/* slow calls that waited for their tables: those ready now, and those that waited two
	 * drains; then forget exited processes */
	if (sc)
		ap_unwind_events_flush(sc->uev, false);
	return err;
}

/* Add cache entries [from, to) of every CPU to the table; with `clear`, empty them after
 * (an idle half, which no program writes). */
static int read_cache_range(struct sys_collector *sc, __u32 from, __u32 to, bool clear)
{
	int fd = bpf_map__fd(sc->skel->maps.sys_cache), err;

	for (__u32 i = from; i < to; i++) {
		bool used = false;

		if (bpf_map_lookup_elem(fd, &i, sc->percpu))
			return -errno;
		for (int cpu = 0; cpu < sc->ncpus; cpu++) {
			used |= sc->percpu[cpu].key.pid != 0;
			err = ap_sys_table_add_agg(sc->table, &sc->percpu[cpu]);
			if (err)
				return err;
		}
		if (clear && used && bpf_map_update_elem(fd, &i, sc->zeros, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Add what is left in every CPU's cache (after detaching: nothing changes any more). */
static int read_caches(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	return read_cache_range(sc, 0, bpf_map__max_entries(sc->skel->maps.sys_cache), false);
}

static uint64_t recursion_misses(const struct bpf_program *prog)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.recursion_misses;
}

/* Once, after the run loop's last drain: stop tracing, collect the rest, build the profile's
 * per-syscall samples. */
static void finish(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	struct timespec settle = { 0, 5 * 1000 * 1000 };

	if (!sc || sc->finished || !sc->skel)
		return;
	sc->finished = true;
	for (int i = 2; i >= 0; i--) {
		bpf_link__destroy(sc->links[i]);
		sc->links[i] = NULL;
	}
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(sc->proc_links[i]);
		sc->proc_links[i] = NULL;
	}
	/* a program that started before the detach finishes within microseconds */
	nanosleep(&settle, NULL);
	if (sys_consume(c) || read_caches(c) || sys_consume(c))
		sc->drain_errors++;
	/* every slow call still waiting for its tables, before the profile is closed */
	ap_unwind_events_flush(sc->uev, true);
	ap_sys_table_sort_errnos(sc->table);
	if (ap_sys_profile_finish(c->profile, sc->table))
		sc->drain_errors++;
}

static const char *const bpf_stat_names[AP_SYS_STAT_MAX] = {
	[AP_SYS_STAT_SPILLED] = "calls_spilled",
	[AP_SYS_STAT_TASK_STORAGE_ERR] = "task_storage_errors",
	[AP_SYS_STAT_UNMATCHED_EXIT] = "unmatched_exits",
	[AP_SYS_STAT_STALE_INFLIGHT] = "stale_inflight",
	[AP_SYS_STAT_EVICTIONS] = "cache_evictions",
	[AP_SYS_STAT_CALLS_LOST] = "calls_lost",
	[AP_SYS_STAT_ERRNO_LOST] = "errno_lost",
	[AP_SYS_STAT_SLOW_LOST] = "slow_events_lost",
	[AP_SYS_STAT_STACK_ERR] = "user_stack_errors",
	[AP_SYS_STAT_STACK_COLLISION] = "stack_map_collisions",
};

static void sys_report_stats(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	uint64_t calls = 0, errors = 0, slow = 0, misses = 0;
	int fd;

	if (!sc || !sc->skel)
		return;
	finish(c);
	fd = bpf_map__fd(sc->skel->maps.sys_counters);
	ap_percpu_stats_report(fd, bpf_stat_names, AP_SYS_STAT_MAX, c->profile);
	ap_unwind_events_report(sc->uev, bpf_map__fd(sc->skel->maps.proc_stats), c->profile);
	for (size_t i = 0; i < ap_sys_table_len(sc->table); i++) {
		const struct ap_sys_entry *e = ap_sys_table_entry(sc->table, i);

		calls += e->sum.count + e->sum.noreturn;
		errors += e->sum.errors;
		slow += e->sum.slow;
	}
	/* the run's: earlier intervals' tables were handed out (rotate) */
	ap_profile_set_stat(c->profile, "calls", sc->prev_calls + calls);
	ap_profile_set_stat(c->profile, "errors", sc->prev_errors + errors);
	ap_profile_set_stat(c->profile, "slow_calls", sc->prev_slow + slow);
	/* a program that finds itself already running on its CPU skips the event */
	misses = recursion_misses(sc->skel->progs.sys_enter) +
		 recursion_misses(sc->skel->progs.sys_exit) +
		 recursion_misses(sc->skel->progs.sys_switch);
	ap_profile_set_stat(c->profile, "recursion_misses", misses);
	ap_profile_set_stat(c->profile, "slow_stacks_unresolved", sc->slow_unresolved);
	{
		uint64_t uv[AP_UNWIND_STAT_MAX];

		ap_unwind_report_stats(sc->unwinder, bpf_map__fd(sc->skel->maps.unwind_stats),
				       c->profile, uv);
	}
	ap_profile_set_stat(c->profile, "bad_events", sc->bad_events);
	ap_profile_set_stat(c->profile, "drain_errors", sc->drain_errors);
}

static int sys_write(struct ap_collector *c, enum ap_format fmt, FILE *out,
		     const struct ap_write_opts *wo)
{
	struct sys_collector *sc = c->priv;
	struct ap_sys_report_opts ro = { 0 };

	if (!sc || !sc->table)
		return -ENOTSUP;
	finish(c);
	ro.histograms = sc->histograms;
	ro.top_n = wo ? wo->top_n : 0;
	ro.min_latency_ns = sc->min_latency_ns;
	if (fmt == AP_FORMAT_TEXT)
		return ap_sys_write_text(sc->table, c->profile, out, &ro);
	if (fmt == AP_FORMAT_JSON)
		return ap_sys_write_json(sc->table, c->profile, out, &ro);
	return -ENOTSUP; /* svg, folded, pprof: the generic writers read the profile */
}

/* The interval's half of the cache into the table: flip, let the programs in flight finish,
 * read the ring (evictions of that half) and the half itself, and empty it. */
static int take_idle_half(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	struct timespec settle = { 0, 2 * 1000 * 1000 };
	__u32 slot, half = sc->skel->rodata->cfg_slot_entries;
	int err;

	if (!sc->continuous)
		return sys_consume(c); /* per-event mode: every call came through the ring */
	slot = sc->skel->bss->active_slot;
	sc->skel->bss->active_slot = !slot;
	__sync_synchronize();
	nanosleep(&settle, NULL);
	err = sys_consume(c);
	if (!err)
		err = read_cache_range(sc, slot ? half : 0, slot ? 2 * half : half, true);
	return err;
}

static int report_to_memory(struct sys_collector *sc, const struct ap_profile *p, char **out,
			    size_t *len)
{
	struct ap_sys_report_opts ro = { .min_latency_ns = sc->min_latency_ns };
	FILE *f = open_memstream(out, len);
	int err;

	if (!f)
		return -errno;
	err = ap_sys_write_json(sc->table, p, f, &ro);
	if (fclose(f) && !err)
		err = -EIO;
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

/*
 * The interval's table (calls, errnos, histograms) becomes its profile's samples and JSON
 * report; fresh ones go on. After the run's end (finish) the last table is complete already.
 * Slow calls with --slow-stacks whose stacks wait for their process's tables across the
 * boundary land in the next interval's profile while their counts are in this one's.
 */
static int sys_rotate(struct ap_collector *c, struct ap_profile **profile, char **tables,
		      size_t *tables_len)
{
	struct sys_collector *sc = c->priv;
	struct ap_profile *np = ap_interval_fresh_profile(c->profile);
	struct ap_sys_table *nt = ap_sys_table_new();
	int err = np && nt ? 0 : -ENOMEM;

	if (!err && !sc->finished) {
		if (take_idle_half(c))
			sc->drain_errors++;
		ap_unwind_events_flush(sc->uev, false);
		ap_sys_table_sort_errnos(sc->table);
		err = ap_sys_profile_finish(c->profile, sc->table);
	}
	if (!err)
		err = report_to_memory(sc, c->profile, tables, tables_len);
	if (err) {
		/* the table keeps counting; only its samples of this try would be added twice */
		ap_profile_free(np);
		ap_sys_table_free(nt);
		return err;
	}
	if (!sc->finished) {
		for (size_t i = 0; i < ap_sys_table_len(sc->table); i++) {
			const struct ap_sys_entry *e = ap_sys_table_entry(sc->table, i);

			sc->prev_calls += e->sum.count + e->sum.noreturn;
			sc->prev_errors += e->sum.errors;
			sc->prev_slow += e->sum.slow;
		}
		ap_sys_table_free(sc->table);
		sc->table = nt;
	} else {
		ap_sys_table_free(nt); /* the run is over: its stats count the last table */
	}
	*profile = c->profile;
	c->profile = np;
	return 0;
}

static void sys_destroy(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	if (!sc)
		return;
	for (int i = 2; i >= 0; i--)
		bpf_link__destroy(sc->links[i]);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(sc->proc_links[i]);
	ap_unwind_events_detach(sc->uev); /* its thread reads a ring of the object */
	ring_buffer__free(sc->events);
	syscall_bpf__destroy(sc->skel);
	ap_unwind_events_free(sc->uev);
	ap_sys_table_free(sc->table);
	free(sc->percpu);
	free(sc->percpu_u64);
	free(sc->zeros);
	free(sc);
	c->priv = NULL;
}

const struct ap_collector_ops ap_syscall_collector_ops = {
	.name = "syscall",
	.mode = AP_MODE_SYSCALL,
	.start = sys_start,
	.poll_fd = sys_poll_fd,
	.consume = sys_consume,
	.drain = sys_drain,
	.report_stats = sys_report_stats,
	.write = sys_write,
	.rotate = sys_rotate,
	.destroy = sys_destroy,
};
