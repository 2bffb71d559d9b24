// SPDX-License-Identifier: MIT
/*
 * Function symbols of one ELF file, copied out of the file into compact arrays so the file
 * can be closed and unmapped right after loading (the process it belongs to may be gone by
 * the time its samples are symbolized, and an agent cannot hold thousands of mappings).
 *
 * Each symbol costs 16 bytes plus its name once in a pool; aliases (several names at one
 * address) keep a single name.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/grow.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"
#include "symbolizer.h"

/* A candidate symbol while loading; names point into the ELF image. */
struct raw_sym {
	uint64_t addr;
	uint64_t size;
	const char *name;
	int rank;
};

struct raw_syms {
	struct raw_sym *v;
	size_t n;
	size_t cap;
};

static int elf_init(void)
{
	/* libelf refuses to work until told which ELF version the caller understands */
	return elf_version(EV_CURRENT) == EV_NONE ? -ENOEXEC : 0;
}

static int bind_rank(unsigned char bind)
{
	switch (bind) {
	case STB_GLOBAL:
		return 0;
	case STB_WEAK:
		return 1;
	default:
		return 2;
	}
}

static int raw_cmp(const void *a, const void *b)
{
	const struct raw_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* among aliases, prefer one whose size is known, then the most visible binding; the
	 * name decides last so the choice does not depend on symbol table order */
	if (!x->size != !y->size)
		return x->size ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return strcmp(x->name, y->name);
}

static int raw_push(struct raw_syms *r, const struct raw_sym *s)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		struct raw_sym *v = realloc(r->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = ncap;
	}
	r->v[r->n++] = *s;
	return 0;
}

/* Append the defined function (or, for `objects`, data object) symbols of one symbol table
 * section. */
static int collect_syms(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, bool objects,
			struct raw_syms *r)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t count;

	if (!d || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	/* entry 0 is the reserved null symbol */
	for (size_t i = 1; i < count; i++) {
		struct raw_sym rs;
		GElf_Sym sym;
		unsigned char type;
		int err;

		if (!gelf_getsym(d, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if (objects ? type != STT_OBJECT : type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		if (sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		rs.name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!rs.name || !rs.name[0])
			continue;
		if (r->n >= AP_SYM_MAX_SYMS) { /* the rest is dropped, counted once per file */
			ap_sym_limit_hit(AP_SYM_LIMIT_SYMS);
			break;
		}
		rs.addr = sym.st_value;
		rs.size = sym.st_size;
		rs.rank = bind_rank(GELF_ST_BIND(sym.st_info));
		err = raw_push(r, &rs);
		if (err)
			return err;
	}
	return 0;
}

/* .symtab when it has functions (objects), else .dynsym (what a stripped file still
 * exports). */
static int read_syms(Elf *elf, bool objects, struct raw_syms *r)
{
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh_symtab, sh_dynsym, sh;
	int err;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = scn;
			sh_symtab = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
			dynsym = scn;
			sh_dynsym = sh;
		}
	}
	if (symtab) {
		err = collect_syms(elf, symtab, &sh_symtab, objects, r);
		if (err || r->n)
			return err;
	}
	if (dynsym)
		return collect_syms(elf, dynsym, &sh_dynsym, objects, r);
	return 0;
}

/* Append a name to the pool (big pools are mapped, so growing remaps rather than copies).
 * Returns its offset, or -errno. */
static int64_t pool_append(char **pool, size_t *len, size_t *cap, const char *name)
{
	size_t n = strlen(name) + 1;
	int64_t off = (int64_t)*len;

	if (*len + n > UINT32_MAX)
		return -E2BIG;
	if (ap_grow_array((void **)pool, cap, *len + n, 1))
		return -ENOMEM;
	memcpy(*pool + *len, name, n);
	*len += n;
	return off;
}

/* Sort, drop aliases, and copy the survivors into t's compact arrays. Names stay as the
 * file has them: most are never looked up, and ap_symtab_name() demangles those that are. */
static int build_table(struct raw_syms *r, struct ap_symtab *t)
{
	size_t n = 0, len = 0, cap = 0;
	char *pool = NULL;

	if (!r->n)
		return 0;
	qsort(r->v, r->n, sizeof(*r->v), raw_cmp);
	/* the raw array is reused for the survivors, so syms can be sized exactly */
	for (size_t i = 0; i < r->n; i++)
		if (!n || r->v[i].addr != r->v[n - 1].addr)
			r->v[n++] = r->v[i];
	t->syms = malloc(n * sizeof(*t->syms));
	if (!t->syms)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int64_t off = pool_append(&pool, &len, &cap, r->v[i].name);

		if (off < 0) {
			free(pool);
			free(t->syms);
			t->syms = NULL;
			return (int)off;
		}
		t->syms[i].addr = r->v[i].addr;
		t->syms[i].size = r->v[i].size > UINT32_MAX ? UINT32_MAX : (uint32_t)r->v[i].size;
		t->syms[i].name = (uint32_t)off;
	}
	/* give back the doubling slack */
	t->names = len < cap ? realloc(pool, len) : pool;
	if (!t->names)
		t->names = pool;
	t->nsyms = n;
	t->names_len = len;
	return 0;
}

static int read_segments(Elf *elf, struct ap_symtab *t)
{
	size_t phnum, n = 0;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &phnum))
		return 0;
	for (size_t i = 0; i < phnum; i++)
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			n++;
	if (!n)
		return 0;
	t->segs = calloc(n, sizeof(*t->segs));
	if (!t->segs)
		return -ENOMEM;
	for (size_t i = 0; i < phnum && t->nsegs < n; i++) {
		struct ap_symtab_seg *s = &t->segs[t->nsegs];

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		s->offset = ph.p_offset;
		s->vaddr = ph.p_vaddr;
		s->filesz = ph.p_filesz;
		s->memsz = ph.p_memsz;
		s->flags = ph.p_flags;
		t->nsegs++;
	}
	return 0;
}

static int note_build_id(Elf_Data *d, char *hex, size_t len)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	while (off < d->d_size && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
		const unsigned char *desc = (const unsigned char *)d->d_buf + desc_off;
		size_t n = nh.n_descsz;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp((const char *)d->d_buf + name_off, "GNU", 4) && n) {
			if (n > AP_BUILD_ID_MAX)
				n = AP_BUILD_ID_MAX;
			if (n > (len - 1) / 2)
				n = (len - 1) / 2;
			for (size_t i = 0; i < n; i++)
				snprintf(hex + 2 * i, 3, "%02x", desc[i]);
			hex[2 * n] = '\0';
			return 0;
		}
		off = next;
	}
	return -ENOENT;
}

int ap_symtab_build_id(Elf *elf, char *hex, size_t len)
{
	Elf_Scn *scn = NULL;
	unsigned int notes = 0;
	size_t phnum;
	GElf_Shdr sh;
	GElf_Phdr ph;

	if (len < 3)
		return -ENOENT;
	/* libelf may copy (convert) every note it is asked for and keeps the copies until
	 * elf_end: a file listing its bytes as thousands of notes would take size x count */
	while ((scn = elf_nextscn(elf, scn)) && notes < AP_SYM_MAX_NOTES) {
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		if (sh.sh_size > AP_SYM_MAX_NOTE_BYTES) {
			ap_sym_limit_hit(AP_SYM_LIMIT_NOTES);
			continue;
		}
		notes++;
		d = elf_getdata(scn, NULL);
		if (d && !note_build_id(d, hex, len))
			return 0;
	}
	/* files whose section headers were removed still have their notes in PT_NOTE */
	if (elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum && notes < AP_SYM_MAX_NOTES; i++) {
		Elf_Data *d;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		if (ph.p_filesz > AP_SYM_MAX_NOTE_BYTES) {
			ap_sym_limit_hit(AP_SYM_LIMIT_NOTES);
			continue;
		}
		notes++;
		d = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz,
					 ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (d && !note_build_id(d, hex, len))
			return 0;
	}
	return -ENOENT;
}

/*
 * Stripped files keep no symbol for their entry point, the outermost frame of every stack:
 * the executable's _start (glibc's start.S), and the dynamic loader's own _start, where
 * every process spends its first milliseconds relocating. Name it when nothing covers it.
 * Its size is a guess that covers both (they call out within 0x30 bytes), and a symbol that
 * starts sooner takes over from there.
 */
#define ENTRY_SYMBOL_SIZE 0x40

static int name_entry_point(struct raw_syms *r, uint64_t entry)
{
	struct raw_sym rs = { .addr = entry, .size = ENTRY_SYMBOL_SIZE, .name = "_start",
			      .rank = bind_rank(STB_LOCAL) };

	if (!entry)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (entry >= r->v[i].addr &&
		    (entry - r->v[i].addr < r->v[i].size || entry == r->v[i].addr))
			return 0;
	return raw_push(r, &rs);
}

static int load_elf(Elf *elf, bool objects, struct ap_symtab *t)
{
	char hex[2 * AP_BUILD_ID_MAX + 1];
	struct raw_syms r = { 0 };
	GElf_Ehdr eh;
	int err;

	memset(t, 0, sizeof(*t));
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		return -ENOEXEC;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return -ENOEXEC;
	err = read_segments(elf, t);
	if (err)
		goto out;
	if (!ap_symtab_build_id(elf, hex, sizeof(hex))) {
		t->build_id = strdup(hex);
		if (!t->build_id) {
			err = -ENOMEM;
			goto out;
		}
	}
	t->objects = objects;
	err = read_syms(elf, objects, &r);
	if (!err && !objects)
		err = name_entry_point(&r, eh.e_entry);
	if (err)
		goto out;
	err = build_table(&r, t);
out:
	free(r.v);
	if (err)
		ap_symtab_release(t);
	return err;
}

int ap_symtab_load_elf(Elf *elf, struct ap_symtab *t)
{
	return load_elf(elf, false, t);
}

static int load_path(int dirfd, const char *path, int open_flags, bool objects,
		     struct ap_symtab *t)
{
	Elf *elf = NULL;
	int fd = -1, err;

	memset(t, 0, sizeof(*t));
	err = elf_init();
	if (err)
		return err;
	fd = ap_open_untrusted(dirfd, path, open_flags, 0, NULL);
	if (fd < 0)
		return fd;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		err = -ENOEXEC;
		goto out;
	}
	err = load_elf(elf, objects, t);
out:
	elf_end(elf);
	close(fd);
	return err;
}

int ap_symtab_load_path(const char *path, struct ap_symtab *t)
{
	return load_path(AT_FDCWD, path, 0, false, t);
}

int ap_symtab_load_mem(const void *image, size_t size, struct ap_symtab *t)
{
	Elf *elf = NULL;
	char *copy;
	int err;

	memset(t, 0, sizeof(*t));
	err = elf_init();
	if (err)
		return err;
	/* elf_memory() wants writable memory; the vDSO is mapped read-only */
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, image, size);
	elf = elf_memory(copy, size);
	err = elf ? ap_symtab_load_elf(elf, t) : -ENOEXEC;
	elf_end(elf);
	free(copy);
	return err;
}

static bool free_dm_name(struct ap_hnode *n, void *ctx);

void ap_symtab_release(struct ap_symtab *t)
{
	if (!t)
		return;
	ap_htab_sweep(&t->demangled, free_dm_name, NULL);
	ap_htab_release(&t->demangled);
	free(t->syms);
	free(t->names);
	free(t->segs);
	free(t->build_id);
	free(t->path);
	memset(t, 0, sizeof(*t));
}

/* End (exclusive) of the PT_LOAD segment that holds vaddr, or UINT64_MAX if none does. */
static uint64_t segment_end(const struct ap_symtab *t, uint64_t vaddr)
{
	for (uint32_t i = 0; i < t->nsegs; i++) {
		const struct ap_symtab_seg *s = &t->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz)
			return s->vaddr + s->filesz;
	}
	return UINT64_MAX;
}

const struct ap_symtab_sym *ap_symtab_find(const struct ap_symtab *t, uint64_t vaddr)
{
	const struct ap_symtab_sym *s;
	size_t lo = 0, hi = t->nsyms;

	/* last symbol starting at or below vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	s = &t->syms[lo - 1];
	if (s->size)
		return vaddr - s->addr < s->size ? s : NULL;
	if (t->objects) /* a variable of unknown size: only its first byte is known to be it */
		return vaddr == s->addr ? s : NULL;
	/* size unknown (hand-written assembly): it runs until the next symbol, which the
	 * search already guarantees, but not past the end of its segment */
	return vaddr < segment_end(t, s->addr) ? s : NULL;
}

bool ap_symtab_file_to_vaddr(const struct ap_symtab *t, uint64_t file_off, uint64_t *vaddr)
{
	const struct ap_symtab_seg *exec = NULL;

	for (uint32_t i = 0; i < t->nsegs; i++) {
		const struct ap_symtab_seg *s = &t->segs[i];

		if (file_off >= s->offset && file_off - s->offset < s->filesz) {
			*vaddr = file_off - s->offset + s->vaddr;
			return true;
		}
		if (!exec && (s->flags & PF_X))
			exec = s;
	}
	/* past every segment's file contents (e.g. a mapping rounded up to a page): the
	 * executable segment is the one the code came from */
	if (!exec)
		return false;
	*vaddr = file_off - exec->offset + exec->vaddr;
	return true;
}

/* One demangled name, by symbol index. */
struct dm_name {
	struct ap_hnode node;
	size_t idx;
	char name[];
};

const char *ap_symtab_name(const struct ap_symtab *t, const struct ap_symtab_sym *s)
{
	/* the memo is a cache: filling it does not change what t answers */
	struct ap_symtab *mt = (struct ap_symtab *)t;
	const char *raw = t->names + s->name;
	size_t idx = (size_t)(s - t->syms), len;
	uint64_t h = ap_hash_bytes(&idx, sizeof(idx), 3);
	struct dm_name *d;
	char *dm;

	if (raw[0] != '_' || (raw[1] != 'Z' && raw[1] != 'R')) /* C: most of a system */
		return raw;
	for (struct ap_hnode *n = ap_htab_first(&t->demangled, h); n; n = ap_htab_next(n)) {
		d = AP_CONTAINER_OF(n, struct dm_name, node);
		if (d->idx == idx)
			return d->name;
	}
	dm = ap_demangle(raw);
	if (!dm)
		return raw; /* not a mangling after all */
	len = strlen(dm) + 1;
	d = malloc(sizeof(*d) + len);
	if (d) {
		d->idx = idx;
		memcpy(d->name, dm, len);
		if (ap_htab_insert(&mt->demangled, &d->node, h)) {
			free(d);
			d = NULL;
		} else {
			mt->demangled_bytes += sizeof(*d) + len;
		}
	}
	free(dm);
	return d ? d->name : raw; /* without memory for the memo: the mangled name */
}

static bool free_dm_name(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	free(AP_CONTAINER_OF(n, struct dm_name, node));
	return true;
}

size_t ap_symtab_bytes(const struct ap_symtab *t)
{
	size_t n = t->nsyms * sizeof(*t->syms) + t->names_len + t->nsegs * sizeof(*t->segs) +
		   t->demangled_bytes;

	if (t->build_id)
		n += strlen(t->build_id) + 1;
	if (t->path)
		n += strlen(t->path) + 1;
	return n;
}

int ap_elf_lookup(const char *path, uint64_t vaddr, char *name, size_t len, uint64_t *sym_start)
{
	const struct ap_symtab_sym *sym;
	struct ap_symtab t;
	int err;

	if (!path)
		return -EINVAL;
	err = ap_symtab_load_path(path, &t);
	if (err)
		return err;
	sym = ap_symtab_find(&t, vaddr);
	if (!sym) {
		err = -ENOENT;
		goto out;
	}
	if (name && len)
		snprintf(name, len, "%s", ap_symtab_name(&t, sym));
	if (sym_start)
		*sym_start = sym->addr;
out:
	ap_symtab_release(&t);
	return err;
}

/* ---- data objects (symbolizer.h) ---- */

struct ap_elf_objects {
	struct ap_symtab t;
};

int ap_elf_objects_load(int dirfd, const char *path, int open_flags,
			struct ap_elf_objects **out)
{
	struct ap_elf_objects *o = calloc(1, sizeof(*o));
	int err;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	err = load_path(dirfd, path, open_flags, true, &o->t);
	if (err) {
		free(o);
		return err;
	}
	*out = o;
	return 0;
}

void ap_elf_objects_free(struct ap_elf_objects *o)
{
	if (!o)
		return;
	ap_symtab_release(&o->t);
	free(o);
}

bool ap_symtab_map_to_vaddr(const struct ap_symtab *t, uint64_t map_start, uint64_t map_off,
			    uint64_t addr, uint64_t *vaddr)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	/* the segment whose file pages hold map_off (RELRO splits one segment in two maps) */
	for (uint32_t i = 0; i < t->nsegs; i++) {
		const struct ap_symtab_seg *s = &t->segs[i];

		if (map_off < (s->offset & ~(page - 1)) || map_off >= s->offset + s->filesz)
			continue;
		/* file offset map_off is at vaddr s->vaddr + (map_off - s->offset), at runtime at
		 * map_start; past the file's contents (.bss) up to the segment's memory size */
		*vaddr = addr - map_start + s->vaddr + map_off - s->offset;
		if (*vaddr >= s->vaddr && *vaddr - s->vaddr < s->memsz)
			return true;
	}
	return false;
}

int ap_elf_objects_find(const struct ap_elf_objects *o, uint64_t map_start, uint64_t map_off,
			uint64_t addr, const char **name, uint64_t *off)
{
	const struct ap_symtab_sym *sym;
	uint64_t vaddr;

	if (!ap_symtab_map_to_vaddr(&o->t, map_start, map_off, addr, &vaddr))
		return -ENOENT;
	sym = ap_symtab_find(&o->t, vaddr);
	if (!sym)
		return -ENOENT;
	if (name)
		*name = ap_symtab_name(&o->t, sym);
	if (off)
		*off = vaddr - sym->addr;
	return 0;
}
