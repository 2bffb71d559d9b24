// SPDX-License-Identifier: MIT
/* Times and durations in queries and flags (docs/api.md "Time"). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/parse.h"
#include "server.h"

#define NS 1000000000ULL

int ap_server_parse_duration(const char *s, uint64_t *out_ns)
{
	size_t n = s ? strlen(s) : 0;
	char buf[64];
	uint64_t h;
	int rc;

	if (n < 2 || s[n - 1] != 'd')
		return ap_parse_duration_ns(s, out_ns);
	/* days: the same number in hours, times 24 ("1.5d" = "1.5h" x 24) */
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n - 1);
	buf[n - 1] = 'h';
	buf[n] = 0;
	rc = ap_parse_duration_ns(buf, &h);
	if (rc)
		return rc;
	if (h > UINT64_MAX / 24)
		return -ERANGE;
	*out_ns = h * 24;
	return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't'/' ' for 'T' and 'z' too. */
static int parse_rfc3339(const char *s, uint64_t *out)
{
	struct tm tm = {0};
	const char *p = s;
	uint64_t frac = 0, fdiv = 1;
	int64_t off = 0, secs;
	int v[6], widths[6] = {4, 2, 2, 2, 2, 2};
	const char seps[6] = {'-', '-', 'T', ':', ':', 0};

	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < widths[i]; k++, p++) {
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			v[i] = v[i] * 10 + (*p - '0');
		}
		if (seps[i]) {
			if (seps[i] == 'T' ? (*p != 'T' && *p != 't' && *p != ' ') : *p != seps[i])
				return -EINVAL;
			p++;
		}
	}
	if (*p == '.' || *p == ',') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			if (fdiv < NS) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fdiv *= 10;
			}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm;

		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
		    !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
			return -EINVAL;
		hh = (p[1] - '0') * 10 + (p[2] - '0');
		mm = (p[4] - '0') * 10 + (p[5] - '0');
		if (hh > 23 || mm > 59)
			return -EINVAL;
		off = sign * (hh * 3600 + mm * 60);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -EINVAL;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	secs = (int64_t)timegm(&tm) - off;
	if (secs < 0)
		return -EINVAL;
	while (fdiv < NS) {
		frac *= 10;
		fdiv *= 10;
	}
	*out = (uint64_t)secs * NS + frac;
	return 0;
}

int ap_server_parse_time(const char *s, uint64_t now_ns, uint64_t *out_ns)
{
	size_t n;

	if (!s || !*s)
		return -EINVAL;
	if (!strncmp(s, "now", 3)) {
		uint64_t d;

		if (!s[3]) {
			*out_ns = now_ns;
			return 0;
		}
		if ((s[3] != '-' && s[3] != '+') || ap_server_parse_duration(s + 4, &d))
			return -EINVAL;
		if (s[3] == '-')
			*out_ns = d > now_ns ? 0 : now_ns - d;
		else
			*out_ns = now_ns + d < now_ns ? UINT64_MAX : now_ns + d;
		return 0;
	}
	n = strspn(s, "0123456789");
	if (n && !s[n]) {
		uint64_t v = 0, mult;

		if (n > 19)
			return -EINVAL;
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (uint64_t)(s[i] - '0');
		/* the digit count picks the unit, as Pyroscope does */
		mult = n <= 10 ? NS : n <= 13 ? 1000000 : n <= 16 ? 1000 : 1;
		if (v > UINT64_MAX / mult)
			return -EINVAL;
		*out_ns = v * mult;
		return 0;
	}
	return parse_rfc3339(s, out_ns);
}
