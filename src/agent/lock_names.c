// SPDX-License-Identifier: MIT
/*
 * Names for the lock reports that need the live system: kernel lock addresses from
 * /proc/kallsyms data symbols, user lock objects from /proc/PID/maps and the ELF OBJECT
 * symbols of the mapped file, thread comms from /proc (or the agent's own record of them).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock_record.h"

/* Fewer data symbols than this: kallsyms lists text only (no CONFIG_KALLSYMS_ALL). */
#define MIN_DATA_SYMS 1000

struct ksym {
	uint64_t addr;
	char *name; /* "sym" or "sym [module]"; kernel symbols: NULL for text (a bound only) */
};

/* Data (OBJECT) symbols of one ELF file plus its PT_LOAD layout. */
struct elf_objs {
	char *path;
	struct ksym *syms; /* addr = st_value; sizes in sizes[] */
	uint64_t *sizes;
	size_t n;
	GElf_Phdr *loads;
	size_t nloads;
	struct elf_objs *next;
};

struct ap_lock_names {
	struct ksym *ksyms;
	size_t nksyms;
	size_t ndata;  /* data symbols among ksyms */
	int ksyms_err; /* 0 = not loaded yet, 1 = loaded, -errno = failed */
	struct elf_objs *elves;
	void (*extra)(void *ctx, uint32_t tid, char *buf, size_t len);
	void *extra_ctx;
};

struct ap_lock_names *ap_lock_names_new(void (*extra)(void *ctx, uint32_t tid, char *buf,
						      size_t len),
					void *extra_ctx)
{
	struct ap_lock_names *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->extra = extra;
	n->extra_ctx = extra_ctx;
	return n;
}

static void free_syms(struct ksym *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].name);
	free(s);
}

void ap_lock_names_free(struct ap_lock_names *n)
{
	if (!n)
		return;
	free_syms(n->ksyms, n->nksyms);
	while (n->elves) {
		struct elf_objs *e = n->elves;

		n->elves = e->next;
		free_syms(e->syms, e->n);
		free(e->sizes);
		free(e->loads);
		free(e->path);
		free(e);
	}
	free(n);
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Symbols of a kallsyms-format file: data ones (d, D, b, B, r, R) named, the others kept as
 * bounds of the data symbol before them. */
static int load_ksyms(struct ap_lock_names *n, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[512];
	size_t cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char type, name[256], mod[128] = "";
		unsigned long long addr;
		struct ksym *nv;

		if (sscanf(line, "%llx %c %255s %127s", &addr, &type, name, mod) < 3 || !addr)
			continue;
		if (n->nksyms == cap) {
			cap = cap ? cap * 2 : 4096;
			nv = realloc(n->ksyms, cap * sizeof(*nv));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			n->ksyms = nv;
		}
		n->ksyms[n->nksyms].addr = addr;
		n->ksyms[n->nksyms].name = NULL;
		if (!strchr("dDbBrR", type)) {
			n->nksyms++;
			continue;
		}
		n->ndata++;
		if (mod[0])
			strncat(strncat(name, " ", sizeof(name) - strlen(name) - 1), mod,
				sizeof(name) - strlen(name) - 1);
		n->ksyms[n->nksyms].name = strdup(name);
		if (!n->ksyms[n->nksyms].name) {
			err = -ENOMEM;
			break;
		}
		n->nksyms++;
	}
	fclose(f);
	if (!err && !n->ndata)
		err = -ENOENT; /* kptr_restrict hides addresses */
	if (!err && n->nksyms > 1) /* qsort(NULL, 0) is UB */
		qsort(n->ksyms, n->nksyms, sizeof(*n->ksyms), cmp_ksym);
	return err;
}

/* Greatest symbol start <= addr, or -1. */
static long find_le(const struct ksym *s, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

int ap_lock_ksym_lookup(struct ap_lock_names *n, const char *kallsyms_path, uint64_t addr,
			char *buf, size_t len)
{
	uint64_t off;
	long i;

	if (!n->ksyms_err)
		n->ksyms_err = load_ksyms(n, kallsyms_path) ?: 1;
	if (n->ksyms_err < 0)
		return n->ksyms_err;
	i = find_le(n->ksyms, n->nksyms, addr);
	if (i < 0 || !n->ksyms[i].name)
		return -ENOENT;
	off = addr - n->ksyms[i].addr;
	/* kallsyms has no sizes: the next symbol bounds this one. Without CONFIG_KALLSYMS_ALL
	 * the few data symbols are section markers, and only an exact match means anything. */
	if (off && (n->ndata < MIN_DATA_SYMS || off >= (1u << 20) ||
		    ((size_t)i + 1 == n->nksyms && off >= 4096)))
		return -ENOENT;
	if (addr == n->ksyms[i].addr)
		snprintf(buf, len, "%s", n->ksyms[i].name);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, n->ksyms[i].name, off);
	return 0;
}

static struct elf_objs *load_elf_objs(struct ap_lock_names *n, const char *path)
{
	struct elf_objs *e;
	Elf_Scn *scn = NULL;
	size_t cap = 0, nph = 0, want = SHT_SYMTAB;
	Elf *elf = NULL;
	int fd;

	for (e = n->elves; e; e = e->next)
		if (!strcmp(e->path, path))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	e->next = n->elves;
	n->elves = e;
	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return e;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &nph))
		goto out;
	e->loads = calloc(nph ? nph : 1, sizeof(*e->loads));
	for (size_t i = 0; e->loads && i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			e->loads[e->nloads++] = ph;
	}
retry:
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_OBJECT ||
			    !s.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!name || !name[0])
				continue;
			if (e->n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct ksym *ns = realloc(e->syms, ncap * sizeof(*ns));
				uint64_t *nz = ns ? realloc(e->sizes, ncap * sizeof(*nz)) : NULL;

				if (ns)
					e->syms = ns;
				if (!nz)
					goto out;
				e->sizes = nz;
				cap = ncap;
			}
			e->syms[e->n].addr = s.st_value;
			e->syms[e->n].name = strdup(name);
			e->sizes[e->n] = s.st_size;
			if (e->syms[e->n].name)
				e->n++;
		}
	}
	if (!e->n && want == SHT_SYMTAB) {
		want = SHT_DYNSYM; /* stripped: exported objects only */
		scn = NULL;
		goto retry;
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return e;
}

/* OBJECT symbol of `path` covering ELF vaddr, into buf. */
static int elf_obj_name(struct elf_objs *e, uint64_t vaddr, char *buf, size_t len)
{
	for (size_t i = 0; i < e->n; i++) {
		uint64_t lo = e->syms[i].addr, sz = e->sizes[i] ? e->sizes[i] : 1;

		if (vaddr < lo || vaddr - lo >= sz)
			continue;
		if (vaddr == lo)
			snprintf(buf, len, "%s", e->syms[i].name);
		else
			snprintf(buf, len, "%s+0x%" PRIx64, e->syms[i].name, vaddr - lo);
		return 0;
	}
	return -ENOENT;
}

/* Map a runtime address to the ELF vaddr through the mapping (start, file offset). */
static int to_vaddr(const struct elf_objs *e, uint64_t map_start, uint64_t map_off,
		    uint64_t addr, uint64_t *vaddr)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	/* the segment whose file pages hold map_off (RELRO splits one segment in two maps) */
	for (size_t i = 0; i < e->nloads; i++) {
		const GElf_Phdr *ph = &e->loads[i];

		if (map_off < (ph->p_offset & ~(page - 1)) || map_off >= ph->p_offset + ph->p_filesz)
			continue;
		/* file offset map_off is at vaddr p_vaddr + (map_off - p_offset), runtime map_start */
		*vaddr = addr - map_start + ph->p_vaddr + map_off - ph->p_offset;
		if (*vaddr >= ph->p_vaddr && *vaddr < ph->p_vaddr + ph->p_memsz)
			return 0;
	}
	return -ENOENT;
}

static void user_lock_name(struct ap_lock_names *n, uint32_t pid, uint64_t addr, char *buf,
			   size_t len)
{
	char path[64], line[4352], prev_path[4096] = "", exe[4096] = "";
	uint64_t prev_start = 0, prev_off = 0, prev_end = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (readlink(path, exe, sizeof(exe) - 1) < 0)
		exe[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char file[4096] = "", full[4200];
		struct elf_objs *e;
		uint64_t vaddr;
		const char *base;

		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %4095[^\n]", &start, &end, &off,
			   file) < 3)
			continue;
		if (addr < start || addr >= end) {
			if (file[0] == '/') {
				snprintf(prev_path, sizeof(prev_path), "%s", file);
				prev_start = start;
				prev_off = off;
			} else if (start != prev_end) {
				prev_path[0] = '\0';
			}
			prev_end = end;
			continue;
		}
		if (file[0] == '/') {
			snprintf(prev_path, sizeof(prev_path), "%s", file);
			prev_start = start;
			prev_off = off;
		} else if (file[0] || start != prev_end || !prev_path[0]) {
			snprintf(buf, len, "%s", file[0] ? file : "[anon]");
			break;
		}
		/* a file mapping, or the anonymous .bss right after one */
		snprintf(full, sizeof(full), "/proc/%u/root%s", pid, prev_path);
		e = load_elf_objs(n, full);
		if (e && !to_vaddr(e, prev_start, prev_off, addr, &vaddr) &&
		    !elf_obj_name(e, vaddr, buf, len)) {
			base = strrchr(prev_path, '/');
			if (strcmp(prev_path, exe) != 0 && strlen(buf) + strlen(base) + 3 < len)
				strcat(strcat(strcat(buf, " ("), base + 1), ")");
		} else {
			base = strrchr(prev_path, '/');
			snprintf(buf, len, "[%s]", base + 1);
		}
		break;
	}
	fclose(f);
}

static void names_lock_name(void *ctx, uint32_t pid, uint64_t addr, bool kernel, char *buf,
			    size_t len)
{
	struct ap_lock_names *n = ctx;

	buf[0] = '\0';
	if (kernel)
		ap_lock_ksym_lookup(n, "/proc/kallsyms", addr, buf, len);
	else
		user_lock_name(n, pid, addr, buf, len);
}

static void names_thread_comm(void *ctx, uint32_t pid, uint32_t tid, char *buf, size_t len)
{
	struct ap_lock_names *n = ctx;
	char path[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	if (!buf[0] && n->extra)
		n->extra(n->extra_ctx, tid, buf, len);
}

void ap_lock_names_resolver(struct ap_lock_names *n, struct ap_lock_resolver *out)
{
	out->ctx = n;
	out->lock_name = names_lock_name;
	out->thread_comm = names_thread_comm;
}
