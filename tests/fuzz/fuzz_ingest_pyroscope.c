/* SPDX-License-Identifier: MIT */
/* Fuzz target: Pyroscope's /ingest decoder (src/server/ingest_pyroscope.c): query (name,
 * format, from/until, sampleRate, units), content type, X-Scope-OrgID and body from the input
 * (fuzz_ingest_util.h); pprof raw or in a form with sample_type_config, folded, lines. */
#include "fuzz_ingest_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_req f;
	struct ap_ingest in;
	char err[512];

	if (fuzz_req_init(&f, data, size))
		return 0;
	fuzz_check_ingest(ap_ingest_decode_pyroscope(&f.req, &in, err, sizeof(err)), &in, err);
	ap_ingest_free(&in);
	free(f.strs);
	return 0;
}
