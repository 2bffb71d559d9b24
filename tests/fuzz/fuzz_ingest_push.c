/* SPDX-License-Identifier: MIT */
/* Fuzz target: the Aperture push decoder (src/server/ingest.c, ingest_tables.c): query
 * (push_id, from, until, label=...), content type and the multipart body with its profile,
 * tables (lock and syscall JSON reports) and agent parts (fuzz_ingest_util.h). Each input is
 * decoded twice, as the server can: the profile part into an ap_profile, then flat
 * (format/pprof_flat.h, the server's way for a store that takes it) with a context reused
 * across inputs; when both accept, the flat one has the model's value types and totals. */
#include "fuzz_flat_util.h"
#include "fuzz_ingest_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_flat_ctx *ctx;
	struct fuzz_req f;
	struct ap_ingest in, flat;
	char err[512];
	int rc, rcf;

	if (!ctx && !(ctx = ap_flat_ctx_new()))
		return 0;
	if (fuzz_req_init(&f, data, size))
		return 0;
	rc = ap_ingest_decode_push(&f.req, &in, err, sizeof(err));
	fuzz_check_ingest(rc, &in, err);
	f.req.flat_ctx = ctx;
	rcf = ap_ingest_decode_push(&f.req, &flat, err, sizeof(err));
	fuzz_check_ingest(rcf, &flat, err);
	if (!rcf && flat.profile)
		abort(); /* flat or nothing */
	if (!rcf && flat.flat)
		fuzz_check_flat(flat.flat, !rc ? in.profile : NULL);
	ap_ingest_free(&in);
	ap_ingest_free(&flat);
	ap_flat_ctx_trim(ctx);
	free(f.strs);
	return 0;
}
