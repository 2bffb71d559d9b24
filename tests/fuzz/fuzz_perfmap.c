/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: JIT perf maps (perfmap.c): the line parser, then the whole file read
 * incrementally as a growing file is (the input split in two appends), and lookups.
 */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>

#include "fuzz_file_util.h"
#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[256];
	uint64_t start, len, sum = 0;
	const char *name, *path;
	size_t nlen, half = size / 2;
	struct ap_perfmap *m;
	FILE *f;

	/* one line, NUL-terminated, as the reader hands it over */
	nlen = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	memcpy(line, data, nlen);
	line[nlen] = '\0';
	if (ap_perfmap_parse_line(line, &start, &len, &name, &nlen) == 0) {
		if (name < line || name + nlen > line + sizeof(line) || !len)
			abort();
		sum += start;
	}

	path = fuzz_shm_file("perfmap", data, half);
	m = ap_perfmap_open_path(path);
	if (m) {
		f = fopen(path, "ae"); /* the runtime appends the rest */
		if (!f || fwrite(data + half, 1, size - half, f) != size - half || fclose(f))
			abort();
		ap_perfmap_update(m);
		if (ap_perfmap_count(m) > size)
			abort(); /* at most one entry per line */
		for (size_t i = 0; i + 8 <= size && i < 256; i += 8) {
			uint64_t addr, s;

			memcpy(&addr, data + i, 8);
			if (ap_perfmap_find(m, addr, &s))
				sum += s;
		}
		ap_perfmap_free(m);
	}
	unlink(path);
	return sum == 1;
}
