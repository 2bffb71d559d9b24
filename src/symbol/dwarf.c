// SPDX-License-Identifier: MIT
/*
 * Source-level frames from DWARF (libdw): for one address, the chain of inlined calls
 * (innermost first) ending in the physical function, each with its source file and line.
 *
 * The innermost frame's line comes from the line table; every outer frame's line is the call
 * site recorded on the inlined_subroutine DIE just inside it (DW_AT_call_file/call_line), as
 * eu-addr2line -i and llvm-symbolizer --inlining report them.
 *
 * Finding the CU of an address uses .debug_aranges when the file has it (gcc emits it), read
 * here into a compact sorted array (16 bytes a range; libdw's own dwarf_getaranges() takes
 * about 500 bytes a range, 3 MiB for libc): only the CUs actually hit are ever parsed.
 * Without aranges (clang does not emit them by default) the CU ranges are read once when the
 * file is opened, a pass over the CU headers, and kept sorted.
 *
 * A debug file with compressed sections is read from its uncompressed copy in the debug cache
 * (debug_inflate.c) when one can be made: libdw would otherwise inflate all of it into memory.
 */
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <elfutils/libdw.h>
#include <gelf.h>

#include "lib/elf_util.h"
#include "lib/grow.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"

#define OVERLAP_SCAN 8

/* A CU's address range from the CU DIE (no .debug_aranges). */
struct cu_range {
	uint64_t lo;
	uint64_t hi;
	Dwarf_Die cu;
};

/* One .debug_aranges tuple: [lo, lo + len) belongs to the unit whose header is at cu_off. */
struct arange {
	uint64_t lo;
	uint32_t len;
	uint32_t cu_off;
};

struct ap_dwarf {
	Elf *elf;
	Dwarf *dw;
	struct cu_range *r;
	size_t n;
	struct arange *ar; /* sorted by lo; when set, r is unused */
	size_t nar;
	int fd;		  /* ours to close, or -1 */
	int inflate;	  /* enum ap_dwarf_inflate */
	void *map;	  /* libelf's read-only mapping of the whole file, or NULL */
	size_t map_len;
};

static void note_mapping(struct ap_dwarf *h, int fd);

static int range_cmp(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (x->hi > y->hi) - (x->hi < y->hi);
}

static int arange_cmp(const void *a, const void *b)
{
	const struct arange *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

static int push_range(struct ap_dwarf *h, size_t *cap, uint64_t lo, uint64_t hi,
		      const Dwarf_Die *cu)
{
	if (lo >= hi)
		return 0;
	if (ap_grow_array((void **)&h->r, cap, h->n + 1, sizeof(*h->r)))
		return -ENOMEM;
	h->r[h->n].lo = lo;
	h->r[h->n].hi = hi;
	h->r[h->n].cu = *cu;
	h->n++;
	return 0;
}

static uint64_t rd(const unsigned char *p, unsigned size)
{
	uint64_t v = 0;

	/* DWARF is in the file's byte order; debug files read here are native (x86-64, arm64) */
	memcpy(&v, p, size);
	return v;
}

static int push_arange(struct arange **v, size_t *n, size_t *cap, uint64_t lo, uint64_t len,
		       uint64_t cu_off)
{
	if (!len)
		return 0;
	if (len > UINT32_MAX || cu_off > UINT32_MAX)
		return -E2BIG; /* a 4 GiB function or .debug_info: let libdw do it */
	if (ap_grow_array((void **)v, cap, *n + 1, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = (struct arange){ .lo = lo, .len = (uint32_t)len, .cu_off = (uint32_t)cu_off };
	return 0;
}

/* .debug_aranges into h->ar. -ENOENT when the file has none (or none usable). */
static int read_aranges(struct ap_dwarf *h)
{
	GElf_Shdr sh;
	Elf_Scn *scn = ap_elf_find_section(h->elf, ".debug_aranges", &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	const unsigned char *p, *end;
	struct arange *v = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	if (!d || !d->d_buf || !d->d_size)
		return -ENOENT;
	p = d->d_buf;
	end = p + d->d_size;
	while (!err && end - p >= 4) {
		const unsigned char *set = p, *set_end;
		uint64_t len = rd(p, 4), cu_off;
		unsigned offsize = 4, asize, tuple;

		p += 4;
		if (len == 0xffffffffu) {
			if (end - p < 8)
				break;
			len = rd(p, 8);
			p += 8;
			offsize = 8;
		} else if (len >= 0xfffffff0u) {
			break;
		}
		if (len > (uint64_t)(end - p) || len < 2u + offsize + 2u)
			break;
		set_end = p + len;
		p += 2; /* version: 2 in every DWARF version that has this section */
		cu_off = rd(p, offsize);
		p += offsize;
		asize = p[0];
		/* segmented addresses do not exist on the targets we profile */
		if ((asize != 4 && asize != 8) || p[1] != 0) {
			p = set_end;
			continue;
		}
		p += 2;
		tuple = 2 * asize;
		p = set + ((size_t)(p - set) + tuple - 1) / tuple * tuple;
		while (!err && p + tuple <= set_end) {
			uint64_t lo = rd(p, asize), l = rd(p + asize, asize);

			p += tuple;
			if (!lo && !l)
				break;
			err = push_arange(&v, &n, &cap, lo, l, cu_off);
		}
		p = set_end;
	}
	if (err || !n) {
		free(v);
		return err ? err : -ENOENT;
	}
	qsort(v, n, sizeof(*v), arange_cmp);
	h->ar = v;
	h->nar = n;
	return 0;
}

static int read_cu_ranges(struct ap_dwarf *h)
{
	Dwarf_CU *cu = NULL, *next;
	size_t cap = 0;
	Dwarf_Half version;
	uint8_t type;
	Dwarf_Die cudie;
	int rc;

	if (!read_aranges(h))
		return 0;
	while ((rc = dwarf_get_units(h->dw, cu, &next, &version, &type, &cudie, NULL)) == 0) {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		cu = next;
		if (type != DW_UT_compile || dwarf_tag(&cudie) != DW_TAG_compile_unit)
			continue;
		while ((off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0)
			if (push_range(h, &cap, lo, hi, &cudie))
				return -ENOMEM;
	}
	if (h->n > 1)
		qsort(h->r, h->n, sizeof(*h->r), range_cmp);
	return 0;
}

/* The build-id of an open ELF as hex, "" when it has none. */
static void elf_build_id(Elf *elf, char *hex, size_t len)
{
	if (ap_symtab_build_id(elf, hex, len))
		hex[0] = '\0';
}

/*
 * Swap a file with compressed sections for its uncompressed copy in the cache. Any failure
 * leaves the handle on the original file: libdw then inflates it in memory, as it always did.
 */
static void use_inflated(struct ap_dwarf *h, int src_fd, const struct ap_dwarf_cache *cache)
{
	char id[2 * AP_BUILD_ID_MAX + 1], id2[2 * AP_BUILD_ID_MAX + 1], path[4096];
	Elf *elf;
	int fd, err;

	elf_build_id(h->elf, id, sizeof(id));
	if (!id[0])
		return;
	err = ap_debug_inflate(src_fd, id, cache->dir, cache->cap_bytes, path, sizeof(path),
			       cache->untrusted);
	if (err) {
		if (err != -ENODATA)
			h->inflate = AP_DWARF_INFLATE_FAILED;
		return;
	}
	/* our own copy: a planted link, or another user's file under the name, is not read */
	fd = ap_open_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW | AP_OPEN_OWNED, 0, NULL);
	elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		elf_build_id(elf, id2, sizeof(id2));
		if (!strcmp(id, id2)) {
			elf_end(h->elf);
			if (h->fd >= 0)
				close(h->fd);
			h->elf = elf;
			h->fd = fd;
			h->inflate = AP_DWARF_INFLATE_USED;
			return;
		}
	}
	/* not ours (another build under that name, or damaged): rebuilt next time */
	if (elf)
		elf_end(elf);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	h->inflate = AP_DWARF_INFLATE_FAILED;
}

int ap_dwarf_open(int fd, const char *path, const char *build_id,
		  const struct ap_dwarf_cache *cache, struct ap_dwarf **out)
{
	char hex[2 * AP_BUILD_ID_MAX + 1];
	struct ap_dwarf *h;
	int err;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	if (fd < 0) {
		if (!path) {
			err = -EINVAL;
			goto fail;
		}
		/* a host debug file (debug roots, debuginfod cache): regular files only */
		fd = h->fd = ap_open_untrusted(AT_FDCWD, path, 0, 0, NULL);
		if (fd < 0) {
			err = fd;
			h->fd = -1;
			goto fail;
		}
	}
	h->elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!h->elf || elf_kind(h->elf) != ELF_K_ELF) {
		err = -ENOEXEC;
		goto fail;
	}
	/* a debug file of another build would give plausible but wrong lines */
	if (build_id && !ap_symtab_build_id(h->elf, hex, sizeof(hex)) && strcmp(hex, build_id)) {
		err = -ESTALE;
		goto fail;
	}
	if (cache && cache->dir && *cache->dir)
		use_inflated(h, fd, cache);
	h->dw = dwarf_begin_elf(h->elf, DWARF_C_READ, NULL);
	if (!h->dw) {
		err = -ENOEXEC;
		goto fail;
	}
	err = read_cu_ranges(h);
	if (err)
		goto fail;
	/* the scan of every unit touched pages that lookups mostly will not need */
	note_mapping(h, h->fd >= 0 ? h->fd : fd);
	ap_dwarf_release_pages(h);
	*out = h;
	return 0;
fail:
	ap_dwarf_close(h);
	return err;
}

/*
 * Note libelf's mapping of the file behind h->elf when it is a plain read-only private file
 * mapping (what ELF_C_READ_MMAP makes; libelf reads into malloc'd memory instead when mmap
 * fails, and that must never be dropped): its pages can then be dropped from this process and
 * read back from the page cache when touched again (ap_dwarf_release_pages).
 */
static void note_mapping(struct ap_dwarf *h, int fd)
{
	size_t n = 0, cap = 0;
	char *base = elf_rawfile(h->elf, &n), *line = NULL, want[32];
	struct stat st;
	FILE *f;

	if (!base || !n || fd < 0 || fstat(fd, &st) ||
	    ((uintptr_t)base & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1)))
		return;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)base);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		unsigned long lo, hi, off, ino;
		unsigned maj, mnr;
		char perms[8];

		if (strncmp(line, want, strlen(want)))
			continue;
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &maj, &mnr,
			   &ino) == 7 &&
		    !strcmp(perms, "r--p") && off == 0 && hi - lo >= n && ino == st.st_ino &&
		    makedev(maj, mnr) == st.st_dev) {
			h->map = base;
			h->map_len = n;
		}
		break;
	}
	free(line);
	fclose(f);
}

void ap_dwarf_release_pages(struct ap_dwarf *h)
{
	/* read-only and file-backed: nothing is lost, the next read faults the page back in
	 * from the page cache */
	if (h && h->map)
		madvise(h->map, h->map_len, MADV_DONTNEED);
}

int ap_dwarf_inflate_state(const struct ap_dwarf *h)
{
	return h ? h->inflate : AP_DWARF_INFLATE_NONE;
}

void ap_dwarf_close(struct ap_dwarf *h)
{
	if (!h)
		return;
	if (h->dw)
		dwarf_end(h->dw);
	if (h->elf)
		elf_end(h->elf);
	if (h->fd >= 0)
		close(h->fd);
	free(h->r);
	free(h->ar);
	free(h);
}

/* The CU DIE of the unit whose header is at cu_off. */
static bool unit_die(struct ap_dwarf *h, uint64_t cu_off, Dwarf_Die *cu)
{
	Dwarf_Off next;
	size_t hsize;

	if (dwarf_next_unit(h->dw, cu_off, &next, &hsize, NULL, NULL, NULL, NULL, NULL, NULL))
		return false;
	return dwarf_offdie(h->dw, cu_off + hsize, cu) != NULL;
}

static bool find_cu_aranges(struct ap_dwarf *h, uint64_t vaddr, Dwarf_Die *cu)
{
	size_t lo = 0, hi = h->nar;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->ar[mid].lo <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, k = 0; i > 0 && k < OVERLAP_SCAN; i--, k++) {
		const struct arange *a = &h->ar[i - 1];

		if (vaddr - a->lo < a->len)
			return unit_die(h, a->cu_off, cu);
	}
	return false;
}

static bool find_cu(struct ap_dwarf *h, uint64_t vaddr, Dwarf_Die *cu)
{
	size_t lo = 0, hi = h->n;

	if (h->ar)
		return find_cu_aranges(h, vaddr, cu);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->r[mid].lo <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, k = 0; i > 0 && k < OVERLAP_SCAN; i--, k++) {
		if (vaddr < h->r[i - 1].hi) {
			*cu = h->r[i - 1].cu;
			return true;
		}
	}
	/* no CU ranges at all: let libdw try .debug_aranges */
	return !h->n && dwarf_addrdie(h->dw, vaddr, cu) != NULL;
}

/* Demangled linkage name, else the plain name (C, or no linkage name recorded). */
static const char *die_name(Dwarf_Die *die, bool *owned)
{
	Dwarf_Attribute a;
	const char *ln;
	char *dm;

	*owned = false;
	ln = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
	if (!ln)
		ln = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
	if (ln) {
		dm = ap_demangle(ln);
		if (dm) {
			*owned = true;
			return dm;
		}
	}
	return dwarf_diename(die) ? dwarf_diename(die) : ln;
}

static void call_site(Dwarf_Die *die, Dwarf_Files *files, const char **file, uint32_t *line)
{
	Dwarf_Attribute a;
	Dwarf_Word v;

	*file = NULL;
	*line = 0;
	if (files && !dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v))
		*file = dwarf_filesrc(files, (size_t)v, NULL, NULL);
	if (!dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) && v <= UINT32_MAX)
		*line = (uint32_t)v;
}

void ap_dwarf_chain_free(struct ap_src_frame *f, bool *owned, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (owned[i])
			free((char *)f[i].name);
		owned[i] = false;
	}
}

size_t ap_dwarf_chain(struct ap_dwarf *h, uint64_t vaddr, struct ap_src_frame *out,
		      bool *owned, size_t max)
{
	Dwarf_Die cu, *scopes = NULL, *chain = NULL, *sc;
	const char *file = NULL;
	Dwarf_Files *files = NULL;
	Dwarf_Line *ln;
	uint32_t line = 0;
	size_t n = 0;
	int ns, nc;

	if (!max || !find_cu(h, vaddr, &cu))
		return 0;
	ln = dwarf_getsrc_die(&cu, vaddr);
	if (ln) {
		int l = 0;

		file = dwarf_linesrc(ln, NULL, NULL);
		if (!dwarf_lineno(ln, &l) && l > 0)
			line = (uint32_t)l;
	}
	ns = dwarf_getscopes(&cu, vaddr, &scopes);
	if (ns <= 0) {
		free(scopes);
		if (!file)
			return 0;
		/* line info without a function DIE: the ELF symbol names it */
		out[0] = (struct ap_src_frame){ .name = NULL, .file = file, .line = line };
		owned[0] = false;
		return 1;
	}
	/* the parents of the innermost scope by DIE nesting: the concrete callers of an inlined
	 * instance, not the scopes of its abstract definition */
	nc = dwarf_getscopes_die(&scopes[0], &chain);
	sc = nc > 0 ? chain : scopes;
	if (nc <= 0)
		nc = ns;
	dwarf_getsrcfiles(&cu, &files, NULL);
	for (int i = 0; i < nc; i++) {
		int tag = dwarf_tag(&sc[i]);
		bool own;
		const char *name;

		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram &&
		    tag != DW_TAG_entry_point)
			continue;
		name = die_name(&sc[i], &own);
		if (n == max) {
			/* too deep: the innermost frames go, the physical function stays */
			ap_dwarf_chain_free(out, owned, 1);
			memmove(out, out + 1, (max - 1) * sizeof(*out));
			memmove(owned, owned + 1, (max - 1) * sizeof(*owned));
			n--;
		}
		out[n] = (struct ap_src_frame){ .name = name, .file = file, .line = line };
		owned[n++] = own;
		if (tag != DW_TAG_inlined_subroutine)
			break;
		call_site(&sc[i], files, &file, &line);
	}
	free(scopes);
	free(chain);
	if (!n && file) {
		out[0] = (struct ap_src_frame){ .name = NULL, .file = file, .line = line };
		owned[0] = false;
		n = 1;
	}
	return n;
}
