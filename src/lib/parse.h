/* SPDX-License-Identifier: MIT */
/* Strict number parsing: the whole string must be consumed, ranges are checked. */
#ifndef AP_PARSE_H
#define AP_PARSE_H

#include <stdint.h>

/* Decimal unsigned integer in [min, max]. Returns 0, -EINVAL (not a number) or -ERANGE. */
int ap_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Duration with an optional unit suffix: ns, us, ms, s, m, h (no suffix means seconds).
 * "1.5s" and "250ms" are accepted. Must be > 0. Returns 0, -EINVAL or -ERANGE. */
int ap_parse_duration_ns(const char *s, uint64_t *out_ns);

/* A size in bytes: a number with an optional binary unit, K/M/G (also KiB/MiB/GiB, any
 * case; no unit: bytes), in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int ap_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* A process id that fits pid_t and is > 0. */
int ap_parse_pid(const char *s, int *out);

/* Format a duration for humans into buf: three significant digits and the unit, no space
 * ("999ns", "1.50us", "12.3ms", "120s"), the one style of every report. Returns buf. */
const char *ap_format_duration(uint64_t ns, char *buf, unsigned long len);

#endif
