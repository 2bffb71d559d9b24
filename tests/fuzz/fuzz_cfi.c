/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the DWARF CFI decoder (cfi_parse.c) on a raw .eh_frame / .debug_frame
 * section, every row compiled as the table builder does (cfi_table.c ap_cfi_compile_row).
 * Input: byte 0 picks the section kind (bit 0: .eh_frame) and the data-relative base
 * (bit 1); the rest is the section, at ELF address 0x1000.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/cfi.h"

struct ctx {
	uint64_t sum;
	size_t rows;
};

static void touch(struct ctx *c, const uint8_t *p, uint32_t len)
{
	/* expressions point into the section: reading them catches a pointer outside it */
	for (uint32_t i = 0; p && i < len; i++)
		c->sum += p[i];
}

static int on_row(void *ctx, const struct ap_cfi_fde *fde, uint64_t pc,
		  const struct ap_cfi_regs *r)
{
	struct ctx *c = ctx;
	struct ap_unwind_row row;

	if (pc < fde->start || pc >= fde->end)
		abort(); /* rows stay inside their FDE */
	ap_cfi_compile_row(fde, r, &row);
	touch(c, r->cfa_expr, r->cfa_expr_len);
	touch(c, r->rbp.expr, r->rbp.expr_len);
	touch(c, r->ra.expr, r->ra.expr_len);
	c->sum += row.kind;
	c->rows++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_cfi_parse_stats st;
	struct ctx c = { 0 };
	struct ap_cfi_section sec;

	if (size < 1)
		return 0;
	sec.data = data + 1;
	sec.size = size - 1;
	sec.vaddr = 0x1000;
	sec.datarel_base = data[0] & 2 ? 0x4000 : 0;
	sec.eh = data[0] & 1;
	ap_cfi_parse(&sec, NULL, on_row, &c, &st);
	/* every FDE is counted once: reported, skipped, malformed or dropped by a limit */
	if ((uint64_t)st.fdes + st.fdes_skipped + st.fdes_bad + st.fdes_limit > size)
		abort();
	return c.sum == 1; /* keeps the reads */
}
