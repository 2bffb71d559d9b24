/* SPDX-License-Identifier: MIT */
/*
 * Address -> function symbolization for user (ELF .symtab/.dynsym, DWARF, perf maps) and
 * kernel (kallsyms) frames, producing interned frames in a profile.
 *
 * Processes are snapshotted (their executable mappings read from /proc/PID/maps, and the
 * backing ELF files opened through /proc/PID/map_files or /proc/PID/root) when first seen, so
 * that they can still be symbolized after they exit. Symbol tables are cached per ELF file,
 * keyed by build-id (or device+inode when there is none), and shared between processes.
 *
 * Where debug info exists (the file's own .debug_info, /usr/lib/debug/.build-id, a
 * .gnu_debuglink target, or debuginfod when enabled), a user address becomes its chain of
 * inlined calls, each frame with source file and line; C++ and Rust names are demangled.
 * Anonymous executable memory (JIT code) is named from the process's /tmp/perf-PID.map.
 * See docs/symbolization.md.
 */
#ifndef AP_SYMBOLIZER_H
#define AP_SYMBOLIZER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/proc_maps.h"
#include "lib/profile.h"

struct ap_symbolizer;

struct ap_symbolizer_stats {
	uint64_t pids_snapshotted;  /* snapshots taken */
	uint64_t mappings_added;    /* mappings learnt from a deferred sample, not /proc */
	uint64_t pids_missed;	    /* pid was gone before it could be snapshotted */
	uint64_t elf_loaded;	    /* distinct ELF files whose symbols were loaded */
	uint64_t elf_failed;	    /* ELF files that could not be read */
	uint64_t frames_resolved;   /* lookups that found a symbol */
	uint64_t frames_unresolved; /* lookups without a symbol ([unknown]) */
	uint64_t frames_with_source; /* lookups answered from DWARF (file:line) */
	uint64_t inline_frames;	     /* frames added for inlined calls */
	uint64_t inline_truncated;   /* chains cut to fit the caller's array */
	uint64_t jit_resolved;	     /* lookups named by a perf map */
	uint64_t jit_resolved_late;  /* ... of which named at a later drain (ap_symbolizer_resolve_pending) */
	uint64_t debug_found;	     /* ELF files whose debug info was located */
	uint64_t debug_failed;	     /* debug files that could not be used or kept */
	uint64_t debug_inflated;     /* compressed debug files read from an uncompressed copy */
	uint64_t debug_inflate_failed; /* ... for which no copy could be made (in memory) */
	uint64_t debug_cache_untrusted; /* debug cache entries not ours (planted): skipped */
	uint64_t debuginfod_fetched; /* debug files downloaded (or found in its cache) */
	uint64_t debuginfod_failed;  /* fetches that failed, timed out or were refused */
	uint64_t parse_limits_hit;   /* parser limits hit, process-wide (symbol_internal.h
				      * AP_SYM_MAX_*: symbols, perf-map and kallsyms lines) */
};

/* Name the JIT frames of p that were recorded unnamed because their runtime had not yet
 * written them to its perf map (ap_profile_pend_name): call after each drain and before
 * writing p. */
void ap_symbolizer_resolve_pending(struct ap_symbolizer *s, struct ap_profile *p);

/* The demangled form of a C++ (Itanium) or Rust name (malloc'd, caller frees), or NULL when
 * `name` is not mangled or cannot be demangled. For names that do not come from a symbol
 * table the symbolizer reads (e.g. CUDA kernel names). */
char *ap_symbolizer_demangle(const char *name);

/* Returns NULL with errno set. Free with ap_symbolizer_free(). */
struct ap_symbolizer *ap_symbolizer_new(void);
void ap_symbolizer_free(struct ap_symbolizer *s);

/* Take (or refresh) the snapshot of a process: its executable mappings and their ELF
 * symbol tables. Call when a pid is first seen, after exec, and when an address falls outside
 * every known mapping (dlopen). Returns 0, -ESRCH when the process is gone (or has no user
 * mappings: a zombie, a kernel thread), or -errno. A failed refresh keeps the previous
 * snapshot. */
int ap_symbolizer_snapshot_pid(struct ap_symbolizer *s, int pid);

/* Like ap_symbolizer_snapshot_pid, from mappings captured earlier (ap_maps_capture in
 * proc_maps.h; the process may have exited since: its files are then found by their paths,
 * if they are still the same files). */
int ap_symbolizer_snapshot_capture(struct ap_symbolizer *s, int pid,
				   const struct ap_maps_capture *c);

/* One file mapping of pid that its snapshot lacks (the process mapped it after the snapshot
 * and may be gone): added when a table for that file (st_dev, inode) is loaded already.
 * Returns 1 (added), 0 (nothing to do or unknown file) or -ENOMEM. */
int ap_symbolizer_add_mapping(struct ap_symbolizer *s, int pid, uint64_t start, uint64_t end,
			      uint64_t offset, uint64_t dev, uint64_t ino);

/* The process replaced its image: its old mappings would name the new image's addresses
 * wrongly. Forgotten here; the new ones come with the next snapshot. */
void ap_symbolizer_pid_exec(struct ap_symbolizer *s, int pid);

/* The process exited: its snapshot is released at the next ap_symbolizer_gc(). */
void ap_symbolizer_pid_exited(struct ap_symbolizer *s, int pid);
/* Release snapshots of exited processes. Call after each drain has symbolized their samples. */
void ap_symbolizer_gc(struct ap_symbolizer *s);

/*
 * Symbolize a user address of `pid` into frames of `p`: with DWARF, one frame per inlined call
 * at the address, innermost first, the physical function last (every other frame has
 * AP_FRAME_INLINED in its flags); else one frame. Writes at most `max` frame ids to out and
 * returns how many (0 on allocation failure, or max == 0). A chain longer than max keeps its
 * outermost frames (counted in inline_truncated), so the stack stays a prefix of the true one
 * from the root.
 *
 * `is_return_addr` is true for every frame except the leaf: such an address points after a
 * call, so addr-1 is looked up. Unknown pids are snapshotted on demand. All frames of one
 * address share the runtime address, the ELF-relative address (rel_addr), the module and the
 * mapping (path, offset, build-id); each has its own (demangled) name, source file and line
 * (file 0 / line 0 when unknown). For an inlined frame the line is where it is executing; for
 * its caller, the line of the call that was inlined.
 */
size_t ap_symbolizer_user_frames(struct ap_symbolizer *s, struct ap_profile *p, int pid,
				 uint64_t addr, bool is_return_addr, uint32_t *out, size_t max);

/* One frame per address: the physical function (the outermost frame of the chain above), with
 * the source line in it. Returns the frame id, UINT32_MAX on allocation failure. */
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

/* Debug roots searched for <root>/.build-id/xx/yyyy.debug and <root>/<dir>/<debuglink>:
 * "/usr/lib/debug" by default; n = 0 searches none. Affects files loaded afterwards.
 * Returns 0, -EINVAL or -ENOMEM. */
int ap_symbolizer_set_debug_dirs(struct ap_symbolizer *s, const char *const *dirs, size_t n);
/* Where uncompressed copies of compressed debug files are kept (docs/symbolization.md):
 * NULL for the default, "" to inflate them in memory. Returns 0 or -errno (the directory
 * could not be made: they are inflated in memory). */
int ap_symbolizer_set_debug_cache(struct ap_symbolizer *s, const char *dir);

/* DWARF on (default) or off: off, every address gives one frame from the ELF symbols. */
void ap_symbolizer_set_dwarf(struct ap_symbolizer *s, bool enabled);

/* Options of debuginfod, for ap_symbolizer_set_debuginfod() called afterwards: where
 * downloads are cached (NULL: /var/cache/aperture/debuginfod when writable, else
 * $XDG_CACHE_HOME/aperture/debuginfod or ~/.cache/aperture/debuginfod), how long one fetch
 * may take (0: 10 s), and how long lookups may wait for fetches in flight, per file and per
 * drain (1 s by default; 0: never wait, the frames of the file get DWARF from the next drain
 * on). Returns 0 or -ENOMEM. */
int ap_symbolizer_set_debuginfod_options(struct ap_symbolizer *s, const char *cache_dir,
					 unsigned timeout_ms, unsigned wait_ms);

/* Fetch debug files that are not on this machine from debuginfod servers: `urls` is a
 * space-separated list, NULL takes $DEBUGINFOD_URLS (-ENOENT when unset), "" turns it off.
 * Off by default: the symbolizer makes no network calls unless this is called. Fetches run on
 * a background thread, queued when a file without local debug info is loaded; set this before
 * the first snapshot, while the process is single-threaded (libdebuginfod is configured
 * through the environment, which this sets). Returns 0 or -errno. */
int ap_symbolizer_set_debuginfod(struct ap_symbolizer *s, const char *urls);

/* Wait up to timeout_ms for debuginfod fetches in flight, and take their results (e.g.
 * before the last drain). */
void ap_symbolizer_debuginfod_wait(struct ap_symbolizer *s, unsigned timeout_ms);

/* Lower-level lookup used by tests and the CLI: symbol of `addr` (a vaddr in the ELF's own
 * address space) in the ELF file at `path`. Writes the name into name[len]; returns 0,
 * -ENOENT (no symbol covers addr) or -errno (file unreadable, not ELF). */
int ap_elf_lookup(const char *path, uint64_t vaddr, char *name, size_t len, uint64_t *sym_start);

/* ---- data symbols: names of variables (lock naming) ---- */

/* Kernel data symbols (types d, D, b, B, r, R) of a kallsyms-format file; the other symbols
 * are kept unnamed, as bounds. Returns 0 with *out set (free with ap_kallsyms_free) or -errno.
 * A file whose addresses are all zero (kptr_restrict) loads as an empty table. */
struct ap_kallsyms;
int ap_kallsyms_load_data(const char *path, struct ap_kallsyms **out);
void ap_kallsyms_free(struct ap_kallsyms *k);
/* The data symbol covering addr: its name (valid until the next call on k), its module
 * ("[ext4]"; NULL for the kernel image) and its start. kallsyms has no sizes: the next
 * symbol bounds it, at most 1 MiB (4 KiB for the last symbol); a kernel that lists fewer
 * than 1000 data symbols (no CONFIG_KALLSYMS_ALL) has exact matches only. Returns 0 or
 * -ENOENT. */
int ap_kallsyms_find_data(struct ap_kallsyms *k, uint64_t addr, const char **name,
			  const char **module, uint64_t *start);

/* Data (OBJECT) symbols of one ELF file: .symtab's, or .dynsym's when that has none. The file
 * is opened with ap_open_untrusted(dirfd, path, open_flags) (lib/safe_open.h: a process's
 * file is resolved inside its root with AP_OPEN_IN_ROOT). Returns 0 with *out set (free
 * with ap_elf_objects_free) or -errno (-ENOEXEC: not a usable ELF). */
struct ap_elf_objects;
int ap_elf_objects_load(int dirfd, const char *path, int open_flags,
			struct ap_elf_objects **out);
void ap_elf_objects_free(struct ap_elf_objects *o);
/* The object covering `addr` in a process that maps the file at map_start from file offset
 * map_off, or in the anonymous mapping right after that one (.bss past the file's end): its
 * name (valid while o lives) and addr's offset into it. Returns 0 or -ENOENT. */
int ap_elf_objects_find(const struct ap_elf_objects *o, uint64_t map_start, uint64_t map_off,
			uint64_t addr, const char **name, uint64_t *off);

#endif
