// SPDX-License-Identifier: MIT
/*
 * Syscall mode: owns the syscall skeleton. The BPF side aggregates per (process, syscall) in
 * cumulative per-CPU maps; each drain reads them into the userspace table, turns new slow-call
 * stacks into profile samples, and deletes the kernel entries of processes that have exited.
 * At the end the programs are detached first, so the last read is final and consistent.
 *
 * The programs load as tp_btf (BTF-typed, cheaper context access) and fall back to raw_tp when
 * the kernel refuses tp_btf: the object declares raw_tp programs and the loader upgrades them,
 * because libbpf resolves a tp_btf section's attach point in a way that cannot be undone.
 * AP_SYSCALL_ATTACH=raw_tp in the environment forces the fallback (tests, benchmarks).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "log.h"
#include "syscall.skel.h"
#include "syscall_record.h"
#include "syscalls.h"

_Static_assert(sizeof(struct ap_sys_key) == 8, "ap_sys_key layout changed");
_Static_assert(sizeof(struct ap_sys_stats) == 7 * 8 + AP_SYS_HIST_SLOTS * 8 + AP_SYS_COMM_LEN,
	       "ap_sys_stats layout changed");
_Static_assert(sizeof(struct ap_sys_stats) % 8 == 0, "per-CPU values must be 8-byte multiples");
_Static_assert(sizeof(struct ap_sys_err_key) == 16, "ap_sys_err_key layout changed");
_Static_assert(sizeof(struct ap_sys_slow_key) == 16, "ap_sys_slow_key layout changed");
_Static_assert(sizeof(struct ap_sys_slow_val) == 16, "ap_sys_slow_val layout changed");
_Static_assert(sizeof(struct ap_sys_task) == 16, "ap_sys_task layout changed");
_Static_assert(AP_MAX_COMMS <= AP_SYS_MAX_COMMS && AP_COMM_LEN == AP_SYS_COMM_LEN,
	       "--comm filter does not fit the BPF side");

#define STATS_ENTRIES 16384u
#define STACK_ENTRIES 4096u

/* Keys of one map read in one drain. */
struct keybuf {
	void *keys;
	size_t n, cap, size;
};

struct sys_collector {
	struct syscall_bpf *skel;
	struct bpf_link *enter_link, *exit_link;
	struct ap_sys_table *table;
	struct ap_collector *owner;
	bool raw_tp;
	bool slow_stacks;
	bool histograms;
	bool finished;
	uint64_t min_latency_ns;
	int ncpus;
	struct ap_sys_stats *percpu;	/* ncpus values */
	__u64 *percpu_u64;		/* ncpus counters */
	struct keybuf stats_keys, errno_keys, slow_keys;
	uint32_t *dead;			/* pids found gone in this drain */
	size_t ndead, dead_cap;
	uint64_t drain_errors, slow_unresolved, processes_retired;
	__u64 ustack[AP_SYS_STACK_DEPTH];
};

static void configure(struct syscall_bpf *skel, const struct ap_agent_opts *opts)
{
	int exit_nr = ap_syscall_from_name("exit"), group_nr = ap_syscall_from_name("exit_group");
	int cexit = ap_syscall_compat_from_name("exit"),
	    cgroup = ap_syscall_compat_from_name("exit_group");
	struct syscall_bpf__rodata *ro = skel->rodata;

	ro->cfg_filter_pids = opts->npids > 0;
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

	bpf_map__set_max_entries(skel->maps.sys_stats, STATS_ENTRIES);
	bpf_map__set_max_entries(skel->maps.sys_errnos, STATS_ENTRIES);
	/* the stack map is preallocated: keep it tiny unless stacks are wanted */
	bpf_map__set_max_entries(skel->maps.sys_stacks, opts->slow_stacks ? STACK_ENTRIES : 1);
	bpf_map__set_max_entries(skel->maps.sys_slow, opts->slow_stacks ? STATS_ENTRIES : 1);
}

static int open_and_load(struct sys_collector *sc, const struct ap_agent_opts *opts)
{
	int err;

	sc->skel = syscall_bpf__open();
	if (!sc->skel)
		return -errno;
	configure(sc->skel, opts);
	/* the object declares raw_tp programs; tp_btf is the same body with a BTF attach point */
	if (!sc->raw_tp) {
		struct bpf_program *progs[] = { sc->skel->progs.sys_enter, sc->skel->progs.sys_exit };
		const char *tps[] = { "sys_enter", "sys_exit" };

		for (size_t i = 0; i < 2; i++) {
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

static void explain_load_error(int err, char *msg, size_t len)
{
	if (err == -EPERM || err == -EACCES)
		snprintf(msg, len, "permission denied loading BPF programs: run as root "
			 "(needs CAP_BPF and CAP_PERFMON)");
	else
		snprintf(msg, len, "cannot load the syscall tracer (tp_btf and raw_tp "
			 "sys_enter/sys_exit): %s (needs BPF with BTF and task storage, "
			 "Linux 5.11 or later)", strerror(-err));
}

static int sys_start(struct ap_collector *c, const struct ap_agent_opts *opts, char *msg,
		     size_t len)
{
	struct sys_collector *sc = calloc(1, sizeof(*sc));
	const char *force = getenv("AP_SYSCALL_ATTACH");
	int err;

	if (!sc)
		return -ENOMEM;
	c->priv = sc;
	sc->owner = c;
	sc->slow_stacks = opts->slow_stacks;
	sc->histograms = opts->histograms;
	sc->min_latency_ns = opts->min_latency_ns;
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
	if (!sc->table || !sc->percpu || !sc->percpu_u64)
		return -ENOMEM;
	err = ap_sys_profile_init(c->profile, opts->min_latency_ns);
	if (err)
		return err;

	sc->raw_tp = force && strcmp(force, "raw_tp") == 0;
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

	for (size_t i = 0; i < opts->npids; i++) {
		__u32 pid = (__u32)opts->pids[i];
		__u8 yes = 1;

		if (bpf_map_update_elem(bpf_map__fd(sc->skel->maps.target_pids), &pid, &yes, 0)) {
			err = -errno;
			snprintf(msg, len, "cannot add pid %u to the filter: %s", pid, strerror(-err));
			return err;
		}
	}
	/* exit first: an exit without its enter is ignored, an enter without exit is not */
	sc->exit_link = attach_one(sc, sc->skel->progs.sys_exit, "sys_exit");
	if (!sc->exit_link) {
		err = -errno;
		snprintf(msg, len, "attaching to sys_exit failed: %s", strerror(-err));
		return err;
	}
	sc->enter_link = attach_one(sc, sc->skel->progs.sys_enter, "sys_enter");
	if (!sc->enter_link) {
		err = -errno;
		snprintf(msg, len, "attaching to sys_enter failed: %s", strerror(-err));
		return err;
	}
	return 0;
}

static int sys_poll_fd(struct ap_collector *c)
{
	return -1;
}

static int sys_consume(struct ap_collector *c)
{
	return 0;
}

static int keybuf_push(struct keybuf *kb, const void *key)
{
	if (kb->n == kb->cap) {
		size_t ncap = kb->cap ? kb->cap * 2 : 256;
		void *nk = realloc(kb->keys, ncap * kb->size);

		if (!nk)
			return -ENOMEM;
		kb->keys = nk;
		kb->cap = ncap;
	}
	memcpy((char *)kb->keys + kb->n * kb->size, key, kb->size);
	kb->n++;
	return 0;
}

static void *keybuf_at(struct keybuf *kb, size_t i)
{
	return (char *)kb->keys + i * kb->size;
}

/* Every key of a map. Keys are pid first, so keys of one process stay comparable. */
static int collect_keys(int fd, struct keybuf *kb)
{
	char key[32], next[32];
	void *prev = NULL;
	int err;

	kb->n = 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		err = keybuf_push(kb, next);
		if (err)
			return err;
		memcpy(key, next, kb->size);
		prev = key;
	}
	return 0;
}

static bool is_dead(const struct sys_collector *sc, uint32_t pid)
{
	for (size_t i = 0; i < sc->ndead; i++)
		if (sc->dead[i] == pid)
			return true;
	return false;
}

/* Pids of `kb` whose process is gone, checked before their values are read: a process that
 * is gone makes no more calls, so its last read is final and its entries can go. */
static int find_dead(struct sys_collector *sc, struct keybuf *kb)
{
	for (size_t i = 0; i < kb->n; i++) {
		uint32_t pid = *(uint32_t *)keybuf_at(kb, i);

		if (is_dead(sc, pid) || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (sc->ndead == sc->dead_cap) {
			size_t ncap = sc->dead_cap ? sc->dead_cap * 2 : 64;
			uint32_t *nd = realloc(sc->dead, ncap * sizeof(*nd));

			if (!nd)
				return -ENOMEM;
			sc->dead = nd;
			sc->dead_cap = ncap;
		}
		sc->dead[sc->ndead++] = pid;
	}
	return 0;
}

static int read_stats(struct sys_collector *sc, int fd)
{
	struct ap_sys_totals live;
	char comm[AP_SYS_COMM_LEN + 1];
	int err;

	for (size_t i = 0; i < sc->stats_keys.n; i++) {
		const struct ap_sys_key *k = keybuf_at(&sc->stats_keys, i);

		if (bpf_map_lookup_elem(fd, k, sc->percpu))
			continue;
		ap_sys_totals_from_percpu(&live, comm, sc->percpu, sc->ncpus);
		err = ap_sys_table_set(sc->table, k, comm, &live);
		if (err)
			return err;
	}
	return 0;
}

static int read_errnos(struct sys_collector *sc, int fd)
{
	for (size_t i = 0; i < sc->errno_keys.n; i++) {
		const struct ap_sys_err_key *k = keybuf_at(&sc->errno_keys, i);
		__u64 sum = 0;
		int err;

		if (bpf_map_lookup_elem(fd, k, sc->percpu_u64))
			continue;
		for (int cpu = 0; cpu < sc->ncpus; cpu++)
			sum += sc->percpu_u64[cpu];
		err = ap_sys_table_set_errno(sc->table, k, sum);
		if (err)
			return err;
	}
	return 0;
}

static int read_slow(struct sys_collector *sc, struct ap_collector *c, int fd)
{
	int stacks_fd = bpf_map__fd(sc->skel->maps.sys_stacks);

	for (size_t i = 0; i < sc->slow_keys.n; i++) {
		const struct ap_sys_slow_key *k = keybuf_at(&sc->slow_keys, i);
		struct ap_sys_slow_val v;
		uint64_t dcount, dns;
		const __u64 *us = NULL;
		int err;

		/* the key's entry names the sample; a brand-new one waits for the next drain */
		if (!ap_sys_table_find(sc->table, k->pid, k->nr) ||
		    bpf_map_lookup_elem(fd, k, &v))
			continue;
		err = ap_sys_table_slow_delta(sc->table, k, v.count, v.total_ns, &dcount, &dns);
		if (err)
			return err;
		if (!dcount)
			continue;
		if (k->stack_id >= 0 && bpf_map_lookup_elem(stacks_fd, &k->stack_id, sc->ustack) == 0)
			us = sc->ustack;
		else
			sc->slow_unresolved += dcount;
		err = ap_sys_record_slow(c->profile, c->sym, sc->table, k, dcount, dns, us);
		if (err)
			return err;
	}
	return 0;
}

static void delete_dead(struct sys_collector *sc, int fd, struct keybuf *kb)
{
	for (size_t i = 0; i < kb->n; i++) {
		void *k = keybuf_at(kb, i);

		if (is_dead(sc, *(uint32_t *)k))
			bpf_map_delete_elem(fd, k);
	}
}

static int sys_drain(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	int stats_fd, errno_fd, slow_fd, err;

	if (!sc || !sc->skel)
		return 0;
	stats_fd = bpf_map__fd(sc->skel->maps.sys_stats);
	errno_fd = bpf_map__fd(sc->skel->maps.sys_errnos);
	slow_fd = bpf_map__fd(sc->skel->maps.sys_slow);
	sc->stats_keys.size = sizeof(struct ap_sys_key);
	sc->errno_keys.size = sizeof(struct ap_sys_err_key);
	sc->slow_keys.size = sizeof(struct ap_sys_slow_key);
	sc->ndead = 0;

	err = collect_keys(stats_fd, &sc->stats_keys);
	if (!err)
		err = collect_keys(errno_fd, &sc->errno_keys);
	if (!err && sc->slow_stacks)
		err = collect_keys(slow_fd, &sc->slow_keys);
	if (!err)
		err = find_dead(sc, &sc->stats_keys);
	if (!err)
		err = read_stats(sc, stats_fd);
	if (!err)
		err = read_errnos(sc, errno_fd);
	if (!err && sc->slow_stacks)
		err = read_slow(sc, c, slow_fd);
	if (err) {
		sc->drain_errors++;
		return err;
	}
	/* everything of the dead is read: keep it as a base, free the kernel entries */
	for (size_t i = 0; i < sc->ndead; i++)
		ap_sys_table_retire_pid(sc->table, sc->dead[i]);
	sc->processes_retired += sc->ndead;
	delete_dead(sc, stats_fd, &sc->stats_keys);
	delete_dead(sc, errno_fd, &sc->errno_keys);
	if (sc->slow_stacks)
		delete_dead(sc, slow_fd, &sc->slow_keys);
	return 0;
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

/* Once, after the run loop's last drain: stop tracing, read the final values, build the
 * profile's per-syscall samples. */
static void finish(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	if (!sc || sc->finished || !sc->skel)
		return;
	sc->finished = true;
	bpf_link__destroy(sc->enter_link);
	sc->enter_link = NULL;
	bpf_link__destroy(sc->exit_link);
	sc->exit_link = NULL;
	sys_drain(c);
	ap_sys_table_sort_errnos(sc->table);
	if (ap_sys_profile_finish(c->profile, sc->table))
		sc->drain_errors++;
}

static const char *const bpf_stat_names[AP_SYS_STAT_MAX] = {
	[AP_SYS_STAT_TASK_STORAGE_ERR] = "task_storage_errors",
	[AP_SYS_STAT_UNMATCHED_EXIT] = "unmatched_exits",
	[AP_SYS_STAT_STATS_FULL] = "counts_map_full",
	[AP_SYS_STAT_ERRNO_FULL] = "errno_map_full",
	[AP_SYS_STAT_SLOW_FULL] = "slow_map_full",
	[AP_SYS_STAT_STACK_ERR] = "user_stack_errors",
	[AP_SYS_STAT_STACK_COLLISION] = "stack_map_collisions",
};

static void sys_report_stats(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;
	uint64_t calls = 0, errors = 0, slow = 0;
	int fd;

	if (!sc || !sc->skel)
		return;
	finish(c);
	fd = bpf_map__fd(sc->skel->maps.sys_counters);
	for (__u32 i = 0; i < AP_SYS_STAT_MAX; i++) {
		__u64 sum = 0;

		if (!bpf_stat_names[i] || bpf_map_lookup_elem(fd, &i, sc->percpu_u64))
			continue;
		for (int cpu = 0; cpu < sc->ncpus; cpu++)
			sum += sc->percpu_u64[cpu];
		ap_profile_set_stat(c->profile, bpf_stat_names[i], sum);
	}
	for (size_t i = 0; i < ap_sys_table_len(sc->table); i++) {
		const struct ap_sys_entry *e = ap_sys_table_entry(sc->table, i);

		calls += e->sum.count + e->sum.noreturn;
		errors += e->sum.errors;
		slow += e->sum.slow;
	}
	ap_profile_set_stat(c->profile, "calls", calls);
	ap_profile_set_stat(c->profile, "errors", errors);
	ap_profile_set_stat(c->profile, "slow_calls", slow);
	/* a program that finds itself already running on its CPU skips the event */
	ap_profile_set_stat(c->profile, "recursion_misses",
			    recursion_misses(sc->skel->progs.sys_enter) +
				    recursion_misses(sc->skel->progs.sys_exit));
	ap_profile_set_stat(c->profile, "slow_stacks_unresolved", sc->slow_unresolved);
	ap_profile_set_stat(c->profile, "processes_retired", sc->processes_retired);
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

static void sys_destroy(struct ap_collector *c)
{
	struct sys_collector *sc = c->priv;

	if (!sc)
		return;
	bpf_link__destroy(sc->enter_link);
	bpf_link__destroy(sc->exit_link);
	syscall_bpf__destroy(sc->skel);
	ap_sys_table_free(sc->table);
	free(sc->percpu);
	free(sc->percpu_u64);
	free(sc->stats_keys.keys);
	free(sc->errno_keys.keys);
	free(sc->slow_keys.keys);
	free(sc->dead);
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
	.destroy = sys_destroy,
};
