/* SPDX-License-Identifier: MIT */
/* The one rule for label names, shared by the agent's --label, the aggregator's decoders, its
 * selectors and its store: [A-Za-z_][A-Za-z0-9_.]* (Prometheus' names plus dots, which
 * Pyroscope and OpenTelemetry clients use: `otel.scope.name`). Header-only. */
#ifndef AP_LABEL_NAME_H
#define AP_LABEL_NAME_H

#include <stdbool.h>
#include <stddef.h>

static inline bool ap_label_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool ap_label_name_char(char c)
{
	return ap_label_name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* s[0..n) is a label name of 1 to max bytes. */
static inline bool ap_label_name_valid(const char *s, size_t n, size_t max)
{
	if (!n || n > max || !ap_label_name_start(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!ap_label_name_char(s[i]))
			return false;
	return true;
}

#endif
