/*
 * Pure part of the syscall collector: the userspace table of per-(process, syscall)
 * aggregates, the profile built from it, and the text/JSON reports.
 *
 * Everything is additive: aggregates evicted from the kernel's per-CPU caches while tracing,
 * and those left in the caches at the end, are added to the table; nothing is read twice.
 */
#ifndef AP_SYSCALL_RECORD_H
#define AP_SYSCALL_RECORD_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/hist.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"
#include "bpf/syscall.h"

struct ap_sys_errno_count {
	uint32_t err; /* positive errno */
	uint32_t pad;
	uint64_t count;
};

/* Aggregated values of one key. */
struct ap_sys_totals {
	uint64_t count; /* calls that returned; the histogram sums to it */
	uint64_t errors;
	uint64_t total_ns;
	uint64_t min_ns; /* valid when count > 0 */
	uint64_t max_ns;
	uint64_t slow;
	uint64_t noreturn; /* calls that never return (exit, exit_group) */
	uint64_t hist[AP_HIST_SLOTS];
};

struct ap_sys_entry {
	uint32_t pid;
	uint32_t nr; /* key nr: syscall number | AP_SYS_ABI_* */
	char comm[AP_SYS_COMM_LEN + 1];
	struct ap_sys_totals sum;
	struct ap_sys_errno_count *errnos; /* sorted by count, descending, after _sort() */
	size_t nerrnos;
	/* slow calls already in the profile with their stacks */
	uint64_t slow_stack_calls;
	uint64_t slow_stack_ns;
	size_t errnos_cap; /* internal */
};

struct ap_sys_table;

/* Returns NULL with errno set. Free with ap_sys_table_free(). */
struct ap_sys_table *ap_sys_table_new(void);
void ap_sys_table_free(struct ap_sys_table *t);

size_t ap_sys_table_len(const struct ap_sys_table *t);
const struct ap_sys_entry *ap_sys_table_entry(const struct ap_sys_table *t, size_t i);
const struct ap_sys_entry *ap_sys_table_find(const struct ap_sys_table *t, uint32_t pid,
					     uint32_t nr);

/* a += b (min/max merged, an empty side ignored). */
void ap_sys_totals_add(struct ap_sys_totals *a, const struct ap_sys_totals *b);

/* Add one kernel aggregate (an evicted or final cache way; empty ways are ignored).
 * Returns 0 or -ENOMEM. */
int ap_sys_table_add_agg(struct ap_sys_table *t, const struct ap_sys_agg *a);
/* Add `count` failures with errno `err` to (pid, nr). Returns 0 or -ENOMEM. */
int ap_sys_table_add_errno(struct ap_sys_table *t, uint32_t pid, uint32_t nr, uint32_t err,
			   uint64_t count);
/* One call delivered per event (filters, --per-event). */
struct ap_sys_call {
	uint32_t pid;
	uint32_t nr;	 /* key nr: syscall number | AP_SYS_ABI_* */
	int64_t ret;	 /* return value */
	uint64_t latency_ns;
	uint64_t min_latency_ns; /* --min-latency: slow at or above it; 0: none */
	uint64_t weight;	 /* calls it stands for (a filter may scale it); 0 means 1 */
	bool noreturn;		 /* exit, exit_group: no latency */
	char comm[AP_SYS_COMM_LEN]; /* process name (group leader), used if the key is new */
};

/* Add one call: exactly what the kernel's aggregate of the key gains from it (count or
 * noreturn, errors and errno, total/min/max, histogram, slow), `weight` times over.
 * Returns 0 or -ENOMEM. */
int ap_sys_table_add_call(struct ap_sys_table *t, const struct ap_sys_call *call);
/* Sort every entry's errnos by count (descending). */
void ap_sys_table_sort_errnos(struct ap_sys_table *t);

/*
 * The profile of syscall mode. Value types: "calls"/"count" and "latency"/"nanoseconds"
 * (the default weight). Every sample has the label syscall=NAME and ends (at its root) in a
 * pseudo frame "syscall:NAME" of module "[syscall]", so a flamegraph's first level below the
 * process is the syscall. Slow calls recorded with --slow-stacks continue with their user
 * stack above it; all other calls of the key form the pseudo frame's own (self) value.
 */
enum { AP_SYS_VALUE_CALLS = 0, AP_SYS_VALUE_LATENCY_NS = 1 };

/* Set up an empty profile for syscall mode. Returns 0 or -ENOMEM. */
int ap_sys_profile_init(struct ap_profile *p, uint64_t min_latency_ns);

/*
 * Add one slow call (event from the kernel) made from the user stack `ustack` (leaf first,
 * zero-terminated, at most AP_SYS_STACK_DEPTH; NULL when capture failed). Returns 0 or
 * -ENOMEM.
 */
int ap_sys_record_slow(struct ap_profile *p, struct ap_symbolizer *sym, struct ap_sys_table *t,
		       const struct ap_sys_slow_event *e, const __u64 *ustack);
/* Same for a slow call that stands for `calls` calls (a filter scaled its weight). */
int ap_sys_record_slow_n(struct ap_profile *p, struct ap_symbolizer *sym,
			 struct ap_sys_table *t, const struct ap_sys_slow_event *e,
			 const __u64 *ustack, uint64_t calls);

/* After the last read: one sample per entry for its calls not in a slow-stack sample.
 * Call once. Returns 0 or -ENOMEM. */
int ap_sys_profile_finish(struct ap_profile *p, struct ap_sys_table *t);

/*
 * Reports (syscall_report.c). The table should be sorted with ap_sys_table_sort_errnos().
 */
struct ap_sys_report_opts {
	bool histograms;	 /* text: print each row's latency histogram */
	size_t top_n;		 /* text: rows shown; 0 = default (50) */
	uint64_t min_latency_ns; /* 0: no slow column */
};

/* A better `strace -c`: one row per (process, syscall), sorted by total time. */
int ap_sys_write_text(const struct ap_sys_table *t, const struct ap_profile *p, FILE *out,
		      const struct ap_sys_report_opts *o);
/* JSON: entries with pid, comm, name, nr, count, errors by errno name, latencies, hist. */
int ap_sys_write_json(const struct ap_sys_table *t, const struct ap_profile *p, FILE *out,
		      const struct ap_sys_report_opts *o);

#endif
