// SPDX-License-Identifier: MIT
/*
 * Ingest: Aperture's own push (POST /api/v1/push, docs/api.md) and the helpers every decoder
 * shares. Pure functions of the request's bytes; the server answers 400 for -EINVAL, 413 for
 * -EFBIG, with err as the message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format/format.h"
#include "ingest_internal.h"
#include "lib/errbuf.h"
#include "lib/label_name.h"
#include "lib/parse.h"
#include "multipart.h"

#define fail(...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)
#define STR_(x) #x
#define STR(x) STR_(x)

char *ap_ing_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

const char *ap_ing_arg(const struct ap_ingest_req *r, const char *name)
{
	for (size_t i = 0; i < r->nargs; i++)
		if (r->args[i].name && strcmp(r->args[i].name, name) == 0)
			return r->args[i].value ? r->args[i].value : "";
	return NULL;
}

bool ap_ing_label_name_ok(const char *s, size_t n)
{
	return ap_label_name_valid(s, n, AP_STORE_MAX_LABEL_NAME);
}

/* Why a label value is refused, or NULL. */
static const char *value_problem(const char *v, size_t n)
{
	if (!n)
		return "is empty";
	if (n > AP_STORE_MAX_LABEL_VALUE)
		return "is longer than " STR(AP_STORE_MAX_LABEL_VALUE) " bytes";
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)v[i];
		size_t l;

		if (c < 0x20 || c == 0x7f)
			return "holds a control character";
		l = ap_utf8_seq_len(v + i, n - i);
		if (!l)
			return "is not valid UTF-8";
		i += l;
	}
	return NULL;
}

const char *ap_ing_label(const struct ap_ingest *in, const char *name)
{
	for (size_t i = 0; i < in->nlabels; i++)
		if (strcmp(in->labels[i].name, name) == 0)
			return in->labels[i].value;
	return NULL;
}

int ap_ing_add_label(struct ap_ingest *out, const char *name, size_t nlen, const char *value,
		     size_t vlen, const char *where, char *err, size_t errlen)
{
	struct ap_label_kv *l;
	const char *why;
	char *k, *v;

	if (!ap_ing_label_name_ok(name, nlen))
		return fail("%s: label name \"%.*s\" is not valid: names are 1-%d characters of "
			    "[A-Za-z_][A-Za-z0-9_.]*",
			    where, (int)(nlen > 80 ? 80 : nlen), name, AP_STORE_MAX_LABEL_NAME);
	if ((why = value_problem(value, vlen)))
		return fail("%s: the value of label %.*s %s", where, (int)nlen, name, why);
	for (size_t i = 0; i < out->nlabels; i++)
		if (strlen(out->labels[i].name) == nlen &&
		    memcmp(out->labels[i].name, name, nlen) == 0)
			return fail("%s: label %.*s is given twice", where, (int)nlen, name);
	if (out->nlabels >= AP_STORE_MAX_LABELS)
		return fail("%s: more than %d labels", where, AP_STORE_MAX_LABELS);
	l = realloc(out->labels, (out->nlabels + 1) * sizeof(*l));
	if (!l)
		return -ENOMEM;
	out->labels = l;
	k = ap_ing_strndup(name, nlen);
	v = ap_ing_strndup(value, vlen);
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	l[out->nlabels].name = k;
	l[out->nlabels].value = v;
	out->nlabels++;
	return 0;
}

static uint32_t le32(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* An honest gzip trailer over the limit is a bomb: 413 without inflating a byte. (The reader
 * calls it corrupt data, as a file reader should; here it is a size refusal.) */
static int bomb_check(const uint8_t *data, size_t len, uint64_t max_inflated, const char *where,
		      char *err, size_t errlen)
{
	char a[32], b[32];

	if (len >= 18 && data[0] == 0x1f && data[1] == 0x8b &&
	    le32(data + len - 4) > max_inflated)
		return ap_errf(err, errlen, -EFBIG,
			       "%s: the gzip data says it inflates to %s, over the aggregator's "
			       "limit of %s",
			       where, ap_format_size(le32(data + len - 4), a, sizeof(a)),
			       ap_format_size(max_inflated, b, sizeof(b)));
	return 0;
}

/* The reader's result as the ingest answers it. */
static int read_result(int rc, const char *why, uint64_t max_inflated, const char *where,
		       char *err, size_t errlen)
{
	char b[32];

	if (rc == -EFBIG)
		/* the reader's advice (aperture report --max-size) is for files */
		return ap_errf(err, errlen, -EFBIG,
			       "%s: the pprof data inflates beyond the aggregator's limit of %s",
			       where, ap_format_size(max_inflated, b, sizeof(b)));
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return fail("%s: %s", where, why[0] ? why : "not a valid pprof profile");
	return 0;
}

int ap_ing_read_pprof(const uint8_t *data, size_t len, uint64_t max_inflated, const char *where,
		      struct ap_ingest *out, char *err, size_t errlen)
{
	char why[512];
	int rc;

	if (!max_inflated)
		max_inflated = AP_FORMAT_MAX_INFLATED;
	if ((rc = bomb_check(data, len, max_inflated, where, err, errlen)))
		return rc;
	out->profile = ap_profile_new();
	if (!out->profile)
		return -ENOMEM;
	why[0] = '\0';
	rc = ap_read_pprof_limited(data, len, max_inflated, out->profile, why, sizeof(why));
	return read_result(rc, why, max_inflated, where, err, errlen);
}

int ap_ing_read_pprof_flat(struct ap_flat_ctx *c, const uint8_t *data, size_t len,
			   uint64_t max_inflated, const char *where, struct ap_ingest *out,
			   char *err, size_t errlen)
{
	char why[512];
	int rc;

	if (!max_inflated)
		max_inflated = AP_FORMAT_MAX_INFLATED;
	if ((rc = bomb_check(data, len, max_inflated, where, err, errlen)))
		return rc;
	why[0] = '\0';
	rc = ap_pprof_flat_decode(c, data, len, max_inflated, &out->flat, why, sizeof(why));
	return read_result(rc, why, max_inflated, where, err, errlen);
}

/* One per-sample label against the push's labels and the storage's rules. */
static int check_label(const struct ap_ingest *in, size_t i, const char *k, const char *v,
		       char *err, size_t errlen)
{
	if (!ap_ing_label_name_ok(k, strlen(k)))
		return fail("pprof sample %zu: label name \"%.80s\" is not valid: "
			    "names are 1-%d characters of [A-Za-z_][A-Za-z0-9_.]*",
			    i, k, AP_STORE_MAX_LABEL_NAME);
	if (ap_ing_label(in, k) || !strcmp(k, "pid") || !strcmp(k, "comm"))
		return fail("pprof sample %zu: label %s is also a label of the "
			    "whole push (or pid/comm); a series can hold it once",
			    i, k);
	if (v && strlen(v) > AP_STORE_MAX_LABEL_VALUE)
		return fail("pprof sample %zu: the value of label %s is longer "
			    "than %d bytes",
			    i, k, AP_STORE_MAX_LABEL_VALUE);
	return 0;
}

static int check_count(const struct ap_ingest *in, size_t i, size_t n, const char *comm,
		       char *err, size_t errlen)
{
	if (strlen(comm) > AP_STORE_MAX_LABEL_VALUE)
		return fail("pprof sample %zu: comm is longer than %d bytes", i,
			    AP_STORE_MAX_LABEL_VALUE);
	if (in->nlabels + n + 2 > AP_STORE_MAX_LABELS) /* + pid and comm, which it may have */
		return fail("pprof sample %zu: %zu push labels, pid, comm and %zu sample "
			    "labels make more than the %d labels a series may have",
			    i, in->nlabels, n, AP_STORE_MAX_LABELS);
	return 0;
}

static int check_flat(const struct ap_ingest *in, char *err, size_t errlen)
{
	const struct ap_flat_profile *p = in->flat;
	int rc;

	for (size_t i = 0; i < p->nsamples; i++) {
		const struct ap_flat_sample *s = &p->samples[i];
		const struct ap_flat_label *l = s->nlabels ? &p->labels[s->labels] : NULL;

		if ((rc = check_count(in, i, s->nlabels, p->strs[s->comm], err, errlen)))
			return rc;
		for (size_t j = 0; j < s->nlabels; j++)
			if ((rc = check_label(in, i, p->strs[l[j].key],
					      l[j].str ? p->strs[l[j].str] : NULL, err, errlen)))
				return rc;
	}
	return 0;
}

int ap_ing_check_profile(const struct ap_ingest *in, char *err, size_t errlen)
{
	const struct ap_profile *p = in->profile;
	uint32_t last = UINT32_MAX;
	int rc;

	if (in->flat)
		return check_flat(in, err, errlen);
	if (!p)
		return 0;
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		const struct ap_label *l;
		size_t n;

		if ((rc = check_count(in, i, 0, ap_profile_str(p, s->comm), err, errlen)))
			return rc;
		if (s->labels == last)
			continue;
		last = s->labels;
		l = ap_profile_labels(p, s->labels, &n);
		if ((rc = check_count(in, i, n, "", err, errlen)))
			return rc;
		for (size_t j = 0; j < n; j++)
			if ((rc = check_label(in, i, ap_profile_str(p, l[j].key),
					      l[j].str ? ap_profile_str(p, l[j].str) : NULL, err,
					      errlen)))
				return rc;
	}
	return 0;
}

static int parse_ns(const char *name, const char *v, uint64_t *out, char *err, size_t errlen)
{
	if (!v)
		return fail("push: query parameter %s is missing (ns since the epoch)", name);
	/* pprof holds times as int64 ns (until the year 2262) */
	if (ap_parse_u64(v, 0, INT64_MAX, out))
		return fail("push: query parameter %s=\"%.40s\" is not a decimal count of ns "
			    "since the epoch (before the year 2262)",
			    name, v);
	return 0;
}

static int push_args(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
		     size_t errlen)
{
	const char *id = ap_ing_arg(r, "push_id");
	size_t nlabel = 0, n;
	int rc;

	if (!id || !*id)
		return fail("push: query parameter push_id is missing (1-%d of [A-Za-z0-9_-], "
			    "unique per push)",
			    AP_STORE_MAX_PUSH_ID);
	n = strlen(id);
	if (n > AP_STORE_MAX_PUSH_ID || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
						   "STUVWXYZ0123456789_-") != n)
		return fail("push: push_id \"%.80s\" is not 1-%d of [A-Za-z0-9_-]", id,
			    AP_STORE_MAX_PUSH_ID);
	out->push_id = strdup(id);
	if (!out->push_id)
		return -ENOMEM;
	if ((rc = parse_ns("from", ap_ing_arg(r, "from"), &out->from_ns, err, errlen)) ||
	    (rc = parse_ns("until", ap_ing_arg(r, "until"), &out->until_ns, err, errlen)))
		return rc;
	if (out->until_ns < out->from_ns)
		return fail("push: until (%llu) is before from (%llu)",
			    (unsigned long long)out->until_ns, (unsigned long long)out->from_ns);
	for (size_t i = 0; i < r->nargs; i++) {
		const char *v = r->args[i].value ? r->args[i].value : "", *eq;
		char where[64];

		if (!r->args[i].name || strcmp(r->args[i].name, "label") != 0)
			continue;
		nlabel++;
		snprintf(where, sizeof(where), "push: query parameter label #%zu", nlabel);
		eq = strchr(v, '=');
		if (!eq)
			return fail("%s (\"%.80s\") is not NAME=VALUE", where, v);
		rc = ap_ing_add_label(out, v, (size_t)(eq - v), eq + 1, strlen(eq + 1), where, err,
				      errlen);
		if (rc)
			return rc;
	}
	if (!ap_ing_label(out, "mode"))
		return fail("push: no label mode (add label=mode%%3Dcpu, or the push's mode)");
	return 0;
}

int ap_ingest_decode_push(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
			  size_t errlen)
{
	struct ap_mp_part parts[AP_MP_MAX_PARTS];
	const struct ap_mp_part *profile = NULL, *tables = NULL, *agent = NULL;
	char boundary[AP_MP_MAX_BOUNDARY + 1];
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	rc = push_args(r, out, err, errlen);
	if (rc)
		goto out;
	if (r->content_encoding && *r->content_encoding &&
	    strcasecmp(r->content_encoding, "identity") != 0) {
		rc = fail("push: Content-Encoding %.40s is not accepted: send the form as is (its "
			  "profile part is gzipped already)",
			  r->content_encoding);
		goto out;
	}
	rc = ap_mp_boundary(r->content_type, boundary, sizeof(boundary), err, errlen);
	if (rc == -ENOENT) {
		rc = fail("push: Content-Type is \"%.80s\"; the push body must be "
			  "multipart/form-data with the parts profile, tables, agent",
			  r->content_type ? r->content_type : "(none)");
		goto out;
	}
	if (rc)
		goto out;
	rc = ap_mp_parse(r->body, r->len, boundary, parts, AP_MP_MAX_PARTS, &n, err, errlen);
	if (rc) {
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ap_mp_part **slot = !strcmp(parts[i].name, "profile") ? &profile
						 : !strcmp(parts[i].name, "tables") ? &tables
						 : !strcmp(parts[i].name, "agent")  ? &agent
										    : NULL;

		if (!slot) {
			rc = fail("push: unknown form part \"%s\" at byte %zu (the parts are "
				  "profile, tables, agent)",
				  parts[i].name, parts[i].offset);
			goto out;
		}
		if (*slot) {
			rc = fail("push: form part %s is given twice", parts[i].name);
			goto out;
		}
		*slot = &parts[i];
	}
	if (!profile && !tables) {
		rc = fail("push: the form has neither a profile nor a tables part");
		goto out;
	}
	if (profile) {
		rc = r->flat_ctx ? ap_ing_read_pprof_flat(r->flat_ctx, profile->data, profile->len,
							  r->max_inflated, "push: part profile",
							  out, err, errlen)
				 : ap_ing_read_pprof(profile->data, profile->len, r->max_inflated,
						     "push: part profile", out, err, errlen);
		if (!rc)
			rc = ap_ing_check_profile(out, err, errlen);
		if (rc)
			goto out;
	}
	if (tables) {
		rc = ap_ing_decode_tables(ap_ing_label(out, "mode"), tables->data, tables->len,
					  out, err, errlen);
		if (rc)
			goto out;
	}
	if (agent)
		rc = ap_ing_decode_agent(agent->data, agent->len, out, err, errlen);
out:
	if (rc)
		ap_ingest_free(out);
	return rc;
}

void ap_ingest_free(struct ap_ingest *in)
{
	if (!in)
		return;
	free(in->push_id);
	for (size_t i = 0; i < in->nlabels; i++) {
		free((char *)in->labels[i].name);
		free((char *)in->labels[i].value);
	}
	free(in->labels);
	ap_profile_free(in->profile);
	for (size_t i = 0; i < in->nrows; i++) {
		free((char *)in->rows[i].table);
		free((char *)in->rows[i].key);
		free((char *)in->rows[i].comm);
	}
	free(in->rows);
	for (size_t i = 0; i < in->nagent; i++)
		free(in->agent[i].name);
	free(in->agent);
	memset(in, 0, sizeof(*in));
}

void ap_ingest_to_write(const struct ap_ingest *in, struct ap_store_write *w)
{
	memset(w, 0, sizeof(*w));
	w->push_id = in->push_id;
	w->labels = in->labels;
	w->nlabels = in->nlabels;
	w->from_ns = in->from_ns;
	w->until_ns = in->until_ns;
	w->profile = in->profile;
	w->flat = in->flat;
	w->rows = in->rows;
	w->nrows = in->nrows;
}
