/* SPDX-License-Identifier: MIT */
/*
 * multipart/form-data (RFC 7578 over RFC 2046): the boundary from a Content-Type header and
 * the parts of a body. Pure functions of bytes: part data points into the caller's body (no
 * copies), and the few header fields a form needs (name, filename, Content-Type) are copied
 * into fixed buffers. Every size is bounded: parts, header lines, headers per part.
 */
#ifndef AP_MULTIPART_H
#define AP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define AP_MP_MAX_BOUNDARY 70	 /* RFC 2046 §5.1.1 */
#define AP_MP_MAX_PARTS 16	 /* a form of ours or Pyroscope's has at most 4 */
#define AP_MP_MAX_HEADER_LINE 1024
#define AP_MP_MAX_HEADERS 16	 /* header lines per part */
#define AP_MP_MAX_NAME 128	 /* form field name */
#define AP_MP_MAX_FILENAME 256
#define AP_MP_MAX_CTYPE 128

struct ap_mp_part {
	char name[AP_MP_MAX_NAME + 1];		/* Content-Disposition name= */
	char filename[AP_MP_MAX_FILENAME + 1];	/* filename=, "" when absent */
	char content_type[AP_MP_MAX_CTYPE + 1]; /* "" when absent */
	const uint8_t *data;			/* into the body */
	size_t len;
	size_t offset; /* of data in the body, for messages */
};

/*
 * The boundary of a Content-Type such as `multipart/form-data; boundary="x y"` (media type
 * and parameter names case-insensitive, the value a token or a quoted string). Returns 0,
 * -ENOENT when the type is not multipart/form-data, or -EINVAL (no or bad boundary) with the
 * reason in err.
 */
int ap_mp_boundary(const char *content_type, char *out, size_t outlen, char *err,
		   size_t errlen);

/*
 * Split `body` into at most `max` parts (*n set). The preamble before the first delimiter and
 * the epilogue after the close delimiter are ignored; lines may end in CRLF or, leniently, in
 * LF. Every part needs a Content-Disposition of type form-data with a name. Returns 0,
 * -EINVAL (malformed: reason and byte offset in err) or -E2BIG (more than max parts).
 */
int ap_mp_parse(const uint8_t *body, size_t len, const char *boundary, struct ap_mp_part *parts,
		size_t max, size_t *n, char *err, size_t errlen);

/* The first part named `name`, or NULL. */
const struct ap_mp_part *ap_mp_find(const struct ap_mp_part *parts, size_t n, const char *name);

#endif
