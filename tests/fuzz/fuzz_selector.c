/* SPDX-License-Identifier: MIT */
/* Fuzz target: label selectors (src/storage/selector.c), parsed from URL text, then matched
 * against label sets with and without the labels they name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ap_label_kv a[] = { { "mode", "cpu" }, { "host", "db1" },
						{ "comm", "postgres" }, { "pid", "42" } };
	static const struct ap_label_kv b[] = { { "service.name", "" }, { "x", "\n\"\\" } };
	struct ap_selector s;
	char err[256], *text;

	if (size > 128 * 1024)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0; /* the parser reads C strings: an embedded NUL ends the text */
	if (ap_selector_parse(text, &s, err, sizeof(err)) == 0) {
		ap_selector_match(&s, a, 4);
		ap_selector_match(&s, b, 2);
		ap_selector_match(&s, NULL, 0);
		ap_selector_mode(&s);
		ap_selector_free(&s);
	} else if (s.m || s.n || !err[0]) {
		abort(); /* a refusal leaves nothing allocated and says why */
	}
	free(text);
	return 0;
}
