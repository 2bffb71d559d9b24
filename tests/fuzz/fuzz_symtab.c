/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: ELF symbol tables (elf_symtab.c): .symtab/.dynsym, program headers, the
 * build-id note, then lookups and (lazy, demangled) names at every symbol and a few file
 * offsets. The input is the ELF file, read through elf_memory().
 */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>

#include "fuzz_file_util.h"
#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_symtab t;
	uint64_t sum = 0, va;

	if (ap_symtab_load_mem(data, size, &t) == 0) {
		for (size_t i = 0; i < t.nsyms && i < 4096; i++) {
			const struct ap_symtab_sym *s = ap_symtab_find(&t, t.syms[i].addr);
			const char *name;

			if (!s)
				continue;
			name = ap_symtab_name(&t, s);
			sum += name ? strlen(name) : 0;
			if (ap_symtab_find(&t, t.syms[i].addr + t.syms[i].size))
				sum++;
		}
		for (size_t i = 0; i + 8 <= size && i < 512; i += 64) {
			uint64_t off;

			memcpy(&off, data + i, 8);
			if (ap_symtab_file_to_vaddr(&t, off, &va) || ap_symtab_file_to_vaddr(&t, i, &va))
				sum += va;
		}
		sum += ap_symtab_bytes(&t);
		ap_symtab_release(&t);
	}
	return sum == 1;
}
