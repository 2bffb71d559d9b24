/* SPDX-License-Identifier: MIT */
/* Fuzz target: the strict number, size and duration parsers every flag goes through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[128];
	uint64_t v;
	int pid;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (ap_parse_u64(buf, 0, UINT64_MAX, &v) == 0 && v != strtoull(buf, NULL, 10))
		abort();
	(void)ap_parse_duration_ns(buf, &v);
	(void)ap_parse_size(buf, 0, UINT64_MAX, &v);
	(void)ap_parse_pid(buf, &pid);
	return 0;
}
