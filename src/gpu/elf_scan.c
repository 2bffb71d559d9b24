// SPDX-License-Identifier: MIT
/*
 * Which probed CUDA functions an ELF file defines, at which file offsets (probes.h).
 *
 * A static cudart keeps its functions as LOCAL .symtab symbols (nvcc's default build: 3906
 * local symbols, none in .dynsym), which libbpf's by-name attach does not look at; so every
 * file is resolved here, from .symtab and .dynsym alike, and attached by offset. Virtual
 * addresses become file offsets through the PT_LOAD segment that holds them.
 *
 * The file is hostile input: libelf checks the structures it parses; names are used only
 * through lookups in our own table, and counts are bounded by the section sizes.
 */
#include <errno.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gelf.h>
#include <libelf.h>

#include "probes.h"

/* A file with more symbols than this is not read past it (a giant binary costs time, never
 * unbounded memory: nothing is kept per symbol but the few matches). */
#define MAX_SYMBOLS (16u << 20)

struct seg {
	uint64_t vaddr, filesz, offset;
};

static int load_segments(Elf *elf, struct seg **out, size_t *n)
{
	size_t phnum, k = 0;
	struct seg *s;

	*out = NULL;
	*n = 0;
	if (elf_getphdrnum(elf, &phnum) || phnum == 0)
		return 0;
	if (phnum > 4096)
		phnum = 4096;
	s = calloc(phnum, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		s[k].vaddr = ph.p_vaddr;
		s[k].filesz = ph.p_filesz;
		s[k].offset = ph.p_offset;
		k++;
	}
	*out = s;
	*n = k;
	return 0;
}

static bool vaddr_to_offset(const struct seg *s, size_t n, uint64_t v, uint64_t *off)
{
	for (size_t i = 0; i < n; i++)
		if (v >= s[i].vaddr && v - s[i].vaddr < s[i].filesz) {
			*off = v - s[i].vaddr + s[i].offset;
			return true;
		}
	return false;
}

static bool is_cuda_import(const char *name)
{
	return strncmp(name, "__cuda", 6) == 0 || strncmp(name, "cuda", 4) == 0 ||
	       strncmp(name, "cuLaunch", 8) == 0 || strncmp(name, "cuInit", 6) == 0 ||
	       strncmp(name, "cuMem", 5) == 0;
}

static int add_site(struct ap_gpu_scan *s, int fn, uint64_t off)
{
	struct ap_gpu_site *ns;

	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].fn == (uint32_t)fn) {
			if (s->sites[i].offset != off)
				s->duplicates++;
			return 0;
		}
	ns = realloc(s->sites, (s->nsites + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	s->sites = ns;
	s->sites[s->nsites].fn = (uint32_t)fn;
	s->sites[s->nsites].offset = off;
	s->nsites++;
	return 0;
}

static int scan_symbols(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const struct seg *segs,
			size_t nsegs, struct ap_gpu_scan *s)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count;

	if (!data || !sh->sh_entsize)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	if (count > MAX_SYMBOLS)
		count = MAX_SYMBOLS;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		const char *name;
		uint64_t off;
		int fn;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		if (sym.st_shndx == SHN_UNDEF) {
			if (is_cuda_import(name))
				s->imports_cuda = true;
			continue;
		}
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_value)
			continue;
		if (strncmp(name, "_dl_debug_state", 15) == 0 &&
		    (name[15] == '\0' || name[15] == '@') &&
		    vaddr_to_offset(segs, nsegs, sym.st_value, &off)) {
			s->loader = true;
			s->loader_off = off;
			continue;
		}
		fn = ap_gpu_fn_find(name, strlen(name));
		if (fn < 0 || !vaddr_to_offset(segs, nsegs, sym.st_value, &off))
			continue;
		if (ap_gpu_fns[fn].flags & AP_GPU_F_DRIVER_API)
			s->driver = true;
		if (add_site(s, fn, off))
			return -ENOMEM;
	}
	return 0;
}

/* Where the function at file offset `off` jumps when its whole body is a tail jump
 * ([endbr64] [push rbp; mov rbp,rsp; pop rbp] jmp rel32), as CUDA 13's __cudaLaunchKernel
 * into cudaLaunchKernel; -1 otherwise. */
static int64_t tail_jump_target(int fd, uint64_t off)
{
	static const unsigned char endbr[] = { 0xf3, 0x0f, 0x1e, 0xfa };
	static const unsigned char frame[] = { 0x55, 0x48, 0x89, 0xe5, 0x5d };
	unsigned char b[16];
	size_t i = 0;
	int32_t rel;

	if (pread(fd, b, sizeof(b), (off_t)off) != (ssize_t)sizeof(b))
		return -1;
	if (memcmp(b, endbr, sizeof(endbr)) == 0)
		i += sizeof(endbr);
	if (memcmp(b + i, frame, sizeof(frame)) == 0)
		i += sizeof(frame);
	if (b[i] == 0xeb) /* jmp rel8 */
		return (int64_t)(off + i + 2) + (int8_t)b[i + 1];
	if (b[i] != 0xe9)
		return -1;
	memcpy(&rel, b + i + 1, sizeof(rel));
	return (int64_t)(off + i + 5) + rel;
}

/*
 * A launch entry point that only tail-jumps into another probed launch function of the same
 * file is not probed: the one it jumps to sees the same arguments (the registers are passed
 * through), so each launch costs one probe pair instead of two. The rows are folded, counted
 * in s->folded.
 */
static void fold_tail_jumps(int fd, struct ap_gpu_scan *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->nsites; i++) {
		const struct ap_gpu_fn *f = &ap_gpu_fns[s->sites[i].fn];
		int64_t target = -1;
		bool folded = false;

		if (f->cls == AP_GPU_CLASS_LAUNCH)
			target = tail_jump_target(fd, s->sites[i].offset);
		for (size_t j = 0; target >= 0 && j < s->nsites && !folded; j++)
			folded = j != i && s->sites[j].offset == (uint64_t)target &&
				 ap_gpu_fns[s->sites[j].fn].cls == f->cls;
		if (folded) {
			s->folded++;
			continue;
		}
		s->sites[k++] = s->sites[i];
	}
	s->nsites = k;
}

static void classify(struct ap_gpu_scan *s)
{
	bool runtime = false;

	for (size_t i = 0; i < s->nsites; i++)
		if (!(ap_gpu_fns[s->sites[i].fn].flags & AP_GPU_F_DRIVER_API))
			runtime = true;
	if (s->nsites && (runtime || s->driver)) {
		s->cls = AP_GPU_FILE_PROBE;
	} else if (s->imports_cuda) {
		s->cls = s->has_fatbin ? AP_GPU_FILE_USES_SHARED : AP_GPU_FILE_NONE;
	} else if (s->has_fatbin) {
		s->cls = AP_GPU_FILE_UNPROBEABLE;
		snprintf(s->reason, sizeof(s->reason), "%s",
			 s->has_symtab ? "CUDA device code, but no CUDA runtime or driver function "
					 "by name and no import of a shared one"
				       : "CUDA device code with its own CUDA runtime, stripped (no "
					 ".symtab): its calls cannot be probed by name; only its "
					 "calls into a probed driver (libcuda.so.1) are seen");
	}
}

int ap_gpu_scan_fd(int fd, struct ap_gpu_scan *out)
{
	struct seg *segs = NULL;
	size_t nsegs = 0, shstrndx;
	Elf_Scn *scn = NULL;
	Elf *elf;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return 0;
	if (elf_kind(elf) != ELF_K_ELF || elf_getshdrstrndx(elf, &shstrndx)) {
		elf_end(elf);
		return 0;
	}
	err = load_segments(elf, &segs, &nsegs);
	while (!err && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && (strcmp(name, ".nv_fatbin") == 0 ||
			     strcmp(name, ".nvFatBinSegment") == 0))
			out->has_fatbin = true;
		if (sh.sh_type == SHT_SYMTAB)
			out->has_symtab = true;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			err = scan_symbols(elf, scn, &sh, segs, nsegs, out);
	}
	free(segs);
	elf_end(elf);
	if (err) {
		ap_gpu_scan_free(out);
		return err;
	}
	fold_tail_jumps(fd, out);
	classify(out);
	return 0;
}

void ap_gpu_scan_free(struct ap_gpu_scan *s)
{
	free(s->sites);
	s->sites = NULL;
	s->nsites = 0;
}

static char *symbol_in(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, uint64_t vaddr)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count;

	if (!data || !sh->sh_entsize)
		return NULL;
	count = sh->sh_size / sh->sh_entsize;
	if (count > MAX_SYMBOLS)
		count = MAX_SYMBOLS;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF)
			continue;
		if (vaddr < sym.st_value ||
		    vaddr - sym.st_value >= (sym.st_size ? sym.st_size : 1))
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (name && *name)
			return strdup(name);
	}
	return NULL;
}

char *ap_gpu_elf_symbol_at(int fd, uint64_t file_off)
{
	struct seg *segs = NULL;
	Elf_Scn *scn = NULL;
	char *found = NULL;
	uint64_t vaddr = 0;
	size_t nsegs = 0;
	bool in_seg = false;
	Elf *elf;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = EINVAL;
		return NULL;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		errno = EINVAL;
		return NULL;
	}
	if (load_segments(elf, &segs, &nsegs) == 0) {
		for (size_t i = 0; i < nsegs && !in_seg; i++)
			if (file_off >= segs[i].offset && file_off - segs[i].offset < segs[i].filesz) {
				vaddr = file_off - segs[i].offset + segs[i].vaddr;
				in_seg = true;
			}
		free(segs);
	}
	/* .symtab first: a kernel stub of a template is a local symbol */
	for (int pass = 0; in_seg && pass < 2 && !found; pass++) {
		scn = NULL;
		while (!found && (scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr sh;

			if (gelf_getshdr(scn, &sh) &&
			    sh.sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM))
				found = symbol_in(elf, scn, &sh, vaddr);
		}
	}
	elf_end(elf);
	if (!found)
		errno = ENOENT;
	return found;
}

/* Drop the `L` of an internal-linkage name at p when a <source-name> follows it. */
static bool drop_l(char *p)
{
	if (p[0] != 'L' || !isdigit((unsigned char)p[1]))
		return false;
	memmove(p, p + 1, strlen(p + 1) + 1);
	return true;
}

void ap_gpu_stub_to_device_name(char *m)
{
	char *p;

	if (strncmp(m, "_Z", 2) != 0)
		return;
	p = m + 2;
	if (drop_l(p))
		return; /* _ZL7add_onePii: a static function at namespace scope */
	if (*p != 'N')
		return;
	p++;
	while (*p == 'r' || *p == 'V' || *p == 'K')
		p++;
	/* nested-name: <source-name>s (namespaces, classes), the L before the function's own */
	while (*p) {
		unsigned long n;
		char *end;

		if (drop_l(p))
			return;
		if (!isdigit((unsigned char)*p))
			return;
		n = strtoul(p, &end, 10);
		if (n > strlen(end))
			return;
		p = end + n;
	}
}
