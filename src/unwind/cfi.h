/* SPDX-License-Identifier: MIT */
/*
 * Call frame information (.eh_frame, .debug_frame) -> compact unwind tables for the BPF
 * stack walker. Pure userspace code (part of aperture_core, unit-tested on fixture ELFs);
 * the BPF maps are managed by unwinder.c.
 */
#ifndef AP_UNWIND_CFI_H
#define AP_UNWIND_CFI_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libelf.h>

#include "bpf/unwind_table.h"

/* ---- cfi_parse.c: the DWARF CFI decoder ---- */

enum ap_cfi_rule_kind {
	AP_RULE_SAME = 0,   /* unchanged (also "unspecified") */
	AP_RULE_UNDEFINED,  /* not recoverable; for the return address: outermost frame */
	AP_RULE_OFFSET,	    /* saved at CFA + off */
	AP_RULE_VAL_OFFSET, /* value is CFA + off */
	AP_RULE_REGISTER,   /* in register `reg` */
	AP_RULE_EXPR,	    /* saved at the address the expression computes */
	AP_RULE_VAL_EXPR,   /* value is what the expression computes */
};

struct ap_cfi_rule {
	const uint8_t *expr; /* AP_RULE_*EXPR: DWARF expression, into the section data */
	int64_t off;
	uint32_t expr_len;
	uint32_t reg;
	uint8_t kind; /* enum ap_cfi_rule_kind */
};

/* The rules in effect at a pc (only the registers the walker uses). */
struct ap_cfi_regs {
	const uint8_t *cfa_expr; /* non-NULL: CFA = value of this expression */
	int64_t cfa_off;
	uint32_t cfa_expr_len;
	uint32_t cfa_reg;	 /* DWARF register number (x86-64: 6 = RBP, 7 = RSP) */
	struct ap_cfi_rule rbp;
	struct ap_cfi_rule ra;
};

struct ap_cfi_fde {
	uint64_t start; /* [start, end): the code this FDE describes, ELF vaddrs */
	uint64_t end;
	bool signal;	/* CIE augmentation 'S': a signal trampoline */
};

struct ap_cfi_section {
	const uint8_t *data;
	size_t size;
	uint64_t vaddr;	       /* ELF address of data[0] (the pc-relative base) */
	uint64_t datarel_base; /* DW_EH_PE_datarel base (.got), 0 if unknown */
	bool eh;	       /* .eh_frame (else .debug_frame) */
};

/* Limits on what a hostile file can make us do (docs/unwinding.md, "Limits"). A hit is
 * counted in the stats below and in ap_cfi_table_stats, never a failure of the whole file. */
/* Bytes of a CIE's initial instructions: they run again for every FDE of the CIE, so a long
 * one shared by many FDEs costs quadratic time. Compilers emit < 16 bytes. */
#define AP_CFI_MAX_CIE_INSNS 512
/* Rows of one table after merging (libLLVM-17: about 1.2 M; node 20: 0.28 M), and twice
 * that before merging (12 bytes each while building: at most 192 MiB). More gives -E2BIG. */
#define AP_CFI_MAX_ROWS (8u << 20)
/* Note sections searched for the build-id, and the size of each (a build-id note is 36
 * bytes; libelf may copy each note section it reads and keeps it until elf_end). */
#define AP_CFI_MAX_NOTES 16
#define AP_CFI_MAX_NOTE_BYTES (64u << 10)
/* PT_LOAD segments of a file (linkers write 2-5). More gives -E2BIG. */
#define AP_CFI_MAX_SEGS 64
/* Bytes of a (decompressed) .eh_frame / .debug_frame section. A larger compressed
 * .debug_frame is not inflated (its CFI is not used; counted in sections_too_big). */
#define AP_CFI_MAX_SECTION (256ull << 20)

struct ap_cfi_parse_stats {
	uint32_t fdes;	       /* FDEs whose rows were reported */
	uint32_t fdes_skipped; /* empty, filtered out, or describing discarded code */
	uint32_t fdes_bad;     /* malformed, or using an opcode we do not know */
	uint32_t fdes_limit;   /* dropped by a limit (AP_CFI_MAX_CIE_INSNS) */
};

/* Called for every FDE before its rows; return false to skip it. */
typedef bool (*ap_cfi_want_fn)(void *ctx, const struct ap_cfi_fde *fde);
/* Called for each row: `r` holds from `pc` until the next row of the FDE or its end.
 * Return non-zero to stop the parse (returned by ap_cfi_parse). */
typedef int (*ap_cfi_row_fn)(void *ctx, const struct ap_cfi_fde *fde, uint64_t pc,
			     const struct ap_cfi_regs *r);

/* Decode every FDE of a section. Malformed entries are skipped and counted; a malformed
 * section header stops the walk. Returns 0 or what cb returned. */
int ap_cfi_parse(const struct ap_cfi_section *sec, ap_cfi_want_fn want, ap_cfi_row_fn cb,
		 void *ctx, struct ap_cfi_parse_stats *stats);

/* ---- cfi_table.c: ELF -> compact table ---- */

struct ap_cfi_seg {
	uint64_t offset;
	uint64_t vaddr;
	uint64_t filesz;
	uint32_t flags; /* PF_X, ... */
	uint32_t pad;
};

#define AP_CFI_BUILD_ID_HEX 65

struct ap_cfi_table_stats {
	uint32_t fdes;		   /* FDEs used (both sections) */
	uint32_t fdes_bad;	   /* malformed FDEs skipped */
	uint32_t fdes_debug_frame; /* FDEs taken from .debug_frame */
	uint32_t fdes_limit;	   /* FDEs dropped by a limit (AP_CFI_MAX_CIE_INSNS) */
	uint32_t sections_too_big; /* CFI sections over AP_CFI_MAX_SECTION, not read */
	uint32_t rows;		   /* rows after merging */
	uint32_t rows_unsupported; /* rows whose rule the walker does not model */
	uint32_t rows_plt;
	uint32_t rows_end;	   /* outermost-frame markers */
	uint32_t rows_signal;
};

struct ap_cfi_table {
	uint64_t *image;	/* bucket index, then rows from row_base (unwind_table.h) */
	bool image_external;	/* image came from an ap_cfi_sink: not freed by release */
	struct ap_cfi_seg *segs; /* PT_LOAD segments */
	uint64_t base;		/* ELF vaddr of table pc 0 */
	uint32_t nbuckets;
	uint32_t row_base;
	uint32_t nrows;
	uint8_t shift;
	uint32_t nsegs;
	char build_id[AP_CFI_BUILD_ID_HEX]; /* lower-case hex, "" if none */
	struct ap_cfi_table_stats stats;
};

/* Compile the CFI of an opened ELF (x86-64 only). Returns 0, -ENOENT (no CFI: unwind the file
 * with frame pointers), -ENOEXEC (not a usable ELF), -E2BIG (code spans more than 4 GiB) or
 * -ENOMEM. Release with ap_cfi_table_release(). */
int ap_cfi_table_build(Elf *elf, struct ap_cfi_table *t);

/* Where a table image is written, when not into calloc'ed memory: the unwinder hands out the
 * mapped memory of the BPF map that will hold it, so a big table (libLLVM: 9 MiB) is never
 * also copied on the heap. alloc returns zeroed memory for `entries` 8-byte entries or NULL;
 * the memory stays the sink's. */
struct ap_cfi_sink {
	uint64_t *(*alloc)(void *ctx, size_t entries);
	void *ctx;
};
int ap_cfi_table_build_into(Elf *elf, struct ap_cfi_table *t, const struct ap_cfi_sink *sink);
int ap_cfi_table_from_fd_into(int fd, struct ap_cfi_table *t, const struct ap_cfi_sink *sink);
int ap_cfi_table_from_path(const char *path, struct ap_cfi_table *t);
int ap_cfi_table_from_fd(int fd, struct ap_cfi_table *t);
int ap_cfi_table_from_mem(const void *image, size_t size, struct ap_cfi_table *t);
/* GNU build-id as lower-case hex into hex[len]. Returns 0, -ENOENT (none) or -ENOEXEC. */
int ap_cfi_build_id(Elf *elf, char *hex, size_t len);
int ap_cfi_build_id_fd(int fd, char *hex, size_t len);
/* Frees what t holds and zeroes it. */
void ap_cfi_table_release(struct ap_cfi_table *t);

/* Number of 8-byte entries of the table image (what the BPF inner map holds). */
static inline size_t ap_cfi_table_entries(const struct ap_cfi_table *t)
{
	return (size_t)t->row_base + t->nrows;
}

static inline const struct ap_unwind_row *ap_cfi_table_rows(const struct ap_cfi_table *t)
{
	return (const struct ap_unwind_row *)(t->image + t->row_base);
}

/* Row covering table pc `tpc` (the same search as the BPF walker), or NULL. */
const struct ap_unwind_row *ap_cfi_table_find(const struct ap_cfi_table *t, uint64_t tpc);

/* Bias (table pc = runtime pc - bias) of a mapping of the file at runtime address `start`
 * with file offset `offset`. Returns 0, or -ENOENT when no PT_LOAD holds that offset. */
int ap_cfi_table_bias(const struct ap_cfi_table *t, uint64_t start, uint64_t offset,
		      uint64_t *bias);

/* Turn decoded rules into one compact row (exposed for tests). */
void ap_cfi_compile_row(const struct ap_cfi_fde *fde, const struct ap_cfi_regs *r,
			struct ap_unwind_row *out);

#endif
