/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: a whole ELF file through the unwind-table compiler (cfi_table.c): program
 * headers, .eh_frame (or .eh_frame_hdr's pointer when sections are gone), .debug_frame
 * (compressed ones too), the row merge and the bucket index; then lookups in the table.
 * The input is the file, read in place through elf_memory().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/cfi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_cfi_table t;
	uint64_t bias, sum = 0;
	/* elf_memory() may write (compressed sections are inflated in place of the data
	 * descriptor, not of the image, but the API takes a non-const pointer) */
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (ap_cfi_table_from_mem(copy, size, &t) == 0) {
		const struct ap_unwind_row *rows = ap_cfi_table_rows(&t);

		if (t.nrows == 0 || t.nrows > AP_CFI_MAX_ROWS)
			abort();
		for (uint32_t i = 0; i < t.nrows; i++) {
			const struct ap_unwind_row *r = ap_cfi_table_find(&t, rows[i].pc);

			/* the row found for a row's own pc is that row */
			if (!r || r->pc != rows[i].pc)
				abort();
			sum += r->kind;
		}
		(void)ap_cfi_table_find(&t, UINT32_MAX);
		for (uint32_t i = 0; i < t.nsegs; i++)
			if (ap_cfi_table_bias(&t, 0x7f0000000000, t.segs[i].offset, &bias) == 0)
				sum += bias;
	}
	ap_cfi_table_release(&t);
	free(copy);
	return sum == 1;
}
