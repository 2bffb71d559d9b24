/* SPDX-License-Identifier: MIT */
/*
 * Shared by unwinder.c (processes, public API) and unwinder_files.c (file tables, the compile
 * worker). Not a public API.
 *
 * Threads: the agent's event loop calls the public functions; one worker thread compiles new
 * files and publishes their tables (publishing into a map of maps waits for an RCU grace
 * period, ~16 ms, which must not hold up the event loop). `lock` guards everything below it.
 */
#ifndef AP_UNWINDER_INTERNAL_H
#define AP_UNWINDER_INTERNAL_H

#include <linux/types.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfi.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/proc_maps.h"
#include "unwinder.h"

enum { TABLE_PENDING, TABLE_READY };

/* One file content's table, shared by every alias and process. */
struct utable {
	struct ap_hnode by_bid;
	struct utable *lru_prev, *lru_next; /* idle list, while refs == 0 */
	struct utable *all_prev, *all_next; /* every table, for cleanup */
	struct ualias *aliases;
	struct ap_cfi_seg *segs;
	uint64_t base;
	uint64_t bytes; /* kernel memory of its inner map */
	const uint64_t *view; /* its inner map mapped read-only, for replays (or NULL) */
	size_t view_len;
	uint32_t nsegs;
	uint32_t slot; /* AP_UNWIND_NO_FILE: no table (no CFI, failed, pending) */
	uint32_t nbuckets;
	uint32_t nrows;
	uint8_t shift;
	uint32_t refs; /* process mappings using it, plus one while its compile is queued */
	uint8_t state; /* TABLE_PENDING until the worker is done with it */
	bool idle;
	uint64_t idle_since_ns; /* while idle: when its last user let it go */
	uint64_t queued_ns;	/* when its compile was queued */
	char build_id[AP_CFI_BUILD_ID_HEX];
};

/* A file identity (device, inode, size, mtime) resolved to a table. */
struct ualias {
	struct ap_hnode node;
	struct ualias *next_alias;
	struct utable *table;
	uint64_t dev, ino, size, mtime_ns;
};

/* An executable mapping of a process. */
struct xmap {
	uint64_t start, end, offset;
	uint64_t dev, ino;
	uint8_t kind; /* XMAP_* */
};
enum { XMAP_FILE, XMAP_ANON, XMAP_VDSO };

/* A process with tables. */
struct upid {
	struct ap_hnode node;
	struct xmap *maps;    /* executable mappings, sorted */
	struct utable **mtab; /* per mapping: its table (a reference), or NULL */
	uint32_t nmaps;
	uint32_t nchunks;     /* entries in unwind_pids */
	int pid;
	bool exited;	      /* kept until deferred samples had their chance */
	uint64_t exited_gen;  /* ap_unwinder_gc() generation it exited in */
	uint64_t maps_hash;
	uint64_t scanned_ns;
};

struct job {
	struct job *next;
	struct utable *t;
	int fd; /* the file, opened through /proc/PID/map_files while it was mapped */
};

/* A table in its filled inner map, waiting for the installer to put it in its slot. */
struct install {
	struct install *next;
	struct utable *t;
	struct ap_cfi_table c; /* its layout (segs owned here); the image is in the map */
	int map_fd;
	size_t map_len;
	uint32_t slot;
	bool cached;
	uint64_t t0; /* when its job started */
	uint64_t reserved; /* bytes counted in the unwinder's `inflight` until it is in */
};

struct ap_unwinder {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* a job was queued, or stop */
	pthread_cond_t idle; /* no job queued, running or installing */
	pthread_cond_t install_wake; /* an install was queued, or stop */
	pthread_t worker, installer;
	bool worker_ok, installer_ok, stop;
	/* the installer's own stop: set after the worker has stopped, so that it finishes what
	 * the worker hands over until then (with `stop` alone it could quit first, leaking it) */
	bool install_stop;
	struct job *jobs, *jobs_tail;
	struct install *installs, **installs_tail;
	uint32_t busy; /* jobs queued, running or installing */

	int files_fd, pids_fd;
	struct ap_htab aliases, by_bid, pids;
	struct utable *lru_head, *lru_tail; /* oldest idle table first */
	struct utable *all;
	struct utable *vdso;
	bool vdso_tried;
	uint32_t *free_slots;
	uint32_t nfree;
	uint64_t idle_bytes, max_bytes, idle_max;
	uint64_t inflight; /* estimated bytes of tables compiled but not installed yet */
	bool freeze_maps;  /* tests (AP_TEST_FREEZE_MAPS): a process's mappings are read once */
	uint64_t next_gc_ns;
	uint64_t gc_gen; /* ap_unwinder_gc() calls */
	struct ap_unwinder_stats st;
	char cache_dir[4096]; /* compiled tables on disk (unwinder_cache.c); "" off */
	char agent_id[AP_CFI_BUILD_ID_HEX]; /* our own build-id: whose cached tables we trust */
	uint64_t cache_untrusted; /* by the worker without `lock`: atomics only */
};

/* unwinder_files.c; all with `lock` held */
struct utable *ap_uw_table_for_file(struct ap_unwinder *u, int pid, const struct xmap *m);
struct utable *ap_uw_table_for_vdso(struct ap_unwinder *u);
void ap_uw_table_get(struct ap_unwinder *u, struct utable *t);
void ap_uw_table_put(struct ap_unwinder *u, struct utable *t);
void ap_uw_tables_trim(struct ap_unwinder *u); /* idle tables past their grace period */
/* the table of a file seen before, by st_dev and inode alone (NULL: none) */
struct utable *ap_uw_table_by_inode(struct ap_unwinder *u, uint64_t dev, uint64_t ino);
void ap_uw_tables_free(struct ap_unwinder *u); /* at exit: the maps are closed already */
int ap_uw_worker_start(struct ap_unwinder *u); /* without the lock */
void ap_uw_worker_stop(struct ap_unwinder *u); /* without the lock */
/* the end of a job (with the lock): its table in slot `slot` (AP_UNWIND_NO_FILE and err
 * on failure), taking c's segs; the table is ready, its processes updated */
void ap_uw_job_finish(struct ap_unwinder *u, struct utable *t, struct ap_cfi_table *c,
		      uint32_t slot, uint64_t bytes, bool cached, int err, uint64_t t0);

/* unwinder_install.c: the installer thread puts filled inner maps in their slots, all that
 * are ready in one batch (each update of a map-in-map waits for an RCU grace period) */
int ap_uw_installer_start(struct ap_unwinder *u);  /* without the lock */
void ap_uw_installer_stop(struct ap_unwinder *u);  /* without the lock; after the worker */
void ap_uw_install_queue(struct ap_unwinder *u, struct install *in); /* with the lock */

/* unwinder.c, with `lock` held: table t is ready; refresh the processes that use it */
void ap_uw_table_ready(struct ap_unwinder *u, struct utable *t);
struct upid *ap_uw_pid_find(struct ap_unwinder *u, int pid);

/* unwinder_cache.c: compiled tables on disk, by build-id. init: dir NULL for the default
 * place, "" off. load fills c, its image through sink; store writes c. 0 or -errno. */
int ap_uw_cache_init(struct ap_unwinder *u, const char *dir);
int ap_uw_cache_load(struct ap_unwinder *u, const char *build_id, struct ap_cfi_table *c,
		     const struct ap_cfi_sink *sink);
int ap_uw_cache_store(struct ap_unwinder *u, const char *build_id, const struct ap_cfi_table *c);

uint64_t ap_uw_map_memlock(int fd, uint64_t fallback);

#endif
