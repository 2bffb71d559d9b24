/* SPDX-License-Identifier: MIT */
/*
 * Shared by the ingest fuzz targets: the input is a whole request,
 *     QUERY "\n" CONTENT-TYPE "\n" TENANT "\n" BODY
 * (missing lines are empty; an empty content type or tenant is absent), and a decoded push
 * must satisfy the storage's rules whatever the input was.
 */
#ifndef AP_FUZZ_INGEST_UTIL_H
#define AP_FUZZ_INGEST_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_profile_util.h"
#include "server/ingest.h"

#define FUZZ_MAX_ARGS 64

struct fuzz_req {
	struct ap_ingest_req req;
	struct ap_http_arg args[FUZZ_MAX_ARGS];
	char *strs; /* every NUL-terminated string the request points to */
};

static int fuzz_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
					      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* URL-decode [s, s+n) into d (n + 1 bytes); returns d. */
static char *fuzz_urldecode(const char *s, size_t n, char *d)
{
	char *o = d;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && fuzz_hex(s[i + 1]) >= 0 && fuzz_hex(s[i + 2]) >= 0) {
			*o++ = (char)(fuzz_hex(s[i + 1]) * 16 + fuzz_hex(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return d;
}

/* Split the input; returns 0 or -1 (allocation failure). */
static int fuzz_req_init(struct fuzz_req *f, const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *line[3];
	size_t len[3], qn;
	char *s;

	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 3; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		line[i] = p;
		len[i] = nl ? (size_t)(nl - p) : (size_t)(end - p);
		p = nl ? nl + 1 : end;
	}
	/* the query's decoded strings, the content type and the tenant: at most 2 x input */
	f->strs = s = malloc(2 * size + 8);
	if (!s)
		return -1;
	for (const char *q = line[0], *qe = line[0] + len[0]; q < qe && f->req.nargs < FUZZ_MAX_ARGS;) {
		const char *amp = memchr(q, '&', (size_t)(qe - q)), *ae = amp ? amp : qe;
		const char *eq = memchr(q, '=', (size_t)(ae - q));

		qn = (size_t)((eq ? eq : ae) - q);
		f->args[f->req.nargs].name = fuzz_urldecode(q, qn, s);
		s += qn + 1;
		qn = eq ? (size_t)(ae - eq - 1) : 0;
		f->args[f->req.nargs].value = fuzz_urldecode(eq ? eq + 1 : q, qn, s);
		s += qn + 1;
		f->req.nargs++;
		q = amp ? amp + 1 : qe;
	}
	for (int i = 1; i < 3; i++) {
		memcpy(s, line[i], len[i]);
		s[len[i]] = '\0';
		if (i == 1)
			f->req.content_type = len[i] ? s : NULL;
		else
			f->req.tenant = len[i] ? s : NULL;
		s += len[i] + 1;
	}
	f->req.args = f->args;
	f->req.body = (const uint8_t *)p;
	f->req.len = (size_t)(end - p);
	f->req.now_ns = 1796574800ull * 1000000000ull;
	f->req.max_inflated = FUZZ_MAX_MEM;
	return 0;
}

static int fuzz_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > AP_STORE_MAX_LABEL_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '.')))
			return 0;
	}
	return 1;
}

/* What a decoder returned: the storage's rules hold, the write mirrors it, the profile
 * survives every writer. */
static void fuzz_check_ingest(int rc, struct ap_ingest *in, const char *err)
{
	struct ap_store_write w;
	int mode = 0;

	if ((rc == -EINVAL || rc == -EFBIG) && !err[0])
		abort(); /* a refusal always says why */
	if (rc) {
		if (in->profile || in->flat || in->labels || in->rows || in->agent || in->push_id)
			abort(); /* a failed decode leaves nothing behind */
		return;
	}
	if (in->nlabels > AP_STORE_MAX_LABELS || in->until_ns < in->from_ns)
		abort();
	for (size_t i = 0; i < in->nlabels; i++) {
		if (!fuzz_name_ok(in->labels[i].name) || !in->labels[i].value[0] ||
		    strlen(in->labels[i].value) > AP_STORE_MAX_LABEL_VALUE)
			abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(in->labels[i].name, in->labels[j].name))
				abort();
		mode |= !strcmp(in->labels[i].name, "mode");
	}
	if (!mode)
		abort();
	for (size_t i = 0; i < in->nrows; i++)
		if (!in->rows[i].table || !in->rows[i].key)
			abort();
	ap_ingest_to_write(in, &w);
	if (w.nlabels != in->nlabels || w.profile != in->profile || w.flat != in->flat ||
	    w.nrows != in->nrows)
		abort();
	if (in->profile)
		fuzz_write_all(in->profile);
}

#endif
