/* SPDX-License-Identifier: MIT */
/*
 * Address -> function symbolization for user (ELF .symtab/.dynsym) and kernel (kallsyms)
 * frames, producing interned frames in a profile.
 *
 * Processes are snapshotted (their executable mappings read from /proc/PID/maps, and the
 * backing ELF files opened through /proc/PID/map_files or /proc/PID/root) when first seen, so
 * that they can still be symbolized after they exit. Symbol tables are cached per ELF file,
 * keyed by build-id (or device+inode when there is none), and shared between processes.
 */
#ifndef AP_SYMBOLIZER_H
#define AP_SYMBOLIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "profile.h"

struct ap_symbolizer;

struct ap_symbolizer_stats {
	uint64_t pids_snapshotted;  /* snapshots taken */
	uint64_t pids_missed;	    /* pid was gone before it could be snapshotted */
	uint64_t elf_loaded;	    /* distinct ELF files whose symbols were loaded */
	uint64_t elf_failed;	    /* ELF files that could not be read */
	uint64_t frames_resolved;   /* lookups that found a symbol */
	uint64_t frames_unresolved; /* lookups without a symbol ([unknown]) */
};

/* Returns NULL with errno set. Free with ap_symbolizer_free(). */
struct ap_symbolizer *ap_symbolizer_new(void);
void ap_symbolizer_free(struct ap_symbolizer *s);

/* Take (or refresh) the snapshot of a process: its executable mappings and their ELF
 * symbol tables. Call when a pid is first seen, after exec, and when an address falls outside
 * every known mapping (dlopen). Returns 0, -ESRCH when the process is gone (or has no user
 * mappings: a zombie, a kernel thread), or -errno. A failed refresh keeps the previous
 * snapshot. */
int ap_symbolizer_snapshot_pid(struct ap_symbolizer *s, int pid);

/* The process exited: its snapshot is released at the next ap_symbolizer_gc(). */
void ap_symbolizer_pid_exited(struct ap_symbolizer *s, int pid);
/* Release snapshots of exited processes. Call after each drain has symbolized their samples. */
void ap_symbolizer_gc(struct ap_symbolizer *s);

/*
 * Symbolize a user address of `pid` into a frame of `p` and return the frame id (UINT32_MAX on
 * allocation failure). `is_return_addr` is true for every frame except the leaf: such an
 * address points after a call, so addr-1 is looked up. Unknown pids are snapshotted on
 * demand. The frame carries the runtime address, the ELF-relative address (rel_addr), the
 * function and module names, and the mapping (path, offset, build-id).
 */
uint32_t ap_symbolizer_user_frame(struct ap_symbolizer *s, struct ap_profile *p, int pid,
				  uint64_t addr, bool is_return_addr);

/* Same for a kernel address, from /proc/kallsyms (loaded once, lazily). Module symbols
 * ("[ext4]") get their module name. */
uint32_t ap_symbolizer_kernel_frame(struct ap_symbolizer *s, struct ap_profile *p, uint64_t addr,
				    bool is_return_addr);

/* Load kernel symbols now rather than at the first kernel frame, so that the work happens
 * before sampling starts (and the agent does not profile itself reading kallsyms).
 * Returns 0, or -ENOENT when kallsyms is unreadable (kernel frames stay "[unknown]"). */
int ap_symbolizer_load_kernel(struct ap_symbolizer *s);

void ap_symbolizer_get_stats(const struct ap_symbolizer *s, struct ap_symbolizer_stats *out);

/* Read kernel symbols from `path` instead of /proc/kallsyms (tests, offline use). A table
 * already loaded is dropped; the next kernel frame loads the new file. Returns 0 or -ENOMEM. */
int ap_symbolizer_set_kallsyms_path(struct ap_symbolizer *s, const char *path);

/* Lower-level lookup used by tests and the CLI: symbol of `addr` (a vaddr in the ELF's own
 * address space) in the ELF file at `path`. Writes the name into name[len]; returns 0,
 * -ENOENT (no symbol covers addr) or -errno (file unreadable, not ELF). */
int ap_elf_lookup(const char *path, uint64_t vaddr, char *name, size_t len, uint64_t *sym_start);

#endif
