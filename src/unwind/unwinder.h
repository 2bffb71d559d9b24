/* SPDX-License-Identifier: MIT */
/*
 * The agent side of in-kernel unwinding: compiles the CFI of every executable file a process
 * maps into compact tables (cfi.h), keeps them in the BPF maps that src/bpf/unwind.h walks,
 * and keeps each process's table of mappings current (exec, dlopen, exit).
 *
 * Tables are shared: one per file content (build-id, else device+inode), whatever process,
 * mount namespace or path maps it. Files are read through /proc/PID/map_files, so deleted
 * binaries and binaries of containers work. Tables no process uses stay loaded (least
 * recently used first out) while they fit in a budget, so a binary run again and again is
 * compiled once.
 */
#ifndef AP_UNWINDER_H
#define AP_UNWINDER_H

#include <linux/types.h>
#include <stdint.h>

#include "bpf/unwind_table.h"

struct ap_unwinder;
struct bpf_object;

struct ap_unwinder_opts {
	/* kernel memory for file tables; 0: 128 MiB (a build machine's clang, rustc and cc1
	 * together need about 70) */
	uint64_t max_table_bytes;
	uint64_t idle_table_bytes; /* of which unused tables may keep; 0: 8 MiB */
	/* compiled tables kept on disk by build-id, reused by later runs: NULL for
	 * <cache root>/unwind (src/lib/cache_dir.h), "" for none */
	const char *cache_dir;
};

struct ap_unwinder_stats {
	uint64_t pids_loaded;	    /* process tables installed (first load, exec, re-scan) */
	uint64_t pids_missed;	    /* process gone (or without user mappings) at load */
	uint64_t mappings_added;    /* mappings learnt from deferred samples (the process gone) */
	uint64_t rescans;	    /* re-scans asked for by BPF (pc outside every mapping) */
	uint64_t rescans_unchanged; /* ... that found the same mappings */
	uint64_t files_compiled;    /* ELF files whose CFI was compiled */
	uint64_t files_cached;	    /* ... of which loaded from the on-disk cache instead */
	uint64_t cache_untrusted;   /* cache entries not ours (planted link, other owner): skipped */
	uint64_t files_shared;	    /* files found under another path/inode by build-id */
	uint64_t files_no_cfi;	    /* files without CFI: unwound with frame pointers */
	uint64_t files_failed;	    /* unreadable, too big, or over the memory budget */
	uint64_t files_over_budget; /* ... of which found no room within max_table_bytes */
	uint64_t cfi_fdes_bad;	    /* malformed FDEs skipped in the file tables loaded */
	uint64_t cfi_limit_hits;    /* CFI limits hit (cfi.h AP_CFI_MAX_*): FDEs dropped,
				     * sections not read, files over AP_CFI_MAX_ROWS */
	uint64_t files_evicted;	    /* unused tables dropped to stay in budget */
	uint64_t install_batches;   /* slot updates (one RCU grace period each) */
	uint64_t rows;		    /* rows loaded now */
	uint64_t table_bytes;	    /* kernel memory of the file tables loaded now */
	uint64_t table_bytes_peak;
	uint64_t pid_table_bytes;   /* kernel memory of the process tables now */
	uint64_t compile_ns;	    /* time spent compiling and loading file tables */
	uint64_t files_live;	    /* file tables loaded now */
	uint64_t pids_live;	    /* processes with tables now */
	uint64_t cache_refused;	    /* on-disk cache entries unusable (damaged, stale): compiled */
	uint64_t cache_write_errors; /* compiled tables not cached (disk full, read-only, ...) */
};

/* Create the table maps and the compile worker thread. Returns NULL with errno set (EPERM
 * without CAP_BPF, ENOTSUP when the kernel lacks map-in-map arrays). Free with
 * ap_unwinder_free(). Every function may be called with a NULL unwinder (no-op). */
struct ap_unwinder *ap_unwinder_new(const struct ap_unwinder_opts *opts);
void ap_unwinder_free(struct ap_unwinder *u);

/* Make a BPF object that includes src/bpf/unwind.h use this unwinder's tables (call between
 * open and load). Returns 0 or -errno. */
int ap_unwinder_bind(struct ap_unwinder *u, struct bpf_object *obj);

/* Install (or refresh) the tables of process `pid`: after it is first seen and after exec.
 * Returns 1 when its tables changed, 0 when its mappings had not, -ESRCH (gone, or no user
 * mappings) or -errno. */
int ap_unwinder_load_pid(struct ap_unwinder *u, int pid);
/* Same, unless it was (re)loaded in the last 5 ms: for a burst of samples of one process. */
int ap_unwinder_refresh_pid(struct ap_unwinder *u, int pid);
/* BPF saw a pc of `pid` outside its known mappings: re-read them (at most every 100 ms per
 * process; nothing is reloaded when the mappings did not change). Returns 1 when the tables
 * changed, 0 when not, or -errno. */
int ap_unwinder_rescan_pid(struct ap_unwinder *u, int pid);
/* The process replaced its image: forget the old mappings, load the new ones (which may fail
 * if it is gone already: then it has none, rather than the old image's). */
int ap_unwinder_exec_pid(struct ap_unwinder *u, int pid);

/* One file mapping of pid (kernel dev_t encoding: major << 20 | minor, inode, file offset in
 * bytes) that its tables lack, as a deferred sample saw it: added when that file's table is
 * known from another process. For a process that mapped a library and died before its
 * mappings could be read. Returns 1 (added), 0 (nothing to do, unknown file) or -errno. */
int ap_unwinder_add_mapping(struct ap_unwinder *u, int pid, uint64_t start, uint64_t end,
			    uint64_t offset, uint32_t kdev, uint64_t ino);
/* Drop the tables of a process that exited. */
void ap_unwinder_pid_exited(struct ap_unwinder *u, int pid);
/* Drop the tables of processes that no longer exist (exit events can be lost). Cheap to call
 * often: it checks at most every few seconds. */
void ap_unwinder_gc(struct ap_unwinder *u);
/* New files are compiled by a worker thread; their processes use frame pointers for them
 * until then. Wait until no compile is queued or running (e.g. for the processes loaded
 * before sampling starts). Returns 0 or -ETIMEDOUT. */
int ap_unwinder_wait_idle(struct ap_unwinder *u, unsigned int timeout_ms);

void ap_unwinder_get_stats(const struct ap_unwinder *u, struct ap_unwinder_stats *out);

/*
 * Samples the BPF walker could not finish because tables were missing (new process, library
 * just mapped, table still compiling) reach the agent as a snapshot: the user registers and
 * the top of the stack. They are unwound here with the same tables and step function.
 */
enum ap_unwinder_pid_state {
	AP_UNWINDER_PID_UNKNOWN = 0, /* no tables for it (yet, or any more) */
	AP_UNWINDER_PID_PENDING = 1, /* some of its files are still being compiled */
	AP_UNWINDER_PID_READY = 2,
	AP_UNWINDER_PID_EXITED = 4,  /* flag: it exited (its tables stay a little longer) */
};
int ap_unwinder_pid_state(struct ap_unwinder *u, int pid);

struct ap_unwinder_snapshot {
	uint64_t pc, sp, bp;
	const void *stack; /* stack_len bytes copied from sp up */
	size_t stack_len;
};

/* Unwind a snapshot of process `pid` with its tables as they are now. Writes up to `max` pcs
 * (leaf first) into ips and returns their number; *status gets an enum ap_unwind_status
 * (AP_UNWIND_FAIL_READ: the walk went beyond the copied stack). */
size_t ap_unwinder_replay(struct ap_unwinder *u, int pid, const struct ap_unwinder_snapshot *s,
			  uint64_t *ips, size_t max, uint32_t *status);

/*
 * A queue of snapshots waiting for their process's tables (unwinder_defer.c). Each carries
 * an opaque payload of the collector (its aggregation key, its kernel stack) that is handed
 * back, with the unwound pcs (leaf first, zero-terminated, at most AP_UNWIND_MAX_FRAMES),
 * when the sample is replayed.
 */
struct ap_unwind_deferq;

struct ap_unwind_deferq_stats {
	uint64_t replayed; /* snapshots unwound */
	uint64_t complete; /* ... down to the outermost frame */
	uint64_t early;	   /* ... before their tables were ready (queue full, too old) */
};

typedef void (*ap_unwind_replayed_fn)(void *ctx, const void *payload, const uint64_t *ips,
				      size_t n, uint32_t status);

/* Returns NULL with errno set. At most the memory of `max` full-window snapshots waits (up to
 * 8 * max short ones); more are unwound at once.
 * Free with ap_unwind_deferq_free(). */
struct ap_unwind_deferq *ap_unwind_deferq_new(struct ap_unwinder *u, size_t max,
					      ap_unwind_replayed_fn fn, void *ctx);
void ap_unwind_deferq_free(struct ap_unwind_deferq *q);
/* Queue a copy of a sample. Returns 0 or -ENOMEM (the sample is then lost: counted). */
int ap_unwind_deferq_push(struct ap_unwind_deferq *q, int pid, const void *payload,
			  size_t payload_len, const struct ap_unwinder_snapshot *s);
/* Replay the snapshots whose process is ready, or has waited `max_age` flushes; all of them
 * with max_age 0. Call before ap_unwinder_gc() (exited processes stay until then). */
void ap_unwind_deferq_flush(struct ap_unwind_deferq *q, unsigned int max_age);
void ap_unwind_deferq_get_stats(const struct ap_unwind_deferq *q,
				struct ap_unwind_deferq_stats *out);

/* Sum the per-CPU `unwind_stats` map of a BPF object into out[AP_UNWIND_STAT_MAX].
 * Returns 0 or -errno. */
int ap_unwind_read_bpf_stats(int stats_map_fd, uint64_t *out);
/* Stat name of an AP_UNWIND_STAT_* slot ("stacks_complete", ...). */
const char *ap_unwind_stat_name(unsigned int stat);

#endif
