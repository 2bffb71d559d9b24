/* SPDX-License-Identifier: MIT */
/* Fuzz target: the multipart/form-data parser (src/server/multipart.c). The first line is a
 * Content-Type (its boundary, when it has one, splits the rest), the rest the body. Every
 * part must lie inside the body and the parts must not overlap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size), *body;
	struct ap_mp_part parts[AP_MP_MAX_PARTS];
	char *ct, b[AP_MP_MAX_BOUNDARY + 1], err[256];
	size_t clen = nl ? (size_t)(nl - data) : size, blen, n = 0;
	const uint8_t *prev_end;
	int rc;

	ct = malloc(clen + 1);
	if (!ct)
		return 0;
	memcpy(ct, data, clen);
	ct[clen] = '\0';
	body = nl ? nl + 1 : data + size;
	blen = (size_t)(data + size - body);
	rc = ap_mp_boundary(ct, b, sizeof(b), err, sizeof(err));
	if (rc == 0 && (!b[0] || strlen(b) > AP_MP_MAX_BOUNDARY))
		abort();
	if (rc != 0) /* still parse, with the first line as the boundary itself */
		snprintf(b, sizeof(b), "%.*s", (int)(clen > AP_MP_MAX_BOUNDARY ? AP_MP_MAX_BOUNDARY
									  : clen),
			 ct);
	free(ct);
	if (!b[0])
		return 0;
	rc = ap_mp_parse(body, blen, b, parts, AP_MP_MAX_PARTS, &n, err, sizeof(err));
	if (n > AP_MP_MAX_PARTS)
		abort();
	prev_end = body;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct ap_mp_part *p = &parts[i];

		if (p->data < prev_end || p->data + p->len > body + blen || !p->name[0] ||
		    p->offset != (size_t)(p->data - body) || ap_mp_find(parts, n, p->name) > p)
			abort();
		prev_end = p->data + p->len;
	}
	return 0;
}
