/* SPDX-License-Identifier: MIT */
/* Fuzz target: the aggregator's flat pprof decoder (src/format/pprof_flat.c), gzipped or raw
 * protobuf, with one context reused across inputs as each server thread does; what it accepts
 * is checked against the model reader's reading of the same bytes (fuzz_flat_util.h). */
#include <stdint.h>

#include "format/format.h"
#include "fuzz_flat_util.h"

#define FUZZ_MAX_MEM (64u << 20) /* as fuzz_profile_util.h */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_flat_ctx *ctx;
	const struct ap_flat_profile *f;
	struct ap_profile *p;
	char err[512];
	int rc;

	if (!ctx && !(ctx = ap_flat_ctx_new()))
		return 0;
	rc = ap_pprof_flat_decode(ctx, data, size, FUZZ_MAX_MEM, &f, err, sizeof(err));
	if (rc) {
		if ((rc == -EINVAL || rc == -EFBIG) && !err[0])
			abort(); /* a refusal always says why */
		if (f)
			abort();
		ap_flat_ctx_trim(ctx);
		return 0;
	}
	p = ap_profile_new();
	if (p && ap_read_pprof_limited(data, size, FUZZ_MAX_MEM, p, err, sizeof(err)) == 0)
		fuzz_check_flat(f, p);
	else
		fuzz_check_flat(f, NULL);
	ap_profile_free(p);
	ap_flat_ctx_trim(ctx);
	return 0;
}
