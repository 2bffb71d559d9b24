/* SPDX-License-Identifier: MIT */
/* Fuzz target: the folded-text reader, then every writer on what it read. */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_profile_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_profile *p;
	char err[512];
	FILE *in;

	if (!size)
		return 0;
	in = fmemopen((void *)data, size, "r");
	if (!in)
		return 0;
	p = ap_profile_new();
	if (p && ap_read_folded(in, p, err, sizeof(err)) == 0)
		fuzz_write_all(p);
	fclose(in);
	ap_profile_free(p);
	return 0;
}
