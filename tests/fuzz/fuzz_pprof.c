/* SPDX-License-Identifier: MIT */
/* Fuzz target: the pprof reader (gzipped or raw protobuf), then every writer on what it read. */
#include <stdint.h>

#include "fuzz_profile_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_profile *p = ap_profile_new();
	char err[512];

	if (!p)
		return 0;
	if (ap_read_pprof_limited(data, size, FUZZ_MAX_MEM, p, err, sizeof(err)) == 0)
		fuzz_write_all(p);
	ap_profile_free(p);
	return 0;
}
