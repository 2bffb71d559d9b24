/* SPDX-License-Identifier: MIT */
/*
 * Pure part of the lock collector: aggregated BPF entries -> profile samples and the per-lock
 * table that feeds the lock text and JSON reports.
 *
 * The profile holds lock contention only (user locks and kernel locks): condition-variable
 * waits and unclassified futex waits are kept in the table, reported in their own sections,
 * and never added to the profile or to lock totals.
 */
#ifndef AP_LOCK_RECORD_H
#define AP_LOCK_RECORD_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bpf/lock.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"

/* Value types of a lock profile, in this order (pprof's Go mutex-profile names). */
enum { AP_LOCK_VALUE_CONTENTIONS = 0, AP_LOCK_VALUE_DELAY = 1 };

/* How a lock is reported. */
enum ap_lock_group {
	AP_LOCK_GROUP_LOCK = 0,	   /* lock contention: user locks and kernel locks */
	AP_LOCK_GROUP_CONDVAR = 1, /* condition-variable waits: not lock contention */
	AP_LOCK_GROUP_OTHER = 2,   /* futex waits that are not recognisable locks */
};

enum ap_lock_group ap_lock_kind_group(uint32_t kind);
bool ap_lock_kind_is_kernel(uint32_t kind);
/* "mutex", "pi-mutex", "rwlock", "futex-lock", "condvar", "other", "spinlock", ... */
const char *ap_lock_kind_name(uint32_t kind);
/* Whether the kind can ever name a holder. */
bool ap_lock_kind_has_owner(uint32_t kind);
/* LCB_F_* flags as "SPIN|READ" into buf ("none" for 0). Returns buf. */
const char *ap_lock_flags_str(uint32_t flags, char *buf, size_t len);
/* Name of key.flags of a user wait: "FUTEX_WAIT", "FUTEX_LOCK_PI", "futex_waitv", ... */
const char *ap_lock_futex_op_name(uint32_t op);

/*
 * Names that need the live system (/proc, kallsyms); the collector provides them, tests fake
 * them. Either callback may be NULL. Both write "" when they know nothing.
 */
struct ap_lock_resolver {
	void *ctx;
	/* The lock object at addr: "g_mutex" / "libfoo.so:g_lock+0x8" / "[heap]" for user
	 * locks of pid, a kernel symbol for kernel locks (kernel = true). */
	void (*lock_name)(void *ctx, uint32_t pid, uint64_t addr, bool kernel, char *buf,
			  size_t len);
	/* comm of thread tid in process pid. */
	void (*thread_comm)(void *ctx, uint32_t pid, uint32_t tid, char *buf, size_t len);
};

struct ap_lock_holder {
	uint32_t tid; /* AP_HOLDER_UNKNOWN / AP_HOLDER_READERS when not a tid */
	char comm[AP_LOCK_COMM_LEN];
	uint64_t count;
	uint64_t wait_ns;
	uint64_t eagain;
};

struct ap_lock_waiter {
	uint32_t pid;
	uint32_t tid;
	char comm[AP_LOCK_COMM_LEN];
	uint64_t count;
	uint64_t wait_ns;
};

struct ap_lock_stack {
	uint32_t stack; /* profile stack id (the waiter's kernel + user frames, leaf first) */
	uint64_t count;
	uint64_t wait_ns;
};

/* One lock: user locks are identified by (pid, addr), kernel locks by addr. */
struct ap_lock_entry {
	uint64_t addr;
	uint32_t pid;	 /* user locks: the process; kernel locks: 0 */
	uint32_t kind;	 /* most specific kind seen */
	uint32_t flags;	 /* kernel: LCB_F_* seen, OR-ed; user: 1 << futex command seen, OR-ed */
	uint32_t lclass; /* enum ap_lock_class */
	bool kernel;
	char name[128]; /* from the resolver, "" when unknown */
	uint64_t count, total_ns, max_ns, timeout, interrupted, error, eagain;
	uint64_t hist[AP_LOCK_HIST_SLOTS];
	struct ap_lock_holder *holders;
	size_t nholders, cap_holders;
	struct ap_lock_waiter *waiters;
	size_t nwaiters, cap_waiters;
	struct ap_lock_stack *stacks;
	size_t nstacks, cap_stacks;
};

struct ap_lock_table;

/* Returns NULL with errno set. The resolver is copied (may be NULL). Free with
 * ap_lock_table_free(). */
struct ap_lock_table *ap_lock_table_new(const struct ap_lock_resolver *res);
void ap_lock_table_free(struct ap_lock_table *t);
size_t ap_lock_table_count(const struct ap_lock_table *t);
const struct ap_lock_entry *ap_lock_table_entry(const struct ap_lock_table *t, size_t i);
/* Entries of `group`, sorted by total wait (descending); caller frees the array.
 * Returns the count, or -ENOMEM. */
long ap_lock_table_sorted(const struct ap_lock_table *t, enum ap_lock_group group,
			  const struct ap_lock_entry ***out);

struct ap_lock_record_stats {
	uint64_t lock_waits, lock_wait_ns;	 /* lock contention (in the profile) */
	uint64_t condvar_waits, condvar_wait_ns; /* kept apart */
	uint64_t other_waits, other_wait_ns;	 /* kept apart */
	uint64_t kernel_waits, kernel_wait_ns;	 /* subset of lock_* from kernel locks */
	uint64_t user_truncated;		 /* user stacks that hit the depth limit */
	uint64_t kernel_truncated;
};

/* Set up an empty lock profile. Returns 0 or -ENOMEM. */
int ap_lock_profile_init(struct ap_profile *p);

/*
 * Add one aggregated entry. kstack/ustack are leaf-first, zero-terminated stacks of at most
 * AP_LOCK_STACK_DEPTH frames, or NULL. sym may be NULL (frames are then left unresolved,
 * named by address). Returns 0 or -ENOMEM.
 */
int ap_lock_record(struct ap_profile *p, struct ap_symbolizer *sym, struct ap_lock_table *t,
		   const struct ap_lock_key *key, const struct ap_lock_val *val,
		   const __u64 *kstack, const __u64 *ustack, struct ap_lock_record_stats *st);

/* Same, with a filter's tag as the profile sample's "tag" label (NULL or "": none). */
int ap_lock_record_tagged(struct ap_profile *p, struct ap_symbolizer *sym,
			  struct ap_lock_table *t, const struct ap_lock_key *key,
			  const struct ap_lock_val *val, const __u64 *kstack, const __u64 *ustack,
			  const char *tag, struct ap_lock_record_stats *st);

/*
 * The aggregate one wait of wait_ns ending with `ret` adds in the kernel (per-event mode), for
 * `count` waits of total_ns in all (1 and wait_ns unless a filter scaled the event).
 */
void ap_lock_val_of_wait(struct ap_lock_val *v, uint64_t wait_ns, int64_t ret, uint64_t count,
			 uint64_t total_ns);

/* Add one holder-map entry (holder attribution and EAGAIN counts). Returns 0 or -ENOMEM. */
int ap_lock_record_holder(struct ap_lock_table *t, const struct ap_lock_holder_key *key,
			  const struct ap_lock_holder_val *val);

/* Reports (lock_report.c): the lock table as text or JSON. stats come from the profile. */
int ap_lock_write_text(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out,
		       size_t top_n, bool histograms);
int ap_lock_write_json(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out);

/* Live resolvers (lock_names.c): kernel data symbols from /proc/kallsyms, user objects from
 * /proc/PID/maps and ELF .symtab/.dynsym OBJECT symbols, comms from /proc and from `extra`
 * (a callback for threads that are gone, may be NULL). Free with ap_lock_names_free(). */
struct ap_lock_names;
struct ap_lock_names *ap_lock_names_new(void (*extra)(void *ctx, uint32_t tid, char *buf,
						      size_t len),
					void *extra_ctx);
void ap_lock_names_free(struct ap_lock_names *n);
/* A resolver backed by n. */
void ap_lock_names_resolver(struct ap_lock_names *n, struct ap_lock_resolver *out);
/* Symbol covering a kernel address from a kallsyms-format file (data symbols): name, or
 * name+0xoff. Returns 0, -ENOENT, or -errno. Exposed for tests. */
int ap_lock_ksym_lookup(struct ap_lock_names *n, const char *kallsyms_path, uint64_t addr,
			char *buf, size_t len);

#endif
