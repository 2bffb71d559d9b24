/* SPDX-License-Identifier: MIT */
/*
 * Request fixtures for the ingest tests: tests/data/pyroscope/NAME.req holds the request
 * target (path?query) on its first line and then the headers, one "name: value" a line;
 * NAME.body the exact body bytes (both written by tests/data/pyroscope/capture.py from real
 * clients). Query parameters are URL-decoded as an HTTP server would.
 */
#ifndef TEST_INGEST_UTIL_H
#define TEST_INGEST_UTIL_H

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/ingest.h"

#define FIX_MAX_ARGS 32

struct fixture {
	struct ap_http_arg args[FIX_MAX_ARGS];
	char *names[FIX_MAX_ARGS], *values[FIX_MAX_ARGS];
	char *path;
	char *content_type, *content_encoding, *tenant, *authorization;
	uint8_t *body;
	size_t len;
	struct ap_ingest_req req;
};

static inline uint8_t *fix_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf) {
			buf[n] = 0;
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static inline int fix_hex(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10);
}

/* URL-decode [s, s+n) into a new string ('+' is a space in a query). */
static inline char *fix_urldecode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *d = o;

	for (size_t i = 0; o && i < n; i++) {
		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			*d++ = (char)(fix_hex(s[i + 1]) * 16 + fix_hex(s[i + 2]));
			i += 2;
		} else {
			*d++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	if (o)
		*d = '\0';
	return o;
}

/* Split a query string into f->args. */
static inline void fix_set_query(struct fixture *f, const char *q)
{
	while (q && *q && f->req.nargs < FIX_MAX_ARGS) {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		const char *eq = memchr(q, '=', (size_t)(end - q));
		size_t i = f->req.nargs++;

		f->names[i] = fix_urldecode(q, (size_t)((eq ? eq : end) - q));
		f->values[i] = eq ? fix_urldecode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
		f->args[i].name = f->names[i];
		f->args[i].value = f->values[i];
		q = amp ? amp + 1 : NULL;
	}
}

/* Load tests/data/NAME.{req,body} (NAME = "pyroscope/go_0"); returns 0 or -1. */
static inline int fix_load(struct fixture *f, const char *name)
{
	char path[512], *req, *line, *save = NULL, *q;
	size_t rlen;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/%s.req", AP_TEST_DATA_DIR, name);
	req = (char *)fix_read_file(path, &rlen);
	if (!req)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.body", AP_TEST_DATA_DIR, name);
	f->body = fix_read_file(path, &f->len);
	if (!f->body) {
		free(req);
		return -1;
	}
	f->req.args = f->args;
	line = strtok_r(req, "\n", &save);
	f->path = strdup(line ? line : "");
	q = strchr(f->path, '?');
	if (q)
		*q++ = '\0';
	fix_set_query(f, q);
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *c = strchr(line, ':'), *v;

		if (!c)
			continue;
		*c = '\0';
		for (v = c + 1; *v == ' '; v++)
			;
		if (!strcasecmp(line, "content-type"))
			f->content_type = strdup(v);
		else if (!strcasecmp(line, "content-encoding"))
			f->content_encoding = strdup(v);
		else if (!strcasecmp(line, "x-scope-orgid"))
			f->tenant = strdup(v);
		else if (!strcasecmp(line, "authorization"))
			f->authorization = strdup(v);
	}
	free(req);
	f->req.content_type = f->content_type;
	f->req.content_encoding = f->content_encoding;
	f->req.tenant = f->tenant;
	f->req.body = f->body;
	f->req.len = f->len;
	f->req.now_ns = 1796574800ull * 1000000000ull;
	f->req.max_inflated = 64 << 20;
	return 0;
}

static inline void fix_free(struct fixture *f)
{
	for (size_t i = 0; i < f->req.nargs; i++) {
		free(f->names[i]);
		free(f->values[i]);
	}
	free(f->path);
	free(f->content_type);
	free(f->content_encoding);
	free(f->tenant);
	free(f->authorization);
	free(f->body);
}

/* The value of a decoded push's label, or NULL. */
static inline const char *fix_label(const struct ap_ingest *in, const char *name)
{
	for (size_t i = 0; i < in->nlabels; i++)
		if (!strcmp(in->labels[i].name, name))
			return in->labels[i].value;
	return NULL;
}

/* Whether a frame whose name holds `name` is in the profile (@datadog/pprof names a JS
 * function "FILE:NAME:LINE"). */
static inline bool fix_has_frame(const struct ap_profile *p, const char *name)
{
	for (size_t i = 0; i < ap_profile_nframes(p); i++)
		if (strstr(ap_profile_str(p, ap_profile_frame(p, (uint32_t)i)->name), name))
			return true;
	return false;
}

/* Whether some sample has the string label key=value. */
static inline bool fix_has_sample_label(const struct ap_profile *p, const char *key,
					const char *value)
{
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		size_t n;
		const struct ap_label *l = ap_profile_labels(p, ap_profile_sample(p, i)->labels, &n);

		for (size_t j = 0; j < n; j++)
			if (!strcmp(ap_profile_str(p, l[j].key), key) &&
			    !strcmp(ap_profile_str(p, l[j].str), value))
				return true;
	}
	return false;
}

/* Index of the value type `type`, asserting it exists. */
static inline const char *fix_vtype(const struct ap_profile *p, size_t i)
{
	return ap_profile_str(p, ap_profile_value_type(p, i)->type);
}

#endif
