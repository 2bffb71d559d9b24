/* SPDX-License-Identifier: MIT */
/*
 * A collector owns one BPF skeleton and fills one profile. The run loop talks to every mode
 * through this table, so adding a mode adds a collector, not a new pipeline.
 */
#ifndef AP_COLLECTOR_H
#define AP_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"

struct ap_collector;
struct ap_filter_hook;
struct ap_unwinder;
struct ap_unwinder_opts;

struct ap_collector_ops {
	const char *name;  /* the mode name: "cpu" */
	unsigned int mode; /* enum ap_mode bit */
	/* Open, load and attach. On failure returns -errno and a human reason in err. */
	int (*start)(struct ap_collector *c, const struct ap_agent_opts *opts, char *err,
		     size_t errlen);
	/* Fd to poll for per-event data (a ring buffer's epoll fd), or -1. */
	int (*poll_fd)(struct ap_collector *c);
	/* Consume whatever is ready on poll_fd without blocking. Returns 0 or -errno. */
	int (*consume)(struct ap_collector *c);
	/* Optional: stop producing events (detach the probes) so that the final drains see
	 * everything that was recorded. Maps stay readable. */
	void (*stop)(struct ap_collector *c);
	/* Move what the kernel aggregated so far into the profile. Returns 0 or -errno. */
	int (*drain)(struct ap_collector *c);
	/* Copy the run's counters (drops, failures) into the profile's stats. */
	void (*report_stats)(struct ap_collector *c);
	/*
	 * Optional: write the mode's own presentation of `fmt` (e.g. the per-lock text report or
	 * JSON). Return -ENOTSUP to let the generic writer handle the profile, 0 or -errno.
	 */
	int (*write)(struct ap_collector *c, enum ap_format fmt, FILE *out,
		     const struct ap_write_opts *opts);
	/*
	 * Continuous mode, after a drain (and the run loop's resolution of pending JIT names):
	 * hand out what was recorded since the last rotate, and go on recording into a fresh
	 * profile and fresh side tables. *profile gets the interval's profile (the caller frees
	 * it); *tables the mode's JSON report of the interval (malloc'd, *tables_len bytes), or
	 * NULL for modes without one. What lives across intervals stays: process snapshots,
	 * symbols, unwind tables, the BPF objects and the run's counters. Every event lands in
	 * exactly one interval. Returns 0 or -errno (then nothing was handed out and the
	 * interval goes on).
	 */
	int (*rotate)(struct ap_collector *c, struct ap_profile **profile, char **tables,
		      size_t *tables_len);
	void (*destroy)(struct ap_collector *c);
};

struct ap_collector {
	const struct ap_collector_ops *ops;
	struct ap_profile *profile; /* owned by the collector */
	struct ap_symbolizer *sym;  /* shared, owned by the run loop */
	struct ap_filter_hook *filter; /* --filter: owned by the run loop; NULL: none */
	/* the run's one unwinder, shared by its modes (ap_collector_unwinder): with --mode all
	 * a process's tables are compiled and loaded once, not once per mode */
	struct ap_unwinder **unwinder;
	const struct ap_unwinder_opts *unwinder_opts; /* how to make it */
	void *priv;
};

/* A failed BPF object load, explained: permission (not root), the verifier's refusal (the
 * log with -vv), or a kernel without what `what` needs (`needs`). */
void ap_explain_bpf_load_error(int err, const char *what, const char *needs, char *msg,
			       size_t len);

/* The run's unwinder, made by the first mode that asks; owned by the run loop, never freed
 * by a collector. NULL with errno set when it cannot be made (no CAP_BPF, no map-in-map). */
struct ap_unwinder *ap_collector_unwinder(struct ap_collector *c);

extern const struct ap_collector_ops ap_cpu_collector_ops;
extern const struct ap_collector_ops ap_lock_collector_ops;
extern const struct ap_collector_ops ap_syscall_collector_ops;
extern const struct ap_collector_ops ap_gpu_collector_ops;

/* An empty profile shaped like `p` (value types, period, default value, metadata): the
 * next interval's, in a collector's rotate. NULL with errno set. (interval.c) */
struct ap_profile *ap_interval_fresh_profile(const struct ap_profile *p);

/* Put an unwinder's stats in a profile: the walker's counters of the BPF object whose
 * `unwind_stats` map is stats_fd (also into v[AP_UNWIND_STAT_MAX]) and what its tables
 * cost. Returns 0, or -1 without an unwinder (nothing set). (cpu_collector.c) */
int ap_unwind_report_stats(struct ap_unwinder *u, int stats_fd, struct ap_profile *p,
			   uint64_t *v);

#endif
