// SPDX-License-Identifier: MIT
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum ap_log_level current_level = AP_LOG_WARN;

void ap_log_set_level(enum ap_log_level level)
{
	current_level = level;
}

enum ap_log_level ap_log_get_level(void)
{
	return current_level;
}

void ap_log(enum ap_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	va_list ap;

	if (level > current_level)
		return;
	fputs(prefix[level], stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
