/* SPDX-License-Identifier: MIT */
/* Fuzz target: the /proc/PID/maps line parser (proc_maps.c), on each line of the input. */
#include <stdlib.h>
#include <string.h>

#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *line, *next;
	uint64_t sum = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = buf; line; line = next) {
		struct ap_maps_entry e;
		char *nl = strchr(line, '\n');

		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		if (ap_maps_parse_line(line, &e) == 0) {
			if (e.end < e.start || !e.path || e.path < buf || e.path > buf + size)
				abort();
			sum += e.start + strlen(e.path);
		}
	}
	free(buf);
	return sum == 1;
}
