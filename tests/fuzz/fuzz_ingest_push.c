/* SPDX-License-Identifier: MIT */
/* Fuzz target: the Aperture push decoder (src/server/ingest.c, ingest_tables.c): query
 * (push_id, from, until, label=...), content type and the multipart body with its profile,
 * tables (lock and syscall JSON reports) and agent parts (fuzz_ingest_util.h). */
#include "fuzz_ingest_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_req f;
	struct ap_ingest in;
	char err[512];

	if (fuzz_req_init(&f, data, size))
		return 0;
	fuzz_check_ingest(ap_ingest_decode_push(&f.req, &in, err, sizeof(err)), &in, err);
	ap_ingest_free(&in);
	free(f.strs);
	return 0;
}
