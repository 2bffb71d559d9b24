// SPDX-License-Identifier: MIT
/* CPU profiling: owns the cpu skeleton, its per-CPU perf events and its drains. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collector.h"
#include "cpu.skel.h"
#include "cpu_record.h"
#include "map_dump.h"
#include "lib/log.h"
#include "unwind_events.h"
#include "unwind/unwinder.h"

_Static_assert(sizeof(struct ap_cpu_key) == 40, "ap_cpu_key layout changed");
_Static_assert(sizeof(struct ap_stack) == AP_MAX_STACK_DEPTH * 8, "ap_stack layout changed");
_Static_assert(sizeof(struct ap_cpu_event) == 56, "ap_cpu_event layout changed");
_Static_assert(offsetof(struct ap_cpu_deferred, snap) == 1072 &&
		       sizeof(struct ap_cpu_deferred) == 1072 + sizeof(struct ap_user_snapshot),
	       "ap_cpu_deferred layout changed");

/* Bounds of the per-slot map sizes, which scale with CPUs x rate x drain interval. */
#define MIN_MAP_ENTRIES 1024u
#define MAX_MAP_ENTRIES 16384u /* ~17 MiB of preallocated stacks per slot */

struct cpu_collector {
	struct cpu_bpf *skel;
	struct ring_buffer *events;
	struct bpf_link **links;
	int *perf_fds;
	int nperf;
	struct bpf_link *exec_link, *exit_link;
	struct ap_cpu_record_stats rec;
	uint64_t drain_errors;
	uint64_t record_errors; /* per-event records that could not be added (no memory) */
	bool per_event;
	/* scratch for one drain */
	struct ap_map_dump counts_dump; /* scratch for one drain */
	struct ap_collector *owner;
	struct ap_unwinder *unwinder; /* CFI tables for the BPF stack walker; NULL: FP only */
	struct ap_unwind_events *uev; /* process events, samples waiting for their tables */
	bool stopped;		      /* probes detached: flush every deferred sample */
	struct ap_stack kstack;
	struct ap_stack ustack;
};

static int perf_event_open(struct perf_event_attr *attr, int cpu)
{
	return (int)syscall(__NR_perf_event_open, attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Entries of each counts/stacks map: --map-entries, else twice the samples one drain interval
 * can bring (CPUs x rate x interval), as a power of two within the bounds. */
static unsigned int map_entries(const struct ap_agent_opts *opts, int ncpus)
{
	if (opts->map_entries)
		return opts->map_entries;
	double per_slot = (double)ncpus * (double)opts->sample_rate_hz *
			  ((double)opts->drain_interval_ns / 1e9) * 2.0;
	unsigned int n = MIN_MAP_ENTRIES;

	while (n < per_slot && n < MAX_MAP_ENTRIES)
		n *= 2;
	return n;
}

/*
 * Test knobs, not options (tests/bpf/test_faults.py): the environment variable `name` (a
 * number >= 1), else `def`. They shrink the maps so that the "full" paths are exercised.
 */
static unsigned int test_knob(const char *name, unsigned int def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < 1 || n > MAX_MAP_ENTRIES * 1024ul) {
		ap_warn("cpu: ignoring %s=%s (expected 1..%lu)", name, v, MAX_MAP_ENTRIES * 1024ul);
		return def;
	}
	ap_debug("cpu: %s=%lu", name, n);
	return (unsigned int)n;
}

/* A deferred sample unwound in the agent: count it like a drained one. */
static void record_replayed(void *ctx, const void *payload, const uint64_t *ips, size_t n,
			    uint32_t status)
{
	struct cpu_collector *cc = ctx;
	const struct ap_cpu_deferred *d = payload; /* the fields before snap are there */

	/* through the --filter, if any, like the other samples, with the sample's time and CPU */
	if (ap_cpu_record_event(cc->owner, &d->key, d->ts_ns, d->cpu,
				d->key.kern_stack && d->kstack[0] ? d->kstack : NULL,
				n ? (const __u64 *)ips : NULL, &cc->rec))
		cc->record_errors++;
}

/* Look up the stacks of a key in the slot's stack map; NULL where it has none. */
static void lookup_stacks(struct cpu_collector *cc, int stacks_fd, const struct ap_cpu_key *k,
			  const __u64 **ks, const __u64 **us)
{
	*ks = NULL;
	*us = NULL;
	if (k->kern_stack && bpf_map_lookup_elem(stacks_fd, &k->kern_stack, &cc->kstack) == 0)
		*ks = cc->kstack.ips;
	if (k->user_stack && bpf_map_lookup_elem(stacks_fd, &k->user_stack, &cc->ustack) == 0)
		*us = cc->ustack.ips;
}

/* Per-event mode: one sample, aggregated here instead of in the kernel. */
static int handle_sample_event(void *ctx, void *data, size_t size)
{
	struct cpu_collector *cc = ctx;
	const struct ap_cpu_event *e = data;
	const __u64 *ks, *us;
	int stacks_fd;

	if (size < sizeof(*e))
		return 0;
	stacks_fd = bpf_map__fd(e->slot ? cc->skel->maps.stacks_1 : cc->skel->maps.stacks_0);
	lookup_stacks(cc, stacks_fd, &e->key, &ks, &us);
	/* through the --filter, if any, before it is aggregated */
	if (ap_cpu_record_event(cc->owner, &e->key, e->ts_ns, e->cpu, ks, us, &cc->rec))
		cc->record_errors++;
	return 0;
}

static void explain_open_error(int err, char *msg, size_t len)
{
	ap_explain_bpf_load_error(err, "CPU sampler", "it needs BPF with BTF", msg, len);
}

static int attach_perf_events(struct cpu_collector *cc, const struct ap_agent_opts *opts,
			      char *msg, size_t len)
{
	int ncpus = libbpf_num_possible_cpus(), err = 0;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = opts->sample_rate_hz,
	};

	if (ncpus <= 0) {
		snprintf(msg, len, "cannot count CPUs: %s", strerror(-ncpus));
		return ncpus ? ncpus : -EINVAL;
	}
	cc->links = calloc((size_t)ncpus, sizeof(*cc->links));
	cc->perf_fds = calloc((size_t)ncpus, sizeof(*cc->perf_fds));
	if (!cc->links || !cc->perf_fds)
		return -ENOMEM;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		int fd = perf_event_open(&attr, cpu);

		if (fd < 0) {
			if (errno == ENODEV) /* possible but offline CPU */
				continue;
			err = -errno;
			snprintf(msg, len, "perf_event_open(cpu-clock) on CPU %d failed: %s%s", cpu,
				 strerror(errno),
				 errno == EACCES || errno == EPERM ?
					 " (needs CAP_PERFMON: docs/security.md)" : "");
			return err;
		}
		cc->perf_fds[cc->nperf] = fd;
		cc->links[cc->nperf] = bpf_program__attach_perf_event(cc->skel->progs.cpu_sample, fd);
		cc->nperf++;
		if (!cc->links[cc->nperf - 1]) {
			err = -errno;
			cc->links[cc->nperf - 1] = NULL;
			snprintf(msg, len, "attaching the sampler to CPU %d failed: %s", cpu,
				 strerror(-err));
			return err;
		}
	}
	if (cc->nperf == 0) {
		snprintf(msg, len, "no online CPU accepted a cpu-clock perf event");
		return -ENODEV;
	}
	return 0;
}

static int cpu_start(struct ap_collector *c, const struct ap_agent_opts *opts, char *msg,
		     size_t len)
{
	struct cpu_collector *cc = calloc(1, sizeof(*cc));
	unsigned int entries;
	int err;

	if (!cc)
		return -ENOMEM;
	c->priv = cc;
	ap_map_dump_init(&cc->counts_dump, sizeof(struct ap_cpu_key), sizeof(__u64));
	cc->owner = c;
	err = ap_cpu_profile_init(c->profile, opts->sample_rate_hz);
	if (err)
		return err;

	cc->skel = cpu_bpf__open();
	if (!cc->skel) {
		err = -errno;
		explain_open_error(err, msg, len);
		return err;
	}
	cc->skel->rodata->cfg_filter_pids = opts->npids > 0;
	cc->skel->rodata->cfg_include_idle = opts->include_idle;
	cc->skel->rodata->cfg_per_event = opts->per_event;
	cc->per_event = opts->per_event;
	if (!opts->per_event) /* unused: keep it at one page */
		bpf_map__set_max_entries(cc->skel->maps.sample_events, (__u32)getpagesize());
	entries = test_knob("AP_TEST_CPU_MAP_ENTRIES", map_entries(opts, libbpf_num_possible_cpus()));
	if (getenv("AP_TEST_PROC_RING_BYTES")) /* a power of two, a multiple of the page size */
		bpf_map__set_max_entries(cc->skel->maps.proc_events,
					 test_knob("AP_TEST_PROC_RING_BYTES", 256 * 1024));
	bpf_map__set_max_entries(cc->skel->maps.stacks_0, entries);
	bpf_map__set_max_entries(cc->skel->maps.stacks_1, entries);
	bpf_map__set_max_entries(cc->skel->maps.counts_0, entries);
	bpf_map__set_max_entries(cc->skel->maps.counts_1, entries);
	if (opts->npids > AP_MAX_PIDS)
		return -E2BIG;
	/* user stacks: in-kernel CFI unwinding, or the kernel's frame-pointer walk without it */
	cc->unwinder = ap_collector_unwinder(c);
	if (!cc->unwinder || (err = ap_unwinder_bind(cc->unwinder, cc->skel->obj))) {
		ap_warn("cpu: unwind tables unavailable (%s): user stacks use frame pointers only",
			strerror(cc->unwinder ? -err : errno));
		cc->unwinder = NULL;
		cc->skel->rodata->cfg_unwind_tables = false;
	}
	/* samples taken before their tables are in are unwound here, later; process events
	 * keep the tables and the symbols current (also without tables) */
	cc->uev = ap_unwind_events_new(cc->unwinder, c->sym, offsetof(struct ap_cpu_deferred, snap),
				       128, record_replayed, cc);
	if (!cc->uev)
		return -ENOMEM;
	cc->skel->rodata->cfg_defer_unwind = ap_unwind_events_deferring(cc->uev);
	if (!cc->skel->rodata->cfg_defer_unwind) /* unused: keep it at one page */
		bpf_map__set_max_entries(cc->skel->maps.unwind_deferred, (__u32)getpagesize());

	err = cpu_bpf__load(cc->skel);
	if (err) {
		explain_open_error(err, msg, len);
		return err;
	}
	for (size_t i = 0; i < opts->npids; i++) {
		__u32 pid = (__u32)opts->pids[i];
		__u8 yes = 1;

		err = bpf_map_update_elem(bpf_map__fd(cc->skel->maps.target_pids), &pid, &yes, 0);
		if (err) {
			snprintf(msg, len, "cannot add pid %u to the filter: %s", pid, strerror(errno));
			return -errno;
		}
		/* the targets' tables before their first sample (other processes: when seen) */
		ap_unwinder_load_pid(cc->unwinder, (int)pid);
	}
	if (opts->npids && ap_unwinder_wait_idle(cc->unwinder, 5000) == -ETIMEDOUT)
		ap_warn("cpu: unwind tables still compiling: first samples use frame pointers");

	err = ap_unwind_events_add_rings(cc->uev, &cc->events,
					 bpf_map__fd(cc->skel->maps.proc_events),
					 bpf_map__fd(cc->skel->maps.unwind_deferred));
	if (err) {
		snprintf(msg, len, "cannot open the process-event ring buffers: %s", strerror(-err));
		return err;
	}
	if (cc->per_event) {
		err = ap_ring_add(&cc->events, bpf_map__fd(cc->skel->maps.sample_events),
				  handle_sample_event, cc);
		if (err) {
			snprintf(msg, len, "cannot open the sample ring buffer: %s", strerror(-err));
			return err;
		}
	}
	/* Exec/exit tracking improves symbolization of short-lived processes but is optional. */
	cc->exec_link = bpf_program__attach(cc->skel->progs.cpu_exec);
	if (!cc->exec_link)
		ap_warn("cpu: sched_process_exec tracking unavailable (%s): processes that exec "
			"during the run may be symbolized late", strerror(errno));
	cc->exit_link = bpf_program__attach(cc->skel->progs.cpu_exit);
	if (!cc->exit_link)
		ap_warn("cpu: sched_process_exit tracking unavailable (%s)", strerror(errno));

	return attach_perf_events(cc, opts, msg, len);
}

static int cpu_poll_fd(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;

	return cc && cc->events ? ring_buffer__epoll_fd(cc->events) : -1;
}

static int cpu_consume(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;

	return ap_unwind_events_consume(cc->uev, cc->events);
}

static int cpu_drain(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;
	struct timespec settle = { 0, 2 * 1000 * 1000 };
	int counts_fd, stacks_fd, err;
	__u32 slot;
	size_t n;

	/* learn about new processes first, so their mappings are known before symbolizing */
	cpu_consume(c);

	slot = cc->skel->bss->active_slot;
	cc->skel->bss->active_slot = !slot;
	__sync_synchronize();
	/* a sample that read the old slot just before the flip finishes within microseconds */
	nanosleep(&settle, NULL);
	/* per-event mode: the old slot's last events, while their stacks are still there */
	if (cc->per_event)
		cpu_consume(c);

	counts_fd = bpf_map__fd(slot ? cc->skel->maps.counts_1 : cc->skel->maps.counts_0);
	stacks_fd = bpf_map__fd(slot ? cc->skel->maps.stacks_1 : cc->skel->maps.stacks_0);
	err = ap_map_dump_take(&cc->counts_dump, counts_fd);
	n = cc->counts_dump.n;
	for (size_t i = 0; !err && i < n; i++) {
		const struct ap_cpu_key *k = ap_map_dump_key(&cc->counts_dump, i);
		const uint64_t *count = ap_map_dump_val(&cc->counts_dump, i);
		const __u64 *ks, *us;

		lookup_stacks(cc, stacks_fd, k, &ks, &us);
		err = ap_cpu_record(c->profile, c->sym, k, *count, ks, us, &cc->rec);
	}
	if (!err)
		err = ap_map_clear(stacks_fd, sizeof(__u64));
	else
		ap_map_clear(stacks_fd, sizeof(__u64));
	if (err)
		cc->drain_errors++;
	/* samples that waited for tables: those ready now, those that waited two drains, and
	 * all of them once the probes are gone; then forget exited processes */
	ap_unwind_events_flush(cc->uev, cc->stopped);
	return err;
}

static void cpu_stop(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;

	if (cc)
		cc->stopped = true;
	for (int i = 0; cc && i < cc->nperf; i++) {
		bpf_link__destroy(cc->links[i]);
		cc->links[i] = NULL;
		close(cc->perf_fds[i]);
		cc->perf_fds[i] = -1;
	}
}

static const char *const bpf_stat_names[AP_CPU_STAT_MAX] = {
	[AP_CPU_STAT_SAMPLES] = "bpf_samples",
	[AP_CPU_STAT_IDLE] = "idle_samples_skipped",
	[AP_CPU_STAT_FILTERED] = "samples_filtered_out",
	[AP_CPU_STAT_USER_STACK_ERR] = "user_stack_errors",
	[AP_CPU_STAT_KERN_STACK_ERR] = "kernel_stack_errors",
	[AP_CPU_STAT_STACKS_FULL] = "stack_map_full",
	[AP_CPU_STAT_COUNTS_FULL] = "counts_map_full",
	[AP_CPU_STAT_SAMPLE_EVENTS_DROPPED] = "sample_events_dropped",
};

int ap_unwind_report_stats(struct ap_unwinder *u, int stats_fd, struct ap_profile *p,
			   uint64_t *v)
{
	struct ap_unwinder_stats us;

	if (!u || ap_unwind_read_bpf_stats(stats_fd, v))
		return -1;
	for (unsigned int i = 0; i < AP_UNWIND_STAT_MAX; i++)
		ap_profile_set_stat(p, ap_unwind_stat_name(i), v[i]);
	ap_unwinder_get_stats(u, &us);
	ap_profile_set_stat(p, "unwind_processes_loaded", us.pids_loaded);
	ap_profile_set_stat(p, "unwind_processes_missed", us.pids_missed);
	ap_profile_set_stat(p, "unwind_mappings_from_samples", us.mappings_added);
	ap_profile_set_stat(p, "unwind_rescans", us.rescans);
	ap_profile_set_stat(p, "unwind_files_compiled", us.files_compiled);
	ap_profile_set_stat(p, "unwind_files_from_cache", us.files_cached);
	ap_profile_set_stat(p, "unwind_cache_untrusted", us.cache_untrusted);
	ap_profile_set_stat(p, "unwind_files_shared_by_build_id", us.files_shared);
	ap_profile_set_stat(p, "unwind_files_without_cfi", us.files_no_cfi);
	ap_profile_set_stat(p, "unwind_files_failed", us.files_failed);
	ap_profile_set_stat(p, "unwind_files_over_budget", us.files_over_budget);
	ap_profile_set_stat(p, "unwind_cfi_fdes_malformed", us.cfi_fdes_bad);
	ap_profile_set_stat(p, "unwind_cfi_limit_hits", us.cfi_limit_hits);
	ap_profile_set_stat(p, "unwind_files_evicted", us.files_evicted);
	ap_profile_set_stat(p, "unwind_install_batches", us.install_batches);
	ap_profile_set_stat(p, "unwind_table_rows", us.rows);
	ap_profile_set_stat(p, "unwind_table_bytes_peak", us.table_bytes_peak);
	ap_profile_set_stat(p, "unwind_compile_us", us.compile_ns / 1000);
	ap_profile_set_stat(p, "unwind_cache_refused", us.cache_refused);
	ap_profile_set_stat(p, "unwind_cache_write_errors", us.cache_write_errors);
	return 0;
}

/* How complete the user stacks were (BPF walker counters) and what the tables cost. */
static void report_unwind_stats(struct cpu_collector *cc, struct ap_profile *p)
{
	uint64_t v[AP_UNWIND_STAT_MAX], walked, fails, complete;
	struct ap_unwind_events_stats ds;

	if (ap_unwind_report_stats(cc->unwinder, bpf_map__fd(cc->skel->maps.unwind_stats), p, v))
		return;
	ap_unwind_events_get_stats(cc->uev, &ds);

	/* a deferred sample was counted by the walker as not finished; its replay decides */
	walked = v[AP_UNWIND_STAT_STACKS];
	complete = v[AP_UNWIND_STAT_COMPLETE] + v[AP_UNWIND_STAT_COMPLETE_FP] + ds.complete;
	fails = v[AP_UNWIND_STAT_FAIL_READ] + v[AP_UNWIND_STAT_FAIL_CFA] +
		v[AP_UNWIND_STAT_FAIL_NO_MAPPING];
	if (walked)
		ap_info("cpu: user stacks: %llu walked, %.1f%% complete (%llu using frame "
			"pointers, %llu unwound by the agent), %llu truncated at %d frames, %llu "
			"not unwindable, %llu before tables were loaded",
			(unsigned long long)walked, 100.0 * (double)complete / (double)walked,
			(unsigned long long)v[AP_UNWIND_STAT_COMPLETE_FP],
			(unsigned long long)ds.complete,
			(unsigned long long)v[AP_UNWIND_STAT_TRUNCATED], AP_UNWIND_MAX_FRAMES,
			(unsigned long long)fails, (unsigned long long)v[AP_UNWIND_STAT_NO_TABLES]);
}

static void cpu_report_stats(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;

	if (!cc || !cc->skel)
		return;
	ap_percpu_stats_report(bpf_map__fd(cc->skel->maps.cpu_stats), bpf_stat_names,
			       AP_CPU_STAT_MAX, c->profile);
	ap_profile_set_stat(c->profile, "samples", cc->rec.samples);
	ap_profile_set_stat(c->profile, "user_stacks_truncated", cc->rec.user_truncated);
	ap_profile_set_stat(c->profile, "kernel_stacks_truncated", cc->rec.kernel_truncated);
	ap_profile_set_stat(c->profile, "samples_without_stack", cc->rec.no_stack);
	ap_profile_set_stat(c->profile, "drain_errors", cc->drain_errors + cc->record_errors);
	ap_unwind_events_report(cc->uev, bpf_map__fd(cc->skel->maps.proc_stats), c->profile);
	report_unwind_stats(cc, c->profile);
}

/* The interval's profile out, a fresh one in: the symbolizer's snapshots, the unwinder and
 * the samples still waiting for their tables stay (they land in the next interval). */
static int cpu_rotate(struct ap_collector *c, struct ap_profile **profile, char **tables,
		      size_t *tables_len)
{
	struct ap_profile *np = ap_interval_fresh_profile(c->profile);

	if (!np)
		return -ENOMEM;
	*profile = c->profile;
	*tables = NULL;
	*tables_len = 0;
	c->profile = np;
	return 0;
}

static void cpu_destroy(struct ap_collector *c)
{
	struct cpu_collector *cc = c->priv;

	if (!cc)
		return;
	cpu_stop(c);
	bpf_link__destroy(cc->exec_link);
	bpf_link__destroy(cc->exit_link);
	ap_unwind_events_detach(cc->uev); /* its thread reads a ring of the object */
	ring_buffer__free(cc->events);
	cpu_bpf__destroy(cc->skel);
	ap_unwind_events_free(cc->uev);
	free(cc->links);
	free(cc->perf_fds);
	ap_map_dump_free(&cc->counts_dump);
	free(cc);
	c->priv = NULL;
}

const struct ap_collector_ops ap_cpu_collector_ops = {
	.name = "cpu",
	.mode = AP_MODE_CPU,
	.start = cpu_start,
	.poll_fd = cpu_poll_fd,
	.consume = cpu_consume,
	.stop = cpu_stop,
	.drain = cpu_drain,
	.report_stats = cpu_report_stats,
	.rotate = cpu_rotate,
	.destroy = cpu_destroy,
};
