/* SPDX-License-Identifier: MIT */
/* Recorded filter events in JSON (docs/filters.md, "Testing filters") -> filter ABI records. */
#ifndef AP_CLI_FILTER_EVENTS_H
#define AP_CLI_FILTER_EVENTS_H

#include <stddef.h>

#include "aperture/filter_abi.h"
#include "lib/json_parse.h"

/* Names given with the frames, for env.frame_symbol/frame_module (NULL: unknown). They
 * point into the JSON tree. */
struct ap_cli_event_names {
	const char *symbol[AP_FILTER_MAX_FRAMES];
	const char *module[AP_FILTER_MAX_FRAMES];
};

/* Fill ev and names from one event object. Unknown keys are errors. Returns 0 or -EINVAL
 * with a reason in err. */
int ap_cli_event_from_json(const struct ap_json *j, struct ap_filter_event *ev,
			   struct ap_cli_event_names *names, char *err, size_t errlen);

/* Name of an event type ("syscall"), or "?" */
const char *ap_cli_event_type_name(uint32_t type);

#endif
