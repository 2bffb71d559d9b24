// SPDX-License-Identifier: MIT
/*
 * Tokens: one for ingest, one for reads, each from a file. A request carries one as
 * "Authorization: Bearer TOKEN" or as the password of HTTP Basic (what Pyroscope clients with
 * basicAuthPassword send). Compared in constant time against both tokens (so that the time
 * tells nothing about either) and never logged.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/errbuf.h"
#include "server_internal.h"

int ap_server_read_token(const char *path, char **out, char *err, size_t errlen)
{
	char buf[AP_SERVER_MAX_TOKEN + 2];
	struct stat st;
	ssize_t n;
	size_t len, start = 0;
	int fd, ret = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ap_errf(err, errlen, -errno, "cannot read token file %s: %s", path,
			       strerror(errno));
	if (fstat(fd, &st)) {
		ret = ap_errf(err, errlen, -errno, "cannot stat token file %s: %s", path,
			      strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = ap_errf(err, errlen, -EINVAL, "token file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		/* anyone who may write it may choose the token */
		ret = ap_errf(err, errlen, -EPERM,
			      "token file %s is writable by group or others (mode %03o): "
			      "chmod go-w %s",
			      path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = ap_errf(err, errlen, -errno, "cannot read token file %s: %s", path,
			      strerror(errno));
		goto out;
	}
	buf[n] = 0;
	len = strcspn(buf, "\n");
	if (len > AP_SERVER_MAX_TOKEN) {
		ret = ap_errf(err, errlen, -EINVAL,
			      "token file %s: the token (its first line) is over %d bytes", path,
			      AP_SERVER_MAX_TOKEN);
		goto out;
	}
	buf[len] = 0;
	while (len && isspace((unsigned char)buf[len - 1]))
		buf[--len] = 0;
	while (start < len && isspace((unsigned char)buf[start]))
		start++;
	if (start == len) {
		ret = ap_errf(err, errlen, -EINVAL,
			      "token file %s is empty: its first line must hold the token", path);
		goto out;
	}
	for (size_t i = start; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			ret = ap_errf(err, errlen, -EINVAL,
				      "token file %s: the token has a control character", path);
			goto out;
		}
	*out = strdup(buf + start);
	if (!*out)
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ret;
}

/* Equal, in time that depends on the lengths only. */
static bool token_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	unsigned char d = (unsigned char)(alen != blen);

	for (size_t i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[blen ? i % blen : 0]);
	return d == 0;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode base64 into out (NUL-terminated); -1 when malformed or too long. */
static ssize_t b64decode(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;

	for (; *in && *in != '='; in++) {
		int v = b64val((unsigned char)*in);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = 0;
	return (ssize_t)n;
}

unsigned ap_server_auth_check(struct ap_server *s, struct MHD_Connection *conn,
			      enum ap_route_kind kind, char *msg, size_t msglen)
{
	const char *need = kind == AP_ROUTE_INGEST ? s->ingest_token
			   : kind == AP_ROUTE_READ ? s->read_token
						   : NULL;
	const char *other = kind == AP_ROUTE_INGEST ? s->read_token : s->ingest_token;
	const char *side = kind == AP_ROUTE_INGEST ? "ingest" : "read";
	char dec[AP_SERVER_MAX_TOKEN * 2 + 8];
	const char *h, *tok;
	size_t toklen;
	bool own, theirs;

	if (kind == AP_ROUTE_OPEN || !need)
		return 0;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h) {
		snprintf(msg, msglen,
			 "this route needs the %s token: send 'Authorization: Bearer TOKEN' "
			 "(or HTTP Basic with the token as the password)",
			 side);
		return MHD_HTTP_UNAUTHORIZED;
	}
	while (*h == ' ')
		h++;
	if (!strncasecmp(h, "Bearer ", 7)) {
		tok = h + 7;
		while (*tok == ' ')
			tok++;
		toklen = strlen(tok);
		while (toklen && tok[toklen - 1] == ' ')
			toklen--;
	} else if (!strncasecmp(h, "Basic ", 6)) {
		const char *p = h + 6;
		char *colon;
		ssize_t n;

		while (*p == ' ')
			p++;
		n = b64decode(p, dec, sizeof(dec));
		colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
		if (!colon) {
			explicit_bzero(dec, sizeof(dec));
			snprintf(msg, msglen,
				 "malformed Basic credentials: expected base64 of USER:TOKEN");
			return MHD_HTTP_UNAUTHORIZED;
		}
		tok = colon + 1;
		toklen = (size_t)n - (size_t)(tok - dec);
	} else {
		snprintf(msg, msglen,
			 "unsupported Authorization scheme: use Bearer TOKEN or Basic");
		return MHD_HTTP_UNAUTHORIZED;
	}
	/* both comparisons always run */
	own = token_eq(tok, toklen, need);
	theirs = other ? token_eq(tok, toklen, other) : false;
	explicit_bzero(dec, sizeof(dec));
	if (own)
		return 0;
	if (theirs) {
		snprintf(msg, msglen, "this route needs the %s token, and the %s token was sent",
			 side, kind == AP_ROUTE_INGEST ? "read" : "ingest");
		return MHD_HTTP_FORBIDDEN;
	}
	snprintf(msg, msglen, "unknown token: this route needs the %s token", side);
	return MHD_HTTP_UNAUTHORIZED;
}
