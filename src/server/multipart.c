// SPDX-License-Identifier: MIT
/* multipart/form-data parser (RFC 7578, RFC 2046 §5.1): see multipart.h. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "lib/errbuf.h"
#include "multipart.h"

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 2045 token characters (anything printable but specials and space) */
static bool is_tchar(char c)
{
	return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f &&
	       !strchr("()<>@,;:\\\"/[]?=", c);
}

/*
 * Next `; attribute=value` of a header value at *s (up to end). The attribute is lowercased
 * into attr, the value (a token or an unescaped quoted string) into val. Returns 1 with a
 * parameter, 0 at the end, -EINVAL on bad syntax, -E2BIG when a field does not fit.
 */
static int next_param(const char **s, const char *end, char *attr, size_t alen, char *val,
		      size_t vlen)
{
	const char *p = *s;
	size_t n = 0;

	while (p < end && is_ows(*p))
		p++;
	if (p == end)
		return 0;
	if (*p != ';')
		return -EINVAL;
	p++;
	while (p < end && is_ows(*p))
		p++;
	if (p == end) /* a trailing ';' is common and harmless */
		return *s = p, 0;
	while (p < end && is_tchar(*p)) {
		if (n + 1 >= alen)
			return -E2BIG;
		attr[n++] = (char)tolower((unsigned char)*p++);
	}
	attr[n] = '\0';
	while (p < end && is_ows(*p))
		p++;
	if (!n || p == end || *p != '=')
		return -EINVAL;
	p++;
	while (p < end && is_ows(*p))
		p++;
	n = 0;
	if (p < end && *p == '"') {
		for (p++;; p++) {
			if (p == end)
				return -EINVAL; /* unterminated */
			if (*p == '"')
				break;
			if (*p == '\\' && p + 1 < end)
				p++;
			if (n + 1 >= vlen)
				return -E2BIG;
			val[n++] = *p;
		}
		p++;
	} else {
		while (p < end && is_tchar(*p)) {
			if (n + 1 >= vlen)
				return -E2BIG;
			val[n++] = *p++;
		}
		if (!n)
			return -EINVAL;
	}
	val[n] = '\0';
	*s = p;
	return 1;
}

int ap_mp_boundary(const char *ct, char *out, size_t outlen, char *err, size_t errlen)
{
	static const char type[] = "multipart/form-data";
	const char *p, *end;
	char attr[32], val[AP_MP_MAX_BOUNDARY + 2];
	bool found = false;
	int rc;

	if (!ct)
		return -ENOENT;
	for (p = ct; is_ows(*p); p++)
		;
	end = p + strlen(p);
	if (strncasecmp(p, type, sizeof(type) - 1) != 0 ||
	    (p[sizeof(type) - 1] && p[sizeof(type) - 1] != ';' && !is_ows(p[sizeof(type) - 1])))
		return -ENOENT;
	p += sizeof(type) - 1;
	while ((rc = next_param(&p, end, attr, sizeof(attr), val, sizeof(val))) == 1) {
		if (strcmp(attr, "boundary") != 0)
			continue;
		if (found)
			return ap_errf(err, errlen, -EINVAL,
				       "Content-Type: two boundary parameters");
		found = true;
		if (!val[0] || strlen(val) > AP_MP_MAX_BOUNDARY || strlen(val) >= outlen)
			return ap_errf(err, errlen, -EINVAL,
				       "Content-Type: the multipart boundary must be 1-%d characters",
				       AP_MP_MAX_BOUNDARY);
		strcpy(out, val);
	}
	if (rc == -E2BIG && strcmp(attr, "boundary") == 0)
		return ap_errf(err, errlen, -EINVAL,
			       "Content-Type: the multipart boundary is longer than %d characters",
			       AP_MP_MAX_BOUNDARY);
	if (rc < 0)
		return ap_errf(err, errlen, -EINVAL,
			       "Content-Type: malformed parameters at character %zu of \"%.80s\"",
			       (size_t)(p - ct) + 1, ct);
	if (!found)
		return ap_errf(err, errlen, -EINVAL,
			       "Content-Type multipart/form-data without a boundary parameter");
	return 0;
}

/* Content-Disposition: form-data; name="..."; filename="..." */
static int parse_disposition(const char *v, const char *end, struct ap_mp_part *part,
			     size_t off, char *err, size_t errlen)
{
	const char *p = v;
	char attr[32], val[AP_MP_MAX_FILENAME + 1];
	bool has_name = false, has_file = false;
	int rc;

	while (p < end && is_tchar(*p))
		p++;
	if (p - v != 9 || strncasecmp(v, "form-data", 9) != 0)
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu: Content-Disposition is \"%.*s\", "
			       "expected form-data",
			       off, (int)(p - v > 40 ? 40 : p - v), v);
	while ((rc = next_param(&p, end, attr, sizeof(attr), val, sizeof(val))) == 1) {
		if (strcmp(attr, "name") == 0) {
			if (has_name)
				return ap_errf(err, errlen, -EINVAL,
					       "multipart: part at byte %zu: two name parameters",
					       off);
			if (strlen(val) > AP_MP_MAX_NAME)
				return ap_errf(err, errlen, -EINVAL,
					       "multipart: part at byte %zu: field name longer "
					       "than %d bytes",
					       off, AP_MP_MAX_NAME);
			strcpy(part->name, val);
			has_name = true;
		} else if (strcmp(attr, "filename") == 0) {
			if (has_file)
				return ap_errf(err, errlen, -EINVAL,
					       "multipart: part at byte %zu: two filename "
					       "parameters",
					       off);
			strcpy(part->filename, val);
			has_file = true;
		}
	}
	if (rc < 0)
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu: malformed Content-Disposition "
			       "parameters%s",
			       off, rc == -E2BIG ? " (a value is too long)" : "");
	if (!has_name || !part->name[0])
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu: Content-Disposition has no name", off);
	return 0;
}

/* One header line [p, end) (no line break) of the part starting at off. */
static int parse_header(const char *p, const char *end, struct ap_mp_part *part, bool *has_cd,
			size_t off, char *err, size_t errlen)
{
	const char *colon = memchr(p, ':', (size_t)(end - p)), *v;
	size_t n;

	if (is_ows(*p))
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu: folded header lines are not "
			       "supported",
			       off);
	if (!colon || colon == p)
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu: header line without a name and ':'",
			       off);
	for (const char *c = p; c < colon; c++)
		if (!is_tchar(*c))
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: bad character in a header "
				       "name",
				       off);
	for (v = colon + 1; v < end && is_ows(*v); v++)
		;
	while (end > v && is_ows(end[-1]))
		end--;
	n = (size_t)(colon - p);
	if (n == 19 && strncasecmp(p, "content-disposition", 19) == 0) {
		if (*has_cd)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: two Content-Disposition "
				       "headers",
				       off);
		*has_cd = true;
		return parse_disposition(v, end, part, off, err, errlen);
	}
	if (n == 12 && strncasecmp(p, "content-type", 12) == 0) {
		if ((size_t)(end - v) > AP_MP_MAX_CTYPE)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: Content-Type longer than %d "
				       "bytes",
				       off, AP_MP_MAX_CTYPE);
		memcpy(part->content_type, v, (size_t)(end - v));
		part->content_type[end - v] = '\0';
	}
	/* other headers (Content-Transfer-Encoding, which RFC 7578 deprecates, ...) carry
	 * nothing a form of ours needs */
	return 0;
}

/* The headers of the part starting at *pos, up to and including the empty line. */
static int parse_headers(const uint8_t *body, size_t len, size_t *pos, struct ap_mp_part *part,
			 char *err, size_t errlen)
{
	size_t off = *pos, p = *pos, nlines = 0;
	bool has_cd = false;
	int rc;

	for (;;) {
		const uint8_t *lf = memchr(body + p, '\n', len - p);
		size_t end;

		if (!lf)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: headers not terminated by an "
				       "empty line (truncated body?)",
				       off);
		end = (size_t)(lf - body);
		if (end - p > AP_MP_MAX_HEADER_LINE)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: header line at byte %zu longer "
				       "than %d bytes",
				       off, p, AP_MP_MAX_HEADER_LINE);
		if (end > p && body[end - 1] == '\r')
			end--;
		if (end == p) {
			*pos = (size_t)(lf - body) + 1;
			break;
		}
		if (memchr(body + p, '\0', end - p))
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: NUL byte in a header line",
				       off);
		if (++nlines > AP_MP_MAX_HEADERS)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part at byte %zu: more than %d header lines", off,
				       AP_MP_MAX_HEADERS);
		rc = parse_header((const char *)body + p, (const char *)body + end, part, &has_cd,
				  off, err, errlen);
		if (rc)
			return rc;
		p = (size_t)(lf - body) + 1;
	}
	if (!has_cd)
		return ap_errf(err, errlen, -EINVAL,
			       "multipart: part at byte %zu has no Content-Disposition header", off);
	return 0;
}

/*
 * Whether the bytes at p (after a "--boundary") end a delimiter line: "--" (the close
 * delimiter), or transport padding and a line break, or the end of the body (reported as
 * truncated by the caller). Anything else makes the line part data, as Go's reader has it.
 */
static bool delimiter_end(const uint8_t *body, size_t len, size_t p)
{
	if (len - p >= 2 && body[p] == '-' && body[p + 1] == '-')
		return true;
	while (p < len && is_ows((char)body[p]))
		p++;
	if (p < len && body[p] == '\r')
		p++;
	return p >= len || body[p] == '\n';
}

/* The next delimiter "\n--boundary" at or after `from` that ends its line, or NULL. */
static const uint8_t *find_delimiter(const uint8_t *body, size_t len, size_t from,
				     const char *needle, size_t nlen)
{
	while (from < len) {
		const uint8_t *d = memmem(body + from, len - from, needle, nlen);

		if (!d)
			return NULL;
		if (delimiter_end(body, len, (size_t)(d - body) + nlen))
			return d;
		from = (size_t)(d - body) + 1;
	}
	return NULL;
}

int ap_mp_parse(const uint8_t *body, size_t len, const char *boundary, struct ap_mp_part *parts,
		size_t max, size_t *n, char *err, size_t errlen)
{
	/* "\n--" boundary: a delimiter starts a line (its CR, if any, is stripped below) */
	char needle[AP_MP_MAX_BOUNDARY + 4];
	size_t blen = boundary ? strlen(boundary) : 0, nlen, pos;
	const uint8_t *d;
	int rc;

	*n = 0;
	if (!blen || blen > AP_MP_MAX_BOUNDARY)
		return ap_errf(err, errlen, -EINVAL, "multipart: bad boundary");
	needle[0] = '\n';
	needle[1] = needle[2] = '-';
	memcpy(needle + 3, boundary, blen);
	nlen = blen + 3;

	/* the first delimiter: at the very start, or after a preamble */
	if (len >= nlen - 1 && memcmp(body, needle + 1, nlen - 1) == 0 &&
	    delimiter_end(body, len, nlen - 1)) {
		pos = nlen - 1;
	} else {
		d = find_delimiter(body, len, 0, needle, nlen);
		if (!d)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: the body (%zu bytes) holds no delimiter line "
				       "\"--%.*s\"",
				       len, (int)(blen > 40 ? 40 : blen), boundary);
		pos = (size_t)(d - body) + nlen;
	}
	for (;;) {
		struct ap_mp_part *part;
		size_t start, dend;

		/* after a delimiter: "--" closes the body, else padding and a line break */
		if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-')
			return 0; /* the epilogue is ignored (RFC 2046) */
		while (pos < len && is_ows((char)body[pos]))
			pos++;
		if (pos < len && body[pos] == '\r')
			pos++;
		if (pos >= len)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: body ends at byte %zu without the close "
				       "delimiter \"--%.*s--\" (truncated?)",
				       len, (int)(blen > 40 ? 40 : blen), boundary);
		pos++; /* the '\n' delimiter_end() found */
		if (*n == max)
			return ap_errf(err, errlen, -E2BIG, "multipart: more than %zu parts", max);
		part = &parts[*n];
		memset(part, 0, sizeof(*part));
		start = pos;
		rc = parse_headers(body, len, &pos, part, err, errlen);
		if (rc)
			return rc;
		/* the line break ending the empty line may also start the delimiter (an empty
		 * part written without its own CRLF), hence pos - 1 */
		d = find_delimiter(body, len, pos - 1, needle, nlen);
		if (!d)
			return ap_errf(err, errlen, -EINVAL,
				       "multipart: part \"%s\" at byte %zu is not ended by a "
				       "delimiter (truncated body?)",
				       part->name, start);
		dend = (size_t)(d - body);
		if (dend > pos && body[dend - 1] == '\r')
			dend--;
		part->data = body + pos;
		part->len = dend > pos ? dend - pos : 0;
		part->offset = pos;
		(*n)++;
		pos = (size_t)(d - body) + nlen;
	}
}

const struct ap_mp_part *ap_mp_find(const struct ap_mp_part *parts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(parts[i].name, name) == 0)
			return &parts[i];
	return NULL;
}
