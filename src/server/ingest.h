/* SPDX-License-Identifier: MIT */
/*
 * Ingest decoders: pure functions from a request's bytes to what the storage writes. No I/O,
 * no HTTP library: the server fills struct ap_ingest_req from libmicrohttpd, the fuzz targets
 * from their input. Every size is bounded (the body by the server's --max-body, gzip by
 * max_inflated, labels by the AP_STORE_MAX_* limits).
 */
#ifndef AP_INGEST_H
#define AP_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "format/pprof_flat.h"
#include "lib/profile.h"
#include "storage/storage.h"

struct ap_http_arg {
	const char *name; /* URL-decoded */
	const char *value;
};

struct ap_ingest_req {
	const struct ap_http_arg *args; /* query parameters, in order */
	size_t nargs;
	const char *content_type;     /* NULL when absent */
	const char *content_encoding; /* NULL when absent */
	const char *tenant;	      /* X-Scope-OrgID, NULL when absent */
	const uint8_t *body;
	size_t len;
	uint64_t now_ns;	      /* for from/until defaults and "now-1h" */
	uint64_t max_inflated;	      /* cap on a gzip body's inflated size */
	/* non-NULL: the push's profile is decoded flat into this context (out->flat, valid
	 * until its next use) instead of into out->profile; one context per thread */
	struct ap_flat_ctx *flat_ctx;
};

struct ap_agent_counter {
	char *name;
	uint64_t value;
};

struct ap_ingest {
	char *push_id;		  /* NULL for Pyroscope pushes */
	struct ap_label_kv *labels; /* owned strings; `mode` always present */
	size_t nlabels;
	uint64_t from_ns, until_ns;
	struct ap_profile *profile; /* NULL when the push had none */
	const struct ap_flat_profile *flat; /* instead, with ap_ingest_req.flat_ctx */
	struct ap_table_row *rows;  /* owned strings */
	size_t nrows;
	/* the agent's own counters (pushes ok/failed/..., spool bytes), for /metrics */
	struct ap_agent_counter *agent;
	size_t nagent;
};

/*
 * Return 0, or: -EINVAL (malformed: answer 400 with err), -EFBIG (too large, inflation
 * bomb: 413), -ENOMEM. err always says what was wrong and where (field, byte offset).
 */
/* Aperture's own push (POST /api/v1/push, docs/api.md). */
int ap_ingest_decode_push(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
			  size_t errlen);
/* Pyroscope's POST /ingest in every shape its clients use (docs/api.md). */
int ap_ingest_decode_pyroscope(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
			       size_t errlen);
void ap_ingest_free(struct ap_ingest *in);

/* The storage write for a decoded push (pointers into `in`). */
void ap_ingest_to_write(const struct ap_ingest *in, struct ap_store_write *w);

#endif
