/* SPDX-License-Identifier: MIT */
/* Library code returns -errno and, where a human needs the reason, writes it into a buffer
 * its caller owns: one helper for that. Header-only, so that the standalone filter library
 * can use it too. */
#ifndef AP_ERRBUF_H
#define AP_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Format the reason into err (nothing when err is NULL or errlen 0) and return ret, so that
 * `return ap_errf(err, errlen, -EINVAL, "bad %s", what);` reports and fails at once. */
static inline int __attribute__((format(printf, 4, 5)))
ap_errf(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

#endif
