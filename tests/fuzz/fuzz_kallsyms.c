/* SPDX-License-Identifier: MIT */
/* Fuzz target: /proc/kallsyms loading (kallsyms.c: parse, sort, name compression) and
 * lookups (name decoding) at the addresses the input lists. */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>

#include "fuzz_file_util.h"
#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_shm_file("kallsyms", data, size);
	struct ap_kallsyms *k;
	uint64_t sum = 0;

	if (ap_kallsyms_load(path, &k) == 0) {
		const char *line = (const char *)data, *end = line + size;

		if (ap_kallsyms_count(k) > size)
			abort();
		/* each line's address, and one past it */
		for (int i = 0; line < end && i < 512; i++) {
			const char *nl = memchr(line, '\n', (size_t)(end - line));
			char hex[17] = { 0 };
			size_t n = (size_t)((nl ? nl : end) - line);
			const char *name, *mod;
			uint64_t addr, s;

			memcpy(hex, line, n < 16 ? n : 16);
			addr = strtoull(hex, NULL, 16);
			for (int d = 0; d < 2; d++)
				if (ap_kallsyms_find(k, addr + d, &name, &mod, &s) == 0)
					sum += strlen(name) + strlen(mod) + s;
			line = nl ? nl + 1 : end;
		}
		ap_kallsyms_free(k);
	}
	unlink(path);
	return sum == 1;
}
