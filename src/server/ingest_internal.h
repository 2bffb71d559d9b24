/* SPDX-License-Identifier: MIT */
/* Helpers the ingest decoders share (ingest.c, ingest_pyroscope.c, ingest_tables.c). */
#ifndef AP_INGEST_INTERNAL_H
#define AP_INGEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"

/* Bounds of what one push may hold beyond the storage's label limits. */
#define AP_INGEST_MAX_JSON_VALUES (512u * 1024) /* values of a tables/agent JSON part */
#define AP_INGEST_MAX_ROWS 65536		/* table rows of one push */
#define AP_INGEST_MAX_AGENT_COUNTERS 64
#define AP_INGEST_MAX_COUNTER_NAME 64

/* The value of the first query parameter `name`, or NULL. */
const char *ap_ing_arg(const struct ap_ingest_req *r, const char *name);

/* [A-Za-z_][A-Za-z0-9_.]* of at most AP_STORE_MAX_LABEL_NAME bytes. */
bool ap_ing_label_name_ok(const char *s, size_t n);

/*
 * Append the label (name, value) to out after checking the name's syntax, the value's length
 * (1..AP_STORE_MAX_LABEL_VALUE bytes, valid UTF-8, no control characters), duplicates and the
 * count. `where` names the source in messages ("query parameter label #2"). Returns 0,
 * -EINVAL or -ENOMEM.
 */
int ap_ing_add_label(struct ap_ingest *out, const char *name, size_t nlen, const char *value,
		     size_t vlen, const char *where, char *err, size_t errlen);
/* The value of the push label `name`, or NULL. */
const char *ap_ing_label(const struct ap_ingest *in, const char *name);

/*
 * Decode a pprof part (gzipped or not) into out->profile: -EFBIG when it inflates beyond
 * max_inflated (the gzip trailer's claim is checked first, so an honest bomb costs nothing),
 * -EINVAL with the reader's reason prefixed by `where`.
 */
int ap_ing_read_pprof(const uint8_t *data, size_t len, uint64_t max_inflated, const char *where,
		      struct ap_ingest *out, char *err, size_t errlen);

/* The same into out->flat with the flat decoder (format/pprof_flat.h) and context c. */
int ap_ing_read_pprof_flat(struct ap_flat_ctx *c, const uint8_t *data, size_t len,
			   uint64_t max_inflated, const char *where, struct ap_ingest *out,
			   char *err, size_t errlen);

/*
 * Check the decoded profile's per-sample labels against the storage's rules, as the stored
 * series will be the push's labels plus pid, comm and the sample's labels: names valid and
 * not already push labels, values at most AP_STORE_MAX_LABEL_VALUE bytes, at most
 * AP_STORE_MAX_LABELS in all. Returns 0 or -EINVAL naming the sample and the label.
 */
int ap_ing_check_profile(const struct ap_ingest *in, char *err, size_t errlen);

/* The `tables` part: a lock or syscall JSON report into out->rows (ingest_tables.c). The
 * report's mode must equal `mode`. */
int ap_ing_decode_tables(const char *mode, const uint8_t *json, size_t len,
			 struct ap_ingest *out, char *err, size_t errlen);
/* The `agent` part: {"name": number, ...} into out->agent. */
int ap_ing_decode_agent(const uint8_t *json, size_t len, struct ap_ingest *out, char *err,
			size_t errlen);

/* Free-form strdup of n bytes that reports allocation failure as NULL. */
char *ap_ing_strndup(const char *s, size_t n);

#endif
