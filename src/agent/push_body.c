// SPDX-License-Identifier: MIT
/* One push's request: its id, query string and multipart body (docs/api.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "push.h"

int ap_push_random_id(char *buf)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[AP_PUSH_ID_LEN / 2];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		buf[2 * i] = hex[r[i] >> 4];
		buf[2 * i + 1] = hex[r[i] & 15];
	}
	buf[AP_PUSH_ID_LEN] = '\0';
	return 0;
}

int ap_push_url_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';

		if (o + (plain ? 1 : 3) >= len)
			return -ENOSPC;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= len)
		return -ENOSPC;
	out[o] = '\0';
	return 0;
}

void ap_push_free(struct ap_push *p)
{
	if (!p)
		return;
	free(p->query);
	free(p->body);
	free(p);
}

/* A growable string. */
struct buf {
	char *s;
	size_t n, cap;
	bool failed;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *s;

		while (cap < b->n + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->failed = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->n, data, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void query_label(struct buf *q, const char *name, const char *value)
{
	char pair[AP_PUSH_LABEL_PAIR_MAX], enc[3 * AP_PUSH_LABEL_PAIR_MAX + 1];

	snprintf(pair, sizeof(pair), "%s=%s", name, value);
	if (ap_push_url_encode(pair, enc, sizeof(enc))) {
		q->failed = true;
		return;
	}
	puts_(q, "&label=");
	puts_(q, enc);
}

static void part(struct buf *b, const char *boundary, const char *name, const char *filename,
		 const char *type, const void *data, size_t len)
{
	puts_(b, "--");
	puts_(b, boundary);
	puts_(b, "\r\nContent-Disposition: form-data; name=\"");
	puts_(b, name);
	puts_(b, "\"");
	if (filename) {
		puts_(b, "; filename=\"");
		puts_(b, filename);
		puts_(b, "\"");
	}
	puts_(b, "\r\nContent-Type: ");
	puts_(b, type);
	puts_(b, "\r\n\r\n");
	put(b, data, len);
	puts_(b, "\r\n");
}

/* Whether the boundary occurs in one of the parts (then another is drawn). */
static bool boundary_clash(const char *boundary, const struct ap_push_parts *parts)
{
	size_t n = strlen(boundary);

	return memmem(parts->profile, parts->profile_len, boundary, n) ||
	       (parts->tables && memmem(parts->tables, parts->tables_len, boundary, n)) ||
	       (parts->agent && memmem(parts->agent, parts->agent_len, boundary, n));
}

int ap_push_build(struct ap_push **out, const char *mode, uint64_t from_ns, uint64_t until_ns,
		  const struct ap_push_label *labels, size_t nlabels,
		  const struct ap_push_parts *parts)
{
	struct ap_push *p = calloc(1, sizeof(*p));
	struct buf q = {0}, b = {0};
	char boundary[64], num[64];
	int err = -ENOMEM;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	err = ap_push_random_id(p->id);
	for (int tries = 0; !err; tries++) {
		char rnd[AP_PUSH_ID_LEN + 1];

		err = ap_push_random_id(rnd);
		snprintf(boundary, sizeof(boundary), "aperture-%s", rnd);
		if (err || !boundary_clash(boundary, parts))
			break;
		if (tries == 8)
			err = -EIO;
	}
	if (err)
		goto fail;
	snprintf(p->mode, sizeof(p->mode), "%s", mode);
	snprintf(p->content_type, sizeof(p->content_type), "multipart/form-data; boundary=%s",
		 boundary);

	puts_(&q, "push_id=");
	puts_(&q, p->id);
	snprintf(num, sizeof(num), "&from=%llu&until=%llu", (unsigned long long)from_ns,
		 (unsigned long long)until_ns);
	puts_(&q, num);
	for (size_t i = 0; i < nlabels; i++)
		query_label(&q, labels[i].name, labels[i].value);
	query_label(&q, "mode", mode);

	part(&b, boundary, "profile", "profile.pb.gz", "application/octet-stream", parts->profile,
	     parts->profile_len);
	if (parts->tables)
		part(&b, boundary, "tables", "tables.json", "application/json", parts->tables,
		     parts->tables_len);
	if (parts->agent)
		part(&b, boundary, "agent", NULL, "application/json", parts->agent,
		     parts->agent_len);
	puts_(&b, "--");
	puts_(&b, boundary);
	puts_(&b, "--\r\n");
	if (q.failed || b.failed) {
		err = -ENOMEM;
		goto fail;
	}
	p->query = q.s;
	p->body = b.s;
	p->body_len = b.n;
	*out = p;
	return 0;
fail:
	free(q.s);
	free(b.s);
	free(p);
	return err;
}
