/* SPDX-License-Identifier: MIT */
/*
 * Pieces of the symbolizer shared between the files of src/symbol (not a public API):
 * compact ELF symbol tables, the kallsyms table and the ELF cache (the hash table, hashing
 * and the /proc/PID/maps reader are src/lib's: hashtab.h, hash.h, proc_maps.h). Tests
 * include it to exercise the parsers directly.
 */
#ifndef AP_SYMBOL_INTERNAL_H
#define AP_SYMBOL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/proc_maps.h"
#include "symbolizer.h"

/* ---- limits.c: bounds on what a hostile input can make a parser hold ----
 * Each is documented in docs/symbolization.md ("Limits"); a hit drops only what is beyond
 * it, is counted (ap_sym_limit_hit) and reported (ap_symbolizer_stats.parse_limits_hit). */

/* Function symbols kept from one ELF file (Chromium: ~1.5 M). */
#define AP_SYM_MAX_SYMS (8u << 20)
/* Note sections / PT_NOTE segments searched for the build-id, and the size of each (a
 * build-id note is 36 bytes; libelf may copy each note read and keeps it until elf_end). */
#define AP_SYM_MAX_NOTES 16
#define AP_SYM_MAX_NOTE_BYTES (64u << 10)
/* Entries of one perf map; bytes read from it; its line length (longer lines skipped). */
#define AP_SYM_MAX_PERFMAP_ENTRIES (1u << 20)
#define AP_SYM_MAX_PERFMAP_BYTES (64u << 20)
#define AP_SYM_MAX_PERFMAP_LINE 4096
/* A /proc/kallsyms line: address, type, a name of at most KSYM_NAME_LEN (512), module. */
#define AP_SYM_MAX_KALLSYMS_LINE 1024

enum ap_sym_limit {
	AP_SYM_LIMIT_SYMS,	      /* ELF files with more symbols than AP_SYM_MAX_SYMS */
	AP_SYM_LIMIT_PERFMAP_ENTRIES, /* perf maps cut at the entry or byte cap */
	AP_SYM_LIMIT_PERFMAP_LINE,    /* perf-map lines skipped as too long */
	AP_SYM_LIMIT_KALLSYMS_LINE,   /* kallsyms lines skipped as too long */
	AP_SYM_LIMIT_NOTES,	      /* over-large note sections not searched for a build-id */
	AP_SYM_LIMIT_MAX,
};

void ap_sym_limit_hit(enum ap_sym_limit which);
uint64_t ap_sym_limit_hits(enum ap_sym_limit which);

/* ---- elf_symtab.c: function symbols of one ELF file, compact and sorted ---- */

struct ap_symtab_sym {
	uint64_t addr;
	uint32_t size; /* 0 = unknown: covers up to the next symbol */
	uint32_t name; /* offset into names */
};

/* A PT_LOAD segment: maps file offsets to ELF vaddrs. */
struct ap_symtab_seg {
	uint64_t offset;
	uint64_t vaddr;
	uint64_t filesz;
	uint64_t memsz;
	uint32_t flags; /* PF_X, ... */
	uint32_t pad;
};

#define AP_BUILD_ID_MAX 64 /* raw bytes kept; longer ids are truncated */

struct ap_debuginfo;

struct ap_symtab {
	struct ap_symtab_sym *syms;
	char *names; /* one pool of NUL-terminated names, as in the file (mangled) */
	/* C++/Rust names demangled when first looked up (ap_symtab_name): demangling all of
	 * libLLVM's 100k names up front cost more CPU than the rest of loading it */
	struct ap_htab demangled;
	size_t demangled_bytes;
	struct ap_symtab_seg *segs;
	char *build_id; /* lower-case hex, NULL when the file has none */
	char *path;	/* path the file was first seen at (display only), may be NULL */
	/* where the file's DWARF is (debuginfo.c); NULL: none. Owned by the ELF cache, which
	 * releases it with ap_dbg_release() before ap_symtab_release(). */
	struct ap_debuginfo *dbg;
	size_t nsyms;
	size_t names_len;
	uint32_t nsegs;
	bool objects; /* data objects (ap_elf_objects_load), not functions */
};

/* Fill `t` from an opened ELF. Returns 0, -ENOEXEC (not a usable ELF) or -ENOMEM. */
int ap_symtab_load_elf(Elf *elf, struct ap_symtab *t);
/* Same from a file or from an in-memory image (the vDSO). */
int ap_symtab_load_path(const char *path, struct ap_symtab *t);
int ap_symtab_load_mem(const void *image, size_t size, struct ap_symtab *t);
/* GNU build-id of an opened ELF as hex into hex[len]. Returns 0 or -ENOENT. */
int ap_symtab_build_id(Elf *elf, char *hex, size_t len);
/* Frees what `t` holds (not `t` itself) and zeroes it. */
void ap_symtab_release(struct ap_symtab *t);
/* The symbol covering `vaddr`, or NULL. */
const struct ap_symtab_sym *ap_symtab_find(const struct ap_symtab *t, uint64_t vaddr);
/* The symbol's name, demangled. Valid until t is released. Not thread-safe (it fills t's
 * memo of demangled names). */
const char *ap_symtab_name(const struct ap_symtab *t, const struct ap_symtab_sym *s);
/* Translate a file offset (runtime address - mapping start + mapping offset) into the ELF's
 * vaddr space through the PT_LOAD segment holding it. Returns false without segments. */
bool ap_symtab_file_to_vaddr(const struct ap_symtab *t, uint64_t file_off, uint64_t *vaddr);
/* Translate `addr` of a process mapping the file at map_start from file offset map_off (or of
 * the anonymous mapping right after it: .bss) into the ELF's vaddr space. Returns false when
 * no PT_LOAD segment covers it. */
bool ap_symtab_map_to_vaddr(const struct ap_symtab *t, uint64_t map_start, uint64_t map_off,
			    uint64_t addr, uint64_t *vaddr);
/* Heap bytes held, for the cache's bound. */
size_t ap_symtab_bytes(const struct ap_symtab *t);

/* ---- kallsyms.c: kernel text symbols ---- */

struct ap_kallsyms;

/* Returns 0 or -errno. A file whose addresses are all zero (kptr_restrict) loads as an empty
 * table: every lookup then fails. Free with ap_kallsyms_free(). */
int ap_kallsyms_load(const char *path, struct ap_kallsyms **out);
size_t ap_kallsyms_count(const struct ap_kallsyms *k);
/* Symbol covering addr: its name, module ("[kernel.kallsyms]" or "[ext4]") and start.
 * Returns 0 or -ENOENT. The name is valid until the next call (names are stored
 * front-coded and decoded into a buffer of k's). */
int ap_kallsyms_find(struct ap_kallsyms *k, uint64_t addr, const char **name,
		     const char **module, uint64_t *start);

/* ---- demangle.c: C++ (Itanium) and Rust (legacy, v0) names, through libiberty ---- */

/* The demangled form of `name` (malloc'd, caller frees), or NULL when it is not a mangled
 * name (plain C) or cannot be demangled. */
char *ap_demangle(const char *name);

/* ---- perfmap.c: JIT symbols from /tmp/perf-PID.map ---- */

struct ap_perfmap;

/* Parse one "START SIZE NAME" line (hex numbers, optional 0x). *name points into line, up to
 * the newline, whose length goes to *name_len. Returns 0 or -EINVAL. */
int ap_perfmap_parse_line(const char *line, uint64_t *start, uint64_t *size, const char **name,
			  size_t *name_len);
/* Open the perf map of `pid`, which calls itself `nspid` in its own pid namespace, through
 * /proc/PID/root (its mount namespace). The file must be a regular file owned by the process's
 * user or root. Returns NULL with errno set (ENOENT: the process writes none). The descriptor
 * stays open, so the map can still be read after the process (and its namespace) is gone. */
struct ap_perfmap *ap_perfmap_open(int pid, int nspid);
/* Same for a file given by path (tests, offline use). */
struct ap_perfmap *ap_perfmap_open_path(const char *path);
void ap_perfmap_free(struct ap_perfmap *m);
/* Read what was appended since the last read (bounded). Returns 0 or -errno. */
int ap_perfmap_update(struct ap_perfmap *m);
/* Name of the newest entry covering addr, or NULL. */
const char *ap_perfmap_find(struct ap_perfmap *m, uint64_t addr, uint64_t *start);
/* "perf-NSPID.map": the module name of its frames. */
const char *ap_perfmap_module(const struct ap_perfmap *m);
size_t ap_perfmap_count(const struct ap_perfmap *m);

/* ---- debug_inflate.c: uncompressed copies of debug files, by build-id ---- */

/* Write (once) an uncompressed copy of the ELF at src_fd into dir/<build_id>.debug, keeping
 * the directory under cap_bytes (oldest copies out), and put its path in out. Returns 0;
 * -ENODATA when nothing in the file is compressed (use it as it is); -ENOTSUP for a layout
 * it does not rewrite (32-bit, foreign byte order, extended section numbering); or -errno.
 * An entry under the name that is not ours (a symlink, not a regular file, another owner) is
 * never read: it is replaced, and counted in *untrusted (may be NULL). */
int ap_debug_inflate(int src_fd, const char *build_id, const char *dir, uint64_t cap_bytes,
		     char *out, size_t out_len, uint64_t *untrusted);

/* ---- dwarf.c: one opened debug file (libdw) ---- */

#define AP_MAX_INLINE 32 /* frames of one address's inline chain that are kept */

/* One frame of a source-level chain: innermost first, the physical function last. */
struct ap_src_frame {
	const char *name; /* demangled; NULL: unknown (the ELF symbol stands in) */
	const char *file; /* source path; NULL when unknown */
	uint32_t line;	  /* 0 when unknown */
};

struct ap_dwarf;

/* Where uncompressed copies of compressed debug files go (see debug_inflate.c). */
struct ap_dwarf_cache {
	const char *dir; /* NULL or "": read compressed files in memory, as libdw does */
	uint64_t cap_bytes;
	uint64_t *untrusted; /* counts cache entries planted by someone else (may be NULL) */
};

enum ap_dwarf_inflate {
	AP_DWARF_INFLATE_NONE = 0,   /* nothing compressed, or no cache */
	AP_DWARF_INFLATE_USED = 1,   /* opened from its uncompressed copy */
	AP_DWARF_INFLATE_FAILED = 2, /* no copy could be made: inflated in memory */
};

/* Open the DWARF of the file at fd (not taken over: it must outlive the handle) or, when fd
 * is negative, at path. A non-NULL build_id must match the file's. cache may be NULL.
 * Returns 0 or -errno (-ENOEXEC: not ELF / no DWARF, -ESTALE: another build). */
int ap_dwarf_open(int fd, const char *path, const char *build_id,
		  const struct ap_dwarf_cache *cache, struct ap_dwarf **out);
/* How the file was opened: an enum ap_dwarf_inflate. */
int ap_dwarf_inflate_state(const struct ap_dwarf *dw);
void ap_dwarf_close(struct ap_dwarf *dw);
/* Drop the file's pages from this process's memory (they come back from the page cache
 * when read): only when the file is a read-only mapping, else nothing. */
void ap_dwarf_release_pages(struct ap_dwarf *dw);
/* The inline chain at vaddr (an address in the ELF's vaddr space) into out[max]. Names that
 * had to be demangled are malloc'd and flagged in owned[] (free them with
 * ap_dwarf_chain_free); the other strings belong to the handle. Returns the number of frames,
 * 0 when no DWARF covers vaddr. */
size_t ap_dwarf_chain(struct ap_dwarf *dw, uint64_t vaddr, struct ap_src_frame *out,
		      bool *owned, size_t max);
void ap_dwarf_chain_free(struct ap_src_frame *f, bool *owned, size_t n);

/* ---- debuginfod.c: background fetches of debug files by build-id ---- */

struct ap_dbgd;

/* A client for the space-separated server `urls`, caching under cache_dir, giving up a fetch
 * after timeout_ms. Sets DEBUGINFOD_URLS, DEBUGINFOD_CACHE_PATH and DEBUGINFOD_TIMEOUT in the
 * process environment (libdebuginfod reads only those): create it before other threads run.
 * The worker thread starts at the first request. NULL with errno set. */
struct ap_dbgd *ap_dbgd_new(const char *urls, const char *cache_dir, unsigned timeout_ms);
void ap_dbgd_free(struct ap_dbgd *c);
/* Queue a fetch. Returns 0, or -ENOSPC (queue full), -ENOMEM. */
int ap_dbgd_request(struct ap_dbgd *c, const char *build_id);
/* Wait up to timeout_ns for the fetch of build_id (NULL: of everything queued) to finish.
 * Returns true when it has. */
bool ap_dbgd_wait(struct ap_dbgd *c, const char *build_id, uint64_t timeout_ns);
/* Hand finished fetches to cb (path NULL and err < 0 on failure) and forget them. */
void ap_dbgd_collect(struct ap_dbgd *c,
		     void (*cb)(void *ctx, const char *build_id, const char *path, int err),
		     void *ctx);

/* ---- debuginfo.c: where each ELF's DWARF is, open handles, resolved chains ---- */

struct ap_dbg;

struct ap_dbg_stats {
	uint64_t found;		   /* ELF files whose DWARF was located */
	uint64_t failed;	   /* located debug files that could not be used */
	uint64_t fds_skipped;	   /* debug files not kept: descriptor cap reached */
	uint64_t debuginfod_fetched;
	uint64_t debuginfod_failed;
	uint64_t chains_evicted; /* result cache flushes */
	uint64_t inflated;	 /* compressed debug files read from their uncompressed copy */
	uint64_t inflate_failed; /* ... for which no copy could be made (inflated in memory) */
	uint64_t cache_untrusted; /* cache entries not ours (planted link, other owner): skipped */
};

struct ap_dbg *ap_dbg_new(void);
void ap_dbg_free(struct ap_dbg *d);
/* Debug roots searched for .build-id/xx/yyyy.debug and <root>/<dir>/<debuglink>;
 * "/usr/lib/debug" by default. Returns 0 or -ENOMEM. */
int ap_dbg_set_dirs(struct ap_dbg *d, const char *const *dirs, size_t n);
/* Enable debuginfod (see ap_dbgd_new); urls NULL or "" disables it. */
int ap_dbg_set_debuginfod(struct ap_dbg *d, const char *urls, const char *cache_dir,
			  unsigned timeout_ms, unsigned wait_ms);
/* Locate the DWARF of a table just loaded from `elf` (open at elf_fd): the file's own
 * .debug_info, a build-id file under the debug roots, its .gnu_debuglink next to it (looked up
 * inside `root_fd`, the process's root from ap_open_proc_root, or -1 for none) or under the
 * roots, and last debuginfod. Sets t->dbg, NULL when nothing was found. Returns 0 or
 * -ENOMEM. */
int ap_dbg_locate(struct ap_dbg *d, struct ap_symtab *t, Elf *elf, int elf_fd, int root_fd,
		  const char *display_path);
void ap_dbg_release(struct ap_dbg *d, struct ap_debuginfo *di);
/* Inline chain at vaddr of t (innermost first) in *out; returns its length, 0 when t has no
 * DWARF for vaddr. The frames stay valid until the next call. */
size_t ap_dbg_lookup(struct ap_dbg *d, struct ap_symtab *t, uint64_t vaddr,
		     const struct ap_src_frame **out);
/* Take finished debuginfod fetches; wait up to timeout_ms for the pending ones first. */
void ap_dbg_poll(struct ap_dbg *d, unsigned timeout_ms);
/* Drop the pages of every open debug file from memory (ap_dwarf_release_pages). */
void ap_dbg_release_pages(struct ap_dbg *d);
void ap_dbg_get_stats(const struct ap_dbg *d, struct ap_dbg_stats *out);
/* Where uncompressed copies of compressed debug files are kept: NULL for the default
 * (<cache root>/inflated, see docs/symbolization.md), "" to inflate in memory instead.
 * Returns 0, or -errno when the directory cannot be made (inflating in memory then). */
int ap_dbg_set_inflate_dir(struct ap_dbg *d, const char *dir);

/* ---- elf_cache.c: symbol tables shared between processes ---- */

struct ap_elf_cache;

/* idle_max_bytes: symbol tables no snapshot uses are kept (least recently released first
 * out) while they total at most this many bytes, so a binary that is run again and again is
 * loaded once. dbg (may be NULL: no DWARF) locates the debug info of every table loaded; it
 * must outlive the cache. */
struct ap_elf_cache *ap_elf_cache_new(size_t idle_max_bytes, struct ap_dbg *dbg);
void ap_elf_cache_free(struct ap_elf_cache *c);
/* Where a file may be reached: dirfd/path opened with ap_open_untrusted(flags); with
 * match_id only if it is still that very file (an exited process's file by its path). */
struct ap_elf_src {
	int dirfd; /* AT_FDCWD, or a process's root (ap_open_proc_root) with AP_OPEN_IN_ROOT */
	const char *path;
	int flags; /* AP_OPEN_* (safe_open.h) */
	bool match_id;
	unsigned dev_major, dev_minor;
	uint64_t ino;
};

/* Reference the symbol table of the file reachable at the first of `src` that opens (tried in
 * order), loading it on a miss. `display_path` is remembered with a new table; `root_fd`
 * (the process's root from ap_open_proc_root, or -1 for our own namespace) is where a
 * .gnu_debuglink is looked for. Returns 0 with *out referenced (release with
 * ap_elf_cache_put), or -errno. */
int ap_elf_cache_get(struct ap_elf_cache *c, const struct ap_elf_src *src, size_t nsrc,
		     const char *display_path, int root_fd, struct ap_symtab **out);
void ap_elf_cache_put(struct ap_elf_cache *c, struct ap_symtab *t);
/* Reference the table of a file loaded before, by device (st_dev) and inode alone. Returns 0
 * with *out referenced, or -ENOENT. */
int ap_elf_cache_get_inode(struct ap_elf_cache *c, uint64_t dev, uint64_t ino,
			   struct ap_symtab **out);
/* The vDSO of this machine, read from the agent's own; owned by the cache. NULL if unusable. */
struct ap_symtab *ap_elf_cache_vdso(struct ap_elf_cache *c);
void ap_elf_cache_counts(const struct ap_elf_cache *c, uint64_t *loaded, uint64_t *failed);

#endif
