/* SPDX-License-Identifier: MIT */
/* Fuzz target: `aperture filter run --events FILE` decoding, JSON event objects -> filter ABI
 * records (src/cli/filter_events.c). */
#include <stdint.h>
#include <string.h>

#include "cli/filter_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_json *root = ap_json_parse((const char *)data, size, NULL, 0);
	struct ap_cli_event_names names;
	struct ap_filter_event ev;
	char err[512];

	if (!root)
		return 0;
	if (root->type == AP_JSON_ARRAY) {
		for (size_t i = 0; i < root->len; i++) {
			memset(&ev, 0, sizeof(ev));
			(void)ap_cli_event_from_json(&root->items[i], &ev, &names, err,
						     sizeof(err));
		}
	} else {
		memset(&ev, 0, sizeof(ev));
		(void)ap_cli_event_from_json(root, &ev, &names, err, sizeof(err));
	}
	ap_json_free(root);
	return 0;
}
