// SPDX-License-Identifier: MIT
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The leading decimal digits of s into *v; *end after them. 0, -EINVAL or -ERANGE. */
static int parse_digits(const char *s, unsigned long long *v, char **end)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

int ap_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int err = parse_digits(s, &v, &end);

	if (err)
		return err;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int ap_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;
	int err = parse_digits(s, &v, &end);

	if (err)
		return err;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (tolower((unsigned char)end[0]) == 'i' && tolower((unsigned char)end[1]) == 'b')
			end += 2;
		if (*end)
			return -EINVAL;
		if (v > (UINT64_MAX >> shift))
			return -ERANGE;
		v <<= shift;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int ap_parse_pid(const char *s, int *out)
{
	uint64_t v;
	int err = ap_parse_u64(s, 1, INT_MAX, &v);

	if (err)
		return err;
	*out = (int)v;
	return 0;
}

static const struct {
	const char *suffix;
	uint64_t ns;
} duration_units[] = {
	{ "ns", 1ULL },
	{ "us", 1000ULL },
	{ "ms", 1000000ULL },
	{ "s", 1000000000ULL },
	{ "m", 60ULL * 1000000000ULL },
	{ "min", 60ULL * 1000000000ULL },
	{ "h", 3600ULL * 1000000000ULL },
};

int ap_parse_duration_ns(const char *s, uint64_t *out_ns)
{
	uint64_t whole = 0, frac = 0, frac_scale = 1, unit = 1000000000ULL;
	const char *p = s;
	size_t i;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_scale < 1000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_scale *= 10;
			}
		}
	}
	if (*p) {
		for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
			if (strcmp(p, duration_units[i].suffix) == 0)
				break;
		if (i == sizeof(duration_units) / sizeof(duration_units[0]))
			return -EINVAL;
		unit = duration_units[i].ns;
	}
	if (whole > UINT64_MAX / unit)
		return -ERANGE;
	whole *= unit;
	/* Units are powers of ten times 1, 60 or 3600, so one of the divisions is exact. */
	frac = unit >= frac_scale ? frac * (unit / frac_scale) : frac * unit / frac_scale;
	if (whole > UINT64_MAX - frac)
		return -ERANGE;
	whole += frac;
	if (whole == 0)
		return -ERANGE;
	*out_ns = whole;
	return 0;
}

const char *ap_format_duration(uint64_t ns, char *buf, unsigned long len)
{
	static const struct {
		double div;
		const char *unit;
	} units[] = { { 1e9, "s" }, { 1e6, "ms" }, { 1e3, "us" } };

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		double v = (double)ns / units[i].div;

		if (v < 0.9995) /* 999.96us reads better as 1.00ms than as 1000us */
			continue;
		/* three significant digits: a column of them lines up, and more is noise */
		if (v >= 99.95)
			snprintf(buf, len, "%.0f%s", v, units[i].unit);
		else if (v >= 9.995)
			snprintf(buf, len, "%.1f%s", v, units[i].unit);
		else
			snprintf(buf, len, "%.2f%s", v, units[i].unit);
		return buf;
	}
	snprintf(buf, len, "%lluns", (unsigned long long)ns);
	return buf;
}
