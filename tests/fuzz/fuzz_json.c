/* SPDX-License-Identifier: MIT */
/* Fuzz target: the strict JSON parser (src/lib/json_parse.c) and, on the same bytes, the
 * Aperture JSON profile reader, whose output must survive every writer. */
#include <stdint.h>
#include <string.h>

#include "fuzz_profile_util.h"
#include "lib/json_parse.h"

static void walk(const struct ap_json *j)
{
	uint64_t u;
	int64_t i;

	(void)ap_json_u64(j, &u);
	(void)ap_json_i64(j, &i);
	(void)ap_json_type_name(j->type);
	if (j->type == AP_JSON_STRING && strlen(j->str) > j->len)
		abort(); /* the decoded length covers the NUL-terminated text */
	for (size_t k = 0; (j->type == AP_JSON_ARRAY || j->type == AP_JSON_OBJECT) && k < j->len;
	     k++) {
		if (j->type == AP_JSON_OBJECT && ap_json_get(j, j->keys[k]) != &j->items[k])
			abort(); /* keys are unique */
		walk(&j->items[k]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_profile *p;
	struct ap_json *root;
	char err[512];

	root = ap_json_parse((const char *)data, size, err, sizeof(err));
	if (root) {
		walk(root);
		ap_json_free(root);
	}
	p = ap_profile_new();
	if (p && ap_read_json((const char *)data, size, FUZZ_MAX_MEM, p, err, sizeof(err)) == 0)
		fuzz_write_all(p);
	ap_profile_free(p);
	return 0;
}
