/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: an ELF file with DWARF through our debug-info glue: build-id and
 * .gnu_debuglink parsing and the local lookup (debuginfo.c, with no debug directories and a
 * root that does not exist: nothing outside the input is read), then libdw through dwarf.c
 * (the aranges / CU range index, inline chains, call sites, line table) at every function
 * symbol and at addresses taken from the input.
 */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>

#include <gelf.h>

#include "fuzz_file_util.h"
#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = fuzz_memfd(data, size);
	struct ap_symtab t;
	struct ap_dbg *d;
	uint64_t sum = 0;
	Elf *elf;

	if (ap_symtab_load_mem(data, size, &t))
		return 0;
	d = ap_dbg_new();
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (d && elf && ap_dbg_locate(d, &t, elf, fd, "/nonexistent-ap-fuzz-root",
				      "/usr/bin/fuzzed") == 0) {
		for (size_t i = 0; i < t.nsyms + 64 && i < 256; i++) {
			const struct ap_src_frame *f;
			uint64_t va;
			size_t n;

			if (i < t.nsyms) {
				va = t.syms[i].addr + (t.syms[i].size ? t.syms[i].size / 2 : 0);
			} else if ((i - t.nsyms) * 8 + 8 <= size) {
				memcpy(&va, data + (i - t.nsyms) * 8, 8);
			} else {
				break;
			}
			n = ap_dbg_lookup(d, &t, va, &f);
			if (n > AP_MAX_INLINE)
				abort();
			for (size_t k = 0; k < n; k++)
				sum += (f[k].name ? strlen(f[k].name) : 0) +
				       (f[k].file ? strlen(f[k].file) : 0) + f[k].line;
		}
	}
	if (elf)
		elf_end(elf);
	if (d) {
		if (t.dbg)
			ap_dbg_release(d, t.dbg);
		t.dbg = NULL;
		ap_dbg_free(d);
	}
	ap_symtab_release(&t);
	return sum == 1;
}
