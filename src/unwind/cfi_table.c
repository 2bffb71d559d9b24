// SPDX-License-Identifier: MIT
/*
 * ELF -> compact unwind table. Every FDE of .eh_frame (and of .debug_frame where .eh_frame
 * does not cover the code) is decoded into rows, each row compiled to the 8-byte form the BPF
 * walker reads (unwind_table.h), then sorted, merged and indexed by page.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfi.h"
#include "lib/elf_util.h"
#include "lib/safe_open.h"

#define DW_OP_breg0 0x70
#define DW_OP_deref 0x06
#define DW_OP_lit0 0x30
#define DW_OP_and 0x1a
#define DW_OP_ge 0x2a
#define DW_OP_shl 0x24
#define DW_OP_plus 0x22
#define REG_RBP 6
#define REG_RSP 7
#define REG_RIP 16

/* ---- rule compilation ---- */

/* DW_OP_bregN followed by an SLEB offset (any length). */
static bool breg(const uint8_t **p, const uint8_t *end, unsigned int reg, int64_t *off)
{
	uint64_t v = 0;
	unsigned int shift = 0;
	uint8_t b = 0;

	if (*p >= end || **p != DW_OP_breg0 + reg)
		return false;
	(*p)++;
	do {
		if (*p >= end || shift >= 63)
			return false;
		b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (b & 0x40)
		v |= ~0ULL << shift;
	*off = (int64_t)v;
	return true;
}

/* The PLT stub rule binutils emits: CFA = RSP + off + ((RIP & 15) >= thr) << 3. */
static bool match_plt(const uint8_t *p, uint32_t len, int64_t *off, unsigned int *thr)
{
	const uint8_t *end = p + len;
	int64_t zero;

	if (!breg(&p, end, REG_RSP, off) || !breg(&p, end, REG_RIP, &zero) || zero != 0)
		return false;
	if (end - p != 7 || p[0] != DW_OP_lit0 + 15 || p[1] != DW_OP_and ||
	    p[2] < DW_OP_lit0 || p[2] > DW_OP_lit0 + 15 || p[3] != DW_OP_ge ||
	    p[4] != DW_OP_lit0 + 3 || p[5] != DW_OP_shl || p[6] != DW_OP_plus)
		return false;
	*thr = (unsigned int)(p[2] - DW_OP_lit0);
	return true;
}

/* GCC's realigned-stack (DRAP) frames: CFA = *(RBP + off). */
static bool match_deref_rbp(const uint8_t *p, uint32_t len, int64_t *off)
{
	const uint8_t *end = p + len;

	return breg(&p, end, REG_RBP, off) && end - p == 1 && p[0] == DW_OP_deref;
}

static int8_t compile_rbp(const struct ap_cfi_rule *r)
{
	switch (r->kind) {
	case AP_RULE_SAME:
		return AP_RBP_SAME;
	case AP_RULE_OFFSET:
		if (r->off % 8 == 0 && r->off / 8 >= -126 && r->off / 8 <= 127 && r->off != 0)
			return (int8_t)(r->off / 8);
		return AP_RBP_LOST;
	case AP_RULE_EXPR: {
		const uint8_t *p = r->expr, *end = r->expr + r->expr_len;
		int64_t off;

		/* saved at [RBP] (DRAP frames) */
		if (breg(&p, end, REG_RBP, &off) && off == 0 && p == end)
			return AP_RBP_AT_RBP;
		return AP_RBP_LOST;
	}
	default:
		return AP_RBP_LOST;
	}
}

void ap_cfi_compile_row(const struct ap_cfi_fde *fde, const struct ap_cfi_regs *r,
			struct ap_unwind_row *out)
{
	unsigned int thr = 0;
	int64_t off = 0;
	uint8_t kind;

	memset(out, 0, sizeof(*out));
	if (fde->signal) {
		out->kind = AP_CFA_SIGNAL;
		return;
	}
	if (r->ra.kind == AP_RULE_UNDEFINED) {
		out->kind = AP_CFA_END;
		return;
	}
	out->kind = AP_CFA_UNSUPPORTED;
	if (r->ra.kind != AP_RULE_OFFSET || r->ra.off != -8)
		return;
	if (r->cfa_expr) {
		if (match_plt(r->cfa_expr, r->cfa_expr_len, &off, &thr))
			kind = AP_CFA_PLT | (uint8_t)(thr << AP_CFA_PARAM_SHIFT);
		else if (match_deref_rbp(r->cfa_expr, r->cfa_expr_len, &off))
			kind = AP_CFA_DEREF_RBP;
		else
			return;
	} else if (r->cfa_reg == REG_RSP) {
		kind = AP_CFA_RSP;
		off = r->cfa_off;
	} else if (r->cfa_reg == REG_RBP) {
		kind = AP_CFA_RBP;
		off = r->cfa_off;
	} else {
		return; /* e.g. R10 in the prologue of a realigned frame */
	}
	if (off >= INT16_MIN && off <= INT16_MAX) {
		out->cfa_off = (int16_t)off;
	} else if (off % 8 == 0 && off / 8 >= INT16_MIN && off / 8 <= INT16_MAX) {
		out->cfa_off = (int16_t)(off / 8);
		kind |= AP_CFA_SCALED;
	} else {
		return;
	}
	out->kind = kind;
	out->rbp_off = compile_rbp(&r->rbp);
}

/* ---- row collection ---- */

/* A row while the table is built: 12 bytes, since a big library (libLLVM) has over a
 * million of them. row.pc is relative to the builder's pc_base until finish() rebases it. */
struct trow {
	struct ap_unwind_row row;
	/* insertion order, to keep the later of two rows at one pc; bit 31 clear for an FDE's
	 * end marker (no CFI from here unless another row starts), which sorts first */
	uint32_t order;
};

#define TROW_NOT_END (1u << 31)

struct range {
	uint64_t start, end;
};

struct builder {
	struct trow *rows;
	size_t n, cap;
	struct range *ranges; /* .eh_frame FDE ranges, sorted before .debug_frame is read */
	size_t nranges, cap_ranges;
	const struct ap_cfi_seg *segs;
	uint32_t nsegs;
	uint64_t pc_base; /* lowest executable vaddr: every row pc is within 4 GiB of it */
	const struct ap_cfi_sink *sink; /* where the image goes; NULL: calloc */
	bool debug_frame; /* reading .debug_frame: skip code .eh_frame covers */
	bool end_pending; /* the previous FDE's end marker, pushed after its rows */
	uint64_t end_pc;
	uint32_t seq;
	int err;
};

static int push_row(struct builder *b, uint64_t pc, uint8_t term, const struct ap_unwind_row *r)
{
	if (pc < b->pc_base || pc - b->pc_base > UINT32_MAX || b->seq >= TROW_NOT_END)
		return -E2BIG;
	/* rows before merging: a bound on the memory a hostile CFI section can take (real
	 * files merge to well under half their rows: end markers and repeated rules go) */
	if (b->n >= 2 * (size_t)AP_CFI_MAX_ROWS)
		return -E2BIG;
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		struct trow *nr = realloc(b->rows, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		b->rows = nr;
		b->cap = ncap;
	}
	b->rows[b->n].row = *r;
	b->rows[b->n].row.pc = (uint32_t)(pc - b->pc_base);
	b->rows[b->n].order = b->seq++ | (term ? 0 : TROW_NOT_END);
	b->n++;
	return 0;
}

static bool in_exec_segment(const struct builder *b, uint64_t addr)
{
	for (uint32_t i = 0; i < b->nsegs; i++)
		if ((b->segs[i].flags & PF_X) && addr >= b->segs[i].vaddr &&
		    addr - b->segs[i].vaddr < b->segs[i].filesz)
			return true;
	return false;
}

static bool covered_by_eh(const struct builder *b, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = b->nranges;

	while (lo < hi) { /* first range ending after start */
		size_t mid = lo + (hi - lo) / 2;

		if (b->ranges[mid].end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->nranges && b->ranges[lo].start < end;
}

static bool want_fde(void *ctx, const struct ap_cfi_fde *fde)
{
	struct builder *b = ctx;
	struct ap_unwind_row none = { 0 };

	if (b->err || !in_exec_segment(b, fde->start))
		return false;
	if (b->debug_frame) {
		if (covered_by_eh(b, fde->start, fde->end))
			return false;
	} else {
		if (b->nranges == b->cap_ranges) {
			size_t ncap = b->cap_ranges ? b->cap_ranges * 2 : 1024;
			struct range *nr = realloc(b->ranges, ncap * sizeof(*nr));

			if (!nr) {
				b->err = -ENOMEM;
				return false;
			}
			b->ranges = nr;
			b->cap_ranges = ncap;
		}
		b->ranges[b->nranges].start = fde->start;
		b->ranges[b->nranges++].end = fde->end;
	}
	/* end markers go after their FDE's rows: FDEs in address order then need no sort */
	if (b->end_pending)
		b->err = push_row(b, b->end_pc, 1, &none);
	b->end_pending = true;
	b->end_pc = fde->end;
	return b->err == 0;
}

static int flush_end(struct builder *b)
{
	struct ap_unwind_row none = { 0 };

	if (!b->end_pending)
		return 0;
	b->end_pending = false;
	return push_row(b, b->end_pc, 1, &none);
}

static int add_row(void *ctx, const struct ap_cfi_fde *fde, uint64_t pc,
		   const struct ap_cfi_regs *r)
{
	struct builder *b = ctx;
	struct ap_unwind_row row;

	ap_cfi_compile_row(fde, r, &row);
	return push_row(b, pc, 0, &row);
}

static int cmp_trow(const void *a, const void *b)
{
	const struct trow *x = a, *y = b;

	if (x->row.pc != y->row.pc)
		return x->row.pc < y->row.pc ? -1 : 1;
	/* an FDE starting where another ends wins: end markers first, then insertion order */
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static bool same_rule(const struct ap_unwind_row *a, const struct ap_unwind_row *b)
{
	return a->kind == b->kind && a->cfa_off == b->cfa_off && a->rbp_off == b->rbp_off;
}

/* Rows a lookup in bucket [start, start + size) may have to consider: from the one in effect
 * at its start to the last one starting inside it. */
static size_t max_bucket_rows(const struct trow *rows, size_t n, unsigned int shift)
{
	size_t worst = 0, first = 0;

	for (size_t i = 0; i < n;) {
		uint64_t bk = rows[i].row.pc >> shift, start = bk << shift;
		size_t j = i;

		while (first + 1 < n && rows[first + 1].row.pc <= start)
			first++;
		while (j < n && rows[j].row.pc >> shift == bk)
			j++;
		/* rows first .. j-1 */
		if (j - first > worst)
			worst = j - first;
		i = j;
	}
	return worst;
}

/* The coarsest buckets (smallest index) in which no lookup spans more than
 * AP_UNWIND_BUCKET_ROWS rows. */
static uint8_t pick_shift(const struct trow *rows, size_t n)
{
	for (unsigned int sh = AP_UNWIND_MAX_SHIFT; sh > AP_UNWIND_MIN_SHIFT; sh--)
		if (max_bucket_rows(rows, n, sh) <= AP_UNWIND_BUCKET_ROWS)
			return (uint8_t)sh;
	return AP_UNWIND_MIN_SHIFT; /* the walker falls back to a loop for crowded buckets */
}

/* Sort, keep the last row of each pc, merge runs of one rule, index. */
static int finish(struct builder *b, struct ap_cfi_table *t)
{
	struct ap_unwind_row *rows;
	uint32_t *ix;
	size_t n = 0;
	uint64_t last;

	for (size_t i = 1; i < b->n; i++) {
		if (cmp_trow(&b->rows[i - 1], &b->rows[i]) > 0) {
			qsort(b->rows, b->n, sizeof(*b->rows), cmp_trow);
			break;
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct trow *r = &b->rows[i];

		if (i + 1 < b->n && b->rows[i + 1].row.pc == r->row.pc)
			continue;
		/* the end of an FDE followed by alignment padding and the next function: the
		 * padding never runs, so the previous rule may cover it (one row less) */
		if (!(r->order & TROW_NOT_END) && i + 1 < b->n &&
		    b->rows[i + 1].row.pc - r->row.pc < 16)
			continue;
		if (n == 0 && (r->row.kind & AP_CFA_KIND_MASK) == AP_CFA_NONE)
			continue; /* nothing to end before the first row */
		if (n > 0 && same_rule(&b->rows[n - 1].row, &r->row))
			continue;
		b->rows[n++] = *r;
	}
	if (n == 0)
		return -ENOENT;
	/* what the merge dropped goes back to the system before the image is allocated */
	if (n < b->cap) {
		struct trow *shrunk = realloc(b->rows, n * sizeof(*shrunk));

		if (shrunk) {
			b->rows = shrunk;
			b->cap = n;
		}
	}
	t->base = (b->pc_base + b->rows[0].row.pc) & ~0xfffULL;
	last = b->pc_base + b->rows[n - 1].row.pc - t->base;
	if (last > UINT32_MAX || n > AP_CFI_MAX_ROWS)
		return -E2BIG;
	/* rebase: pc_base + pc - t->base, never negative since t->base <= the first pc */
	for (size_t i = 0; i < n; i++)
		b->rows[i].row.pc = (uint32_t)(b->pc_base + b->rows[i].row.pc - t->base);
	t->nrows = (uint32_t)n;
	t->shift = pick_shift(b->rows, n);
	t->nbuckets = (uint32_t)(last >> t->shift) + 1;
	t->row_base = AP_UNWIND_ROW_BASE(t->nbuckets);
	if (b->sink) {
		t->image = b->sink->alloc(b->sink->ctx, ap_cfi_table_entries(t));
		t->image_external = t->image != NULL;
	} else {
		t->image = calloc(ap_cfi_table_entries(t), sizeof(*t->image));
	}
	if (!t->image)
		return -ENOMEM;
	rows = (struct ap_unwind_row *)(t->image + t->row_base);
	for (size_t i = 0; i < n; i++) {
		rows[i] = b->rows[i].row;
		switch (rows[i].kind & AP_CFA_KIND_MASK) {
		case AP_CFA_UNSUPPORTED:
			t->stats.rows_unsupported++;
			break;
		case AP_CFA_PLT:
			t->stats.rows_plt++;
			break;
		case AP_CFA_END:
			t->stats.rows_end++;
			break;
		case AP_CFA_SIGNAL:
			t->stats.rows_signal++;
			break;
		}
	}
	/* index entry b: the row in effect at the start of bucket b */
	ix = (uint32_t *)t->image;
	for (uint32_t bk = 0, r = 0; bk < t->nbuckets; bk++) {
		uint64_t start = (uint64_t)bk << t->shift;

		while (r + 1 < n && rows[r + 1].pc <= start)
			r++;
		ix[bk] = r;
	}
	ix[t->nbuckets] = (uint32_t)n - 1;
	t->stats.rows = (uint32_t)n;
	return 0;
}

/* ---- ELF ---- */

int ap_cfi_build_id(Elf *elf, char *hex, size_t len)
{
	Elf_Scn *scn = NULL;
	unsigned int notes = 0;

	hex[0] = '\0';
	/* libelf may copy every note section it is asked for (and keeps the copies): a bounded
	 * number of small ones is searched (AP_CFI_MAX_NOTES) */
	while ((scn = elf_nextscn(elf, scn)) && notes < AP_CFI_MAX_NOTES) {
		GElf_Shdr sh;
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, noff, doff;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    sh.sh_size > AP_CFI_MAX_NOTE_BYTES)
			continue;
		notes++;
		d = elf_getdata(scn, NULL);
		while (d && (off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + noff, "GNU", 4) != 0)
				continue;
			for (size_t i = 0; i < nh.n_descsz && 2 * i + 2 < len; i++)
				snprintf(hex + 2 * i, 3, "%02x",
					 ((const uint8_t *)d->d_buf)[doff + i]);
			return 0;
		}
	}
	return -ENOENT;
}

static int load_segments(Elf *elf, struct ap_cfi_table *t, GElf_Phdr *eh_hdr)
{
	size_t nph;

	memset(eh_hdr, 0, sizeof(*eh_hdr));
	if (elf_getphdrnum(elf, &nph))
		return -ENOEXEC;
	t->segs = calloc(nph ? nph : 1, sizeof(*t->segs));
	if (!t->segs)
		return -ENOMEM;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			continue;
		if (ph.p_type == PT_GNU_EH_FRAME)
			*eh_hdr = ph;
		if (ph.p_type != PT_LOAD)
			continue;
		/* every FDE is checked against each segment: a file with thousands of them
		 * would cost FDEs x segments */
		if (t->nsegs == AP_CFI_MAX_SEGS)
			return -E2BIG;
		t->segs[t->nsegs].offset = ph.p_offset;
		t->segs[t->nsegs].vaddr = ph.p_vaddr;
		t->segs[t->nsegs].filesz = ph.p_filesz;
		t->segs[t->nsegs].flags = ph.p_flags;
		t->nsegs++;
	}
	return t->nsegs ? 0 : -ENOEXEC;
}

/* Bytes of the file at ELF vaddr `addr` (through the PT_LOAD holding it): .eh_frame located
 * from PT_GNU_EH_FRAME when the section headers are gone. */
static const uint8_t *vaddr_bytes(Elf *elf, const struct ap_cfi_table *t, uint64_t addr,
				  size_t *avail)
{
	size_t fsize;
	const char *raw = elf_rawfile(elf, &fsize);

	for (uint32_t i = 0; raw && i < t->nsegs; i++) {
		const struct ap_cfi_seg *s = &t->segs[i];
		uint64_t off = addr - s->vaddr + s->offset;

		if (addr < s->vaddr || addr - s->vaddr >= s->filesz || off >= fsize)
			continue;
		*avail = (size_t)(s->filesz - (addr - s->vaddr));
		if (*avail > fsize - off)
			*avail = fsize - off;
		return (const uint8_t *)raw + off;
	}
	return NULL;
}

/* .eh_frame from .eh_frame_hdr's eh_frame_ptr (sstripped files keep only program headers). */
static bool eh_frame_from_hdr(Elf *elf, const struct ap_cfi_table *t, const GElf_Phdr *hdr,
			      struct ap_cfi_section *sec)
{
	size_t avail;
	const uint8_t *h = vaddr_bytes(elf, t, hdr->p_vaddr, &avail);
	int64_t rel;

	/* version 1, eh_frame_ptr encoded as pcrel|sdata4 (what every linker writes) */
	if (!h || avail < 8 || h[0] != 1 || h[1] != 0x1b)
		return false;
	memcpy(&rel, h + 4, 4);
	rel = (int32_t)rel;
	sec->vaddr = hdr->p_vaddr + 4 + (uint64_t)rel;
	sec->data = vaddr_bytes(elf, t, sec->vaddr, &sec->size);
	sec->eh = true;
	return sec->data != NULL;
}

static bool section_data(Elf_Scn *scn, const GElf_Shdr *sh, bool eh, uint64_t datarel,
			 struct ap_cfi_section *sec, uint32_t *too_big)
{
	Elf_Data *d;

	if (sh->sh_flags & SHF_COMPRESSED) {
		GElf_Chdr ch;

		/* the header's size is what libelf allocates before inflating: bound it */
		if (!gelf_getchdr(scn, &ch))
			return false;
		if (ch.ch_size > AP_CFI_MAX_SECTION) {
			(*too_big)++;
			return false;
		}
		if (elf_compress(scn, 0, 0) < 0)
			return false;
	}
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf || !d->d_size)
		return false;
	if (d->d_size > AP_CFI_MAX_SECTION) {
		(*too_big)++;
		return false;
	}
	sec->data = d->d_buf;
	sec->size = d->d_size;
	sec->vaddr = sh->sh_addr;
	sec->datarel_base = datarel;
	sec->eh = eh;
	return true;
}

int ap_cfi_table_build(Elf *elf, struct ap_cfi_table *t)
{
	return ap_cfi_table_build_into(elf, t, NULL);
}

/* One CFI section's rows into the builder, its FDE counts into the table's stats. */
static int parse_section(struct builder *b, const struct ap_cfi_section *sec,
			 struct ap_cfi_table *t)
{
	struct ap_cfi_parse_stats ps = { 0 };
	int err;

	err = ap_cfi_parse(sec, want_fde, add_row, b, &ps);
	err = err ? err : b->err ? b->err : flush_end(b);
	if (err)
		return err;
	t->stats.fdes += ps.fdes;
	t->stats.fdes_bad += ps.fdes_bad;
	t->stats.fdes_limit += ps.fdes_limit;
	if (b->debug_frame)
		t->stats.fdes_debug_frame = ps.fdes;
	return 0;
}

int ap_cfi_table_build_into(Elf *elf, struct ap_cfi_table *t, const struct ap_cfi_sink *sink)
{
	struct builder b = { .sink = sink };
	struct ap_cfi_section eh = { 0 }, dbg = { 0 };
	GElf_Ehdr eh_hdr;
	GElf_Phdr ehf;
	GElf_Shdr sh;
	Elf_Scn *scn;
	uint64_t got = 0;
	bool have_eh = false, have_dbg = false;
	int err;

	memset(t, 0, sizeof(*t));
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh_hdr) ||
	    gelf_getclass(elf) != ELFCLASS64 || eh_hdr.e_machine != EM_X86_64)
		return -ENOEXEC;
	err = load_segments(elf, t, &ehf);
	if (err)
		goto out;
	ap_cfi_build_id(elf, t->build_id, sizeof(t->build_id));
	if (ap_elf_find_section(elf, ".got", &sh))
		got = sh.sh_addr;
	scn = ap_elf_find_section(elf, ".eh_frame", &sh);
	if (scn)
		have_eh = section_data(scn, &sh, true, got, &eh, &t->stats.sections_too_big);
	else if (ehf.p_type == PT_GNU_EH_FRAME)
		have_eh = eh_frame_from_hdr(elf, t, &ehf, &eh);
	scn = ap_elf_find_section(elf, ".debug_frame", &sh);
	if (scn)
		have_dbg = section_data(scn, &sh, false, 0, &dbg, &t->stats.sections_too_big);
	if (!have_eh && !have_dbg) {
		err = -ENOENT;
		goto out;
	}

	b.segs = t->segs;
	b.nsegs = t->nsegs;
	b.pc_base = UINT64_MAX;
	for (uint32_t i = 0; i < t->nsegs; i++)
		if ((t->segs[i].flags & PF_X) && t->segs[i].vaddr < b.pc_base)
			b.pc_base = t->segs[i].vaddr;
	if (b.pc_base == UINT64_MAX) {
		err = -ENOENT; /* no code: nothing to unwind */
		goto out;
	}
	if (have_eh) {
		err = parse_section(&b, &eh, t);
		if (err)
			goto out;
		/* qsort(NULL, 0) is undefined: no ranges when no FDE was wanted */
		if (b.nranges > 1)
			qsort(b.ranges, b.nranges, sizeof(*b.ranges), cmp_range);
	}
	if (have_dbg) {
		b.debug_frame = true;
		err = parse_section(&b, &dbg, t);
		if (err)
			goto out;
	}
	err = finish(&b, t);
out:
	free(b.rows);
	free(b.ranges);
	if (err)
		ap_cfi_table_release(t);
	return err;
}

static int build_from(Elf *elf, struct ap_cfi_table *t, const struct ap_cfi_sink *sink)
{
	int err;

	if (!elf)
		return -ENOEXEC;
	err = ap_cfi_table_build_into(elf, t, sink);
	elf_end(elf);
	return err;
}

int ap_cfi_table_from_fd_into(int fd, struct ap_cfi_table *t, const struct ap_cfi_sink *sink)
{
	memset(t, 0, sizeof(*t));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	return build_from(elf_begin(fd, ELF_C_READ_MMAP, NULL), t, sink);
}

int ap_cfi_table_from_fd(int fd, struct ap_cfi_table *t)
{
	return ap_cfi_table_from_fd_into(fd, t, NULL);
}

int ap_cfi_table_from_path(const char *path, struct ap_cfi_table *t)
{
	int fd, err;

	memset(t, 0, sizeof(*t));
	fd = ap_open_untrusted(AT_FDCWD, path, 0, 0, NULL);
	if (fd < 0)
		return fd;
	err = ap_cfi_table_from_fd(fd, t);
	close(fd);
	return err;
}

int ap_cfi_build_id_fd(int fd, char *hex, size_t len)
{
	Elf *elf;
	int err;

	hex[0] = '\0';
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	err = elf_kind(elf) == ELF_K_ELF ? ap_cfi_build_id(elf, hex, len) : -ENOEXEC;
	elf_end(elf);
	return err;
}

int ap_cfi_table_from_mem(const void *image, size_t size, struct ap_cfi_table *t)
{
	memset(t, 0, sizeof(*t));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	return build_from(elf_memory((char *)image, size), t, NULL);
}

void ap_cfi_table_release(struct ap_cfi_table *t)
{
	if (!t)
		return;
	if (!t->image_external)
		free(t->image);
	free(t->segs);
	memset(t, 0, sizeof(*t));
}

const struct ap_unwind_row *ap_cfi_table_find(const struct ap_cfi_table *t, uint64_t tpc)
{
	const uint32_t *ix = (const uint32_t *)t->image;
	const struct ap_unwind_row *rows = ap_cfi_table_rows(t);
	uint64_t bk = tpc >> t->shift;
	uint32_t lo, hi;

	if (!t->image || bk >= t->nbuckets)
		return NULL;
	lo = ix[bk];
	hi = ix[bk + 1] + 1;
	while (lo + 1 < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (rows[mid].pc <= tpc)
			lo = mid;
		else
			hi = mid;
	}
	return rows[lo].pc <= tpc ? &rows[lo] : NULL;
}

int ap_cfi_table_bias(const struct ap_cfi_table *t, uint64_t start, uint64_t offset,
		      uint64_t *bias)
{
	/* executable segments first: a page may hold the end of one segment and the start of
	 * the next */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < t->nsegs; i++) {
			const struct ap_cfi_seg *s = &t->segs[i];
			uint64_t page_off = s->offset & ~0xfffULL;

			if ((int)!(s->flags & PF_X) != pass || offset < page_off ||
			    offset >= s->offset + s->filesz)
				continue;
			*bias = start - offset + s->offset - s->vaddr + t->base;
			return 0;
		}
	}
	return -ENOENT;
}
