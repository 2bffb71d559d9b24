/* SPDX-License-Identifier: MIT */
/*
 * Pieces of the symbolizer shared between the files of src/symbol (not a public API):
 * a small intrusive hash table, compact ELF symbol tables, the /proc/PID/maps parser, the
 * kallsyms table and the ELF cache. Tests include it to exercise the parsers directly.
 */
#ifndef AP_SYMBOL_INTERNAL_H
#define AP_SYMBOL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

#define AP_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- symhash.c: chained hash table of intrusive nodes; the caller compares keys ---- */

struct ap_hnode {
	struct ap_hnode *next;
	uint64_t hash;
};

struct ap_htab {
	struct ap_hnode **buckets;
	size_t nbuckets; /* power of two, or 0 before the first insert */
	size_t n;
};

uint64_t ap_hash_bytes(const void *data, size_t len, uint64_t seed);
/* Returns 0 or -ENOMEM (only when the table has no buckets yet and none can be allocated). */
int ap_htab_insert(struct ap_htab *h, struct ap_hnode *n, uint64_t hash);
void ap_htab_remove(struct ap_htab *h, struct ap_hnode *n);
/* First node with `hash`, then ap_htab_next() for the following ones; NULL at the end. */
struct ap_hnode *ap_htab_first(const struct ap_htab *h, uint64_t hash);
struct ap_hnode *ap_htab_next(const struct ap_hnode *n);
/* Calls drop() on every node; nodes for which it returns true are unlinked (drop may free
 * them: the node is not touched again). */
void ap_htab_sweep(struct ap_htab *h, bool (*drop)(struct ap_hnode *n, void *ctx), void *ctx);
/* Frees the bucket array (not the nodes). */
void ap_htab_release(struct ap_htab *h);

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
	uint32_t flags; /* PF_X, ... */
	uint32_t pad;
};

#define AP_BUILD_ID_MAX 64 /* raw bytes kept; longer ids are truncated */

struct ap_symtab {
	struct ap_symtab_sym *syms;
	char *names; /* one pool of NUL-terminated names */
	struct ap_symtab_seg *segs;
	char *build_id; /* lower-case hex, NULL when the file has none */
	char *path;	/* path the file was first seen at (display only), may be NULL */
	size_t nsyms;
	size_t names_len;
	uint32_t nsegs;
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
static inline const char *ap_symtab_name(const struct ap_symtab *t, const struct ap_symtab_sym *s)
{
	return t->names + s->name;
}
/* Translate a file offset (runtime address - mapping start + mapping offset) into the ELF's
 * vaddr space through the PT_LOAD segment holding it. Returns false without segments. */
bool ap_symtab_file_to_vaddr(const struct ap_symtab *t, uint64_t file_off, uint64_t *vaddr);
/* Heap bytes held, for the cache's bound. */
size_t ap_symtab_bytes(const struct ap_symtab *t);

/* ---- proc_maps.c: /proc/PID/maps ---- */

struct ap_maps_entry {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	char perms[5];
	bool deleted;	  /* path had a " (deleted)" suffix, which was removed */
	const char *path; /* "" for anonymous mappings; points into the parsed line */
};

/* Parse one line (modified in place: the newline and " (deleted)" are cut). Returns 0 or
 * -EINVAL. */
int ap_maps_parse_line(char *line, struct ap_maps_entry *e);
/* Call cb for every mapping of pid, in address order; a non-zero return from cb stops the
 * walk and is returned. Returns 0, -ESRCH (no such process) or -errno. */
int ap_maps_read(int pid, int (*cb)(const struct ap_maps_entry *e, void *ctx), void *ctx);

/* ---- kallsyms.c: kernel text symbols ---- */

struct ap_kallsyms;

/* Returns 0 or -errno. A file whose addresses are all zero (kptr_restrict) loads as an empty
 * table: every lookup then fails. Free with ap_kallsyms_free(). */
int ap_kallsyms_load(const char *path, struct ap_kallsyms **out);
void ap_kallsyms_free(struct ap_kallsyms *k);
size_t ap_kallsyms_count(const struct ap_kallsyms *k);
/* Symbol covering addr: its name, module ("[kernel.kallsyms]" or "[ext4]") and start.
 * Returns 0 or -ENOENT. */
int ap_kallsyms_find(const struct ap_kallsyms *k, uint64_t addr, const char **name,
		     const char **module, uint64_t *start);

/* ---- elf_cache.c: symbol tables shared between processes ---- */

struct ap_elf_cache;

/* idle_max_bytes: symbol tables no snapshot uses are kept (least recently released first
 * out) while they total at most this many bytes, so a binary that is run again and again is
 * loaded once. */
struct ap_elf_cache *ap_elf_cache_new(size_t idle_max_bytes);
void ap_elf_cache_free(struct ap_elf_cache *c);
/* Reference the symbol table of the file reachable at the first of `paths` that exists
 * (tried in order), loading it on a miss. `display_path` is remembered with a new table.
 * Returns 0 with *out referenced (release with ap_elf_cache_put), or -errno. */
int ap_elf_cache_get(struct ap_elf_cache *c, const char *const *paths, size_t npaths,
		     const char *display_path, struct ap_symtab **out);
void ap_elf_cache_put(struct ap_elf_cache *c, struct ap_symtab *t);
/* The vDSO of this machine, read from the agent's own; owned by the cache. NULL if unusable. */
struct ap_symtab *ap_elf_cache_vdso(struct ap_elf_cache *c);
void ap_elf_cache_counts(const struct ap_elf_cache *c, uint64_t *loaded, uint64_t *failed);

#endif
