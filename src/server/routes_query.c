// SPDX-License-Identifier: MIT
/*
 * Query routes (docs/api.md "Queries"): parse the selector and the time range, ask storage,
 * write with the format module. A query that selects several modes without naming one is
 * refused with the list, since adding CPU samples to lock delays means nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/diff.h"
#include "format/format.h"
#include "lib/hist.h"
#include "lib/parse.h"
#include "server_internal.h"

#define NS 1000000000ULL
#define MAX_POINTS 11000	 /* series points per query (Prometheus's limit) */
#define DEFAULT_POINTS 200	 /* series points when no step is given */
#define MIN_STEP_NS (10ULL * NS) /* the storage's finest resolution */
#define MAX_DEBUG_SECONDS (366ULL * 86400)

struct qctx {
	struct ap_selector sel;
	bool have_sel;
	struct ap_store_query q;
	char mode[128]; /* the one mode selected, "" when none matched */
};

static void qctx_free(struct qctx *c)
{
	if (c->have_sel)
		ap_selector_free(&c->sel);
	c->have_sel = false;
}

static enum MHD_Result store_error(struct ap_req *r, int rc, const char *err)
{
	if (rc == -EINVAL)
		return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0, "%s",
				       err[0] ? err : "storage refused the query");
	if (rc == -ENOMEM)
		return ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				       "out of memory answering the query");
	return ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_STORAGE, 5,
			       "storage failed: %s", err[0] ? err : strerror(-rc));
}

/*
 * Parse `qname`, `fname`, `uname` (selector, from, until), each defaulting to the base's
 * (when base is given) or to "", now-1h, now. Returns 0, or -1 with the answer queued.
 */
static int parse_query_def(struct ap_req *r, const char *qname, const char *fname,
			   const char *uname, const struct qctx *base, const char *def_query,
			   uint64_t now, struct qctx *c, enum MHD_Result *ret)
{
	const char *qs = ap_server_arg(r, qname), *fs = ap_server_arg(r, fname),
		   *us = ap_server_arg(r, uname);
	char err[256] = "";

	memset(c, 0, sizeof(*c));
	if (!qs)
		qs = base ? ap_server_arg(r, "query") : def_query;
	if (!qs)
		qs = "";
	if (ap_selector_parse(qs, &c->sel, err, sizeof(err))) {
		*ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "bad %s '%.200s': %s (the form is "
				       "{mode=\"cpu\",comm=~\"post.*\"})",
				       qname, qs, err);
		return -1;
	}
	c->have_sel = true;
	c->q.sel = &c->sel;
	if (fs) {
		if (ap_server_parse_time(fs, now, &c->q.from_ns))
			goto bad_time;
	} else {
		c->q.from_ns = base ? base->q.from_ns : now - 3600 * NS;
	}
	if (us) {
		if (ap_server_parse_time(us, now, &c->q.until_ns)) {
			fs = us;
			fname = uname;
			goto bad_time;
		}
	} else {
		c->q.until_ns = base ? base->q.until_ns : now;
	}
	if (c->q.from_ns >= c->q.until_ns) {
		*ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "empty time range: %s must be before %s", fname, uname);
		qctx_free(c);
		return -1;
	}
	return 0;
bad_time:
	*ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
			       "bad %s '%.64s': use now, now-1h (s, m, h, d), RFC 3339 "
			       "(2026-12-06T14:00:00Z) or unix time (s, ms, us or ns by digit "
			       "count)",
			       fname, fs);
	qctx_free(c);
	return -1;
}

static int parse_query(struct ap_req *r, const char *qname, const char *fname, const char *uname,
		       const struct qctx *base, uint64_t now, struct qctx *c, enum MHD_Result *ret)
{
	return parse_query_def(r, qname, fname, uname, base, "", now, c, ret);
}

/* Refuse a selector that matches several modes; remember the mode. 0 or -1 (answered). */
static int single_mode(struct ap_req *r, struct qctx *c, const char *qname, enum MHD_Result *ret)
{
	struct ap_store *s = r->srv->store;
	struct ap_store_strings modes = {0};
	const char *m = ap_selector_mode(&c->sel);
	char err[256] = "", list[512] = "";
	int rc;

	if (m) {
		snprintf(c->mode, sizeof(c->mode), "%s", m);
		return 0;
	}
	rc = s->ops->modes(s, &c->q, &modes, err, sizeof(err));
	if (rc) {
		*ret = store_error(r, rc, err);
		return -1;
	}
	if (modes.n == 1)
		snprintf(c->mode, sizeof(c->mode), "%s", modes.v[0]);
	if (modes.n > 1) {
		size_t off = 0;

		for (size_t i = 0; i < modes.n && off < sizeof(list) - 1; i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
						i ? ", " : "", modes.v[i]);
		*ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "%s selects several modes (%s): name one, e.g. "
				       "{mode=\"%s\",...}",
				       qname, list, modes.v[0]);
		ap_store_strings_free(&modes);
		return -1;
	}
	ap_store_strings_free(&modes);
	return 0;
}

static int merge(struct ap_req *r, struct qctx *c, struct ap_profile **out, enum MHD_Result *ret)
{
	struct ap_store *s = r->srv->store;
	char err[256] = "";
	int rc = s->ops->merge(s, &c->q, out, err, sizeof(err));

	if (rc) {
		*out = NULL;
		*ret = store_error(r, rc, err);
		return -1;
	}
	return 0;
}

/* An unsigned query parameter in [min, max], or def when absent. 0 or -1 (answered). */
static int arg_u64(struct ap_req *r, const char *name, uint64_t min, uint64_t max, uint64_t def,
		   uint64_t *out, enum MHD_Result *ret)
{
	const char *v = ap_server_arg(r, name);

	*out = def;
	if (!v)
		return 0;
	if (ap_parse_u64(v, min, max, out)) {
		*ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "bad %s '%.32s': expected a number in %llu..%llu", name, v,
				       (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	return 0;
}

static void value_type_list(const struct ap_profile *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (size_t i = 0; i < ap_profile_nvalues(p) && off < len - 1; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
					ap_profile_str(p, ap_profile_value_type(p, i)->type));
	if (!buf[0])
		snprintf(buf, len, "none: no data in this range");
}

static const char *format_ctype(enum ap_format f)
{
	switch (f) {
	case AP_FORMAT_SVG:
		return "image/svg+xml";
	case AP_FORMAT_JSON:
		return "application/json";
	case AP_FORMAT_PPROF:
		return "application/octet-stream";
	default:
		return "text/plain; charset=utf-8";
	}
}

/* The merged profile in a format: /api/v1/profile and /debug/pprof/profile. */
static enum MHD_Result profile(struct ap_req *r, struct qctx *c, enum ap_format fmt)
{
	struct ap_write_opts wo = {.value_index = -1};
	struct ap_profile *p = NULL;
	enum MHD_Result ret;
	const char *value = ap_server_arg(r, "value");
	uint64_t top;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (arg_u64(r, "top", 1, 100000, 0, &top, &ret) || single_mode(r, c, "query", &ret) ||
	    merge(r, c, &p, &ret))
		return ret;
	wo.top_n = (size_t)top;
	if (value) {
		int vi = ap_profile_value_index(p, value);

		if (vi < 0) {
			char list[256];

			value_type_list(p, list, sizeof(list));
			ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
					      "no value type '%.64s' in this profile (has: %s)",
					      value, list);
			goto out;
		}
		wo.value_index = vi;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				      "out of memory");
		goto out;
	}
	rc = ap_format_write(p, fmt, f, &wo);
	if (fclose(f) || rc) {
		free(buf);
		ret = ap_server_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, AP_REFUSE_INTERNAL, 0,
				      "cannot write the profile as %s: %s", ap_format_name(fmt),
				      strerror(rc ? -rc : ENOMEM));
		goto out;
	}
	ret = ap_server_reply(r, MHD_HTTP_OK, format_ctype(fmt), buf, len, true);
out:
	ap_profile_free(p);
	return ret;
}

enum MHD_Result ap_server_route_profile(struct ap_req *r)
{
	const char *fs = ap_server_arg(r, "format");
	enum ap_format fmt = AP_FORMAT_PPROF;
	enum MHD_Result ret;
	struct qctx c;

	/* trace: the agent's GPU timeline, not something a stored profile holds */
	if (fs && (ap_format_from_name(fs, &fmt) || fmt == AP_FORMAT_TRACE))
		return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "unknown format '%.32s': use pprof, folded, json, svg or "
				       "text",
				       fs);
	if (parse_query(r, "query", "from", "until", NULL, ap_server_now_ns(), &c, &ret))
		return ret;
	ret = profile(r, &c, fmt);
	qctx_free(&c);
	return ret;
}

enum MHD_Result ap_server_route_pprof(struct ap_req *r)
{
	uint64_t secs, now = ap_server_now_ns();
	enum MHD_Result ret;
	struct qctx c;

	if (arg_u64(r, "seconds", 1, MAX_DEBUG_SECONDS, 60, &secs, &ret))
		return ret;
	/* where `go tool pprof http://HOST:PORT` looks, Go serves its CPU profile: so does this
	 * route when no query is given */
	if (parse_query_def(r, "query", "from", "until", NULL, "{mode=\"cpu\"}", now, &c, &ret))
		return ret;
	c.q.until_ns = now;
	c.q.from_ns = now - secs * NS;
	ret = profile(r, &c, AP_FORMAT_PPROF);
	qctx_free(&c);
	return ret;
}

/* Close f (which writes *buf and *len) and answer with what it holds. */
static enum MHD_Result write_reply(struct ap_req *r, const char *ctype, char **buf, size_t *len,
				   FILE *f, int rc, const char *what)
{
	if (fclose(f) || rc) {
		free(*buf);
		if (rc == -EINVAL)
			return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
					       "cannot write the %s: the value type is in neither "
					       "profile",
					       what);
		return ap_server_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, AP_REFUSE_INTERNAL, 0,
				       "cannot write the %s: %s", what,
				       strerror(rc ? -rc : ENOMEM));
	}
	return ap_server_reply(r, MHD_HTTP_OK, ctype, *buf, *len, true);
}

enum MHD_Result ap_server_route_flamegraph(struct ap_req *r)
{
	struct ap_flamebearer_opts fo = {.value_type = ap_server_arg(r, "value")};
	struct ap_profile *p = NULL;
	enum MHD_Result ret;
	uint64_t max_nodes;
	struct qctx c;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (arg_u64(r, "max_nodes", 1, 1000000, 16384, &max_nodes, &ret))
		return ret;
	fo.max_nodes = (size_t)max_nodes;
	if (parse_query(r, "query", "from", "until", NULL, ap_server_now_ns(), &c, &ret))
		return ret;
	if (single_mode(r, &c, "query", &ret) || merge(r, &c, &p, &ret))
		goto out;
	if (fo.value_type && ap_profile_value_index(p, fo.value_type) < 0) {
		char list[256];

		value_type_list(p, list, sizeof(list));
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				      "no value type '%.64s' in this profile (has: %s)",
				      fo.value_type, list);
		goto out;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				      "out of memory");
		goto out;
	}
	rc = ap_write_flamebearer(p, f, &fo);
	ret = write_reply(r, "application/json", &buf, &len, f, rc, "flamegraph");
out:
	ap_profile_free(p);
	qctx_free(&c);
	return ret;
}

enum MHD_Result ap_server_route_diff(struct ap_req *r)
{
	struct ap_diff_opts dop = {.value_type = ap_server_arg(r, "value"), .normalize = true};
	const char *fs = ap_server_arg(r, "format"), *norm = ap_server_arg(r, "normalize");
	static const char *const ctypes[] = {
	    [AP_DIFF_FLAMEGRAPH] = "application/json",
	    [AP_DIFF_JSON] = "application/json",
	    [AP_DIFF_TEXT] = "text/plain; charset=utf-8",
	    [AP_DIFF_FOLDED] = "text/plain; charset=utf-8",
	    [AP_DIFF_SVG] = "image/svg+xml",
	};
	enum ap_diff_format fmt = AP_DIFF_FLAMEGRAPH;
	struct ap_profile *base = NULL, *cmp = NULL;
	struct qctx b, c;
	enum MHD_Result ret;
	uint64_t now = ap_server_now_ns(), top, max_nodes;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (fs && ap_diff_format_from_name(fs, &fmt))
		return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "unknown diff format '%.32s': use flamegraph, json, text, "
				       "folded or svg",
				       fs);
	if (norm) {
		if (strcmp(norm, "0") && strcmp(norm, "1") && strcmp(norm, "true") &&
		    strcmp(norm, "false"))
			return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
					       "bad normalize '%.16s': use 1 or 0", norm);
		dop.normalize = !strcmp(norm, "1") || !strcmp(norm, "true");
	}
	if (arg_u64(r, "top", 1, 100000, 0, &top, &ret) ||
	    arg_u64(r, "max_nodes", 1, 1000000, 16384, &max_nodes, &ret))
		return ret;
	dop.top_n = (size_t)top;
	dop.max_nodes = (size_t)max_nodes;
	if (parse_query(r, "query", "from", "until", NULL, now, &b, &ret))
		return ret;
	if (parse_query(r, "to_query", "to_from", "to_until", &b, now, &c, &ret)) {
		qctx_free(&b);
		return ret;
	}
	if (single_mode(r, &b, "query", &ret) || single_mode(r, &c, "to_query", &ret))
		goto out;
	if (b.mode[0] && c.mode[0] && strcmp(b.mode, c.mode)) {
		ret = ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				      "query selects mode %s and to_query mode %s: a diff compares "
				      "one mode",
				      b.mode, c.mode);
		goto out;
	}
	if (merge(r, &b, &base, &ret) || merge(r, &c, &cmp, &ret))
		goto out;
	f = open_memstream(&buf, &len);
	if (!f) {
		ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				      "out of memory");
		goto out;
	}
	rc = ap_write_diff(base, cmp, fmt, f, &dop);
	ret = write_reply(r, ctypes[fmt], &buf, &len, f, rc, "diff");
out:
	ap_profile_free(base);
	ap_profile_free(cmp);
	qctx_free(&b);
	qctx_free(&c);
	return ret;
}

static FILE *json_open(struct ap_req *r, char **buf, size_t *len, enum MHD_Result *ret)
{
	FILE *f = open_memstream(buf, len);

	if (!f)
		*ret = ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				       "out of memory");
	return f;
}

/* Close f (which writes *buf and *len) and answer with the JSON it holds. */
static enum MHD_Result json_close(struct ap_req *r, FILE *f, char **buf, size_t *len)
{
	if (fclose(f)) {
		free(*buf);
		return ap_server_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, AP_REFUSE_INTERNAL, 5,
				       "out of memory");
	}
	return ap_server_reply_json(r, MHD_HTTP_OK, *buf, *len);
}

enum MHD_Result ap_server_route_series(struct ap_req *r)
{
	struct ap_store *s = r->srv->store;
	struct ap_store_series se = {0};
	const char *step_s = ap_server_arg(r, "step");
	enum MHD_Result ret;
	uint64_t step, range;
	struct qctx c;
	char err[256] = "", *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (parse_query(r, "query", "from", "until", NULL, ap_server_now_ns(), &c, &ret))
		return ret;
	range = c.q.until_ns - c.q.from_ns;
	if (step_s) {
		if (ap_server_parse_duration(step_s, &step)) {
			ret = ap_server_error(
			    r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
			    "bad step '%.32s': use a duration such as 10s, 1m, 1h", step_s);
			goto out;
		}
	} else {
		step = (range + DEFAULT_POINTS - 1) / DEFAULT_POINTS;
		step = (step + MIN_STEP_NS - 1) / MIN_STEP_NS * MIN_STEP_NS;
	}
	if (step < MIN_STEP_NS)
		step = MIN_STEP_NS;
	if (range / step >= MAX_POINTS) {
		ret =
		    ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				    "step too small for the range: at most %d points; use a "
				    "step of at least %llus",
				    MAX_POINTS, (unsigned long long)(range / MAX_POINTS / NS + 1));
		goto out;
	}
	if (single_mode(r, &c, "query", &ret))
		goto out;
	rc = s->ops->series(s, &c.q, step, &se, err, sizeof(err));
	if (rc) {
		ret = store_error(r, rc, err);
		goto out;
	}
	f = json_open(r, &buf, &len, &ret);
	if (!f)
		goto out;
	fputs("{\"mode\":", f);
	ap_format_json_str(f, se.mode ? se.mode : c.mode);
	fputs(",\"value_types\":[", f);
	for (size_t i = 0; i < se.nvalues; i++) {
		if (i)
			fputc(',', f);
		ap_format_json_str(f, se.value_types[i]);
	}
	fprintf(f, "],\"step_ms\":%llu,\"points\":[",
		(unsigned long long)((se.step_ns ? se.step_ns : step) / 1000000));
	for (size_t i = 0; i < se.npoints; i++) {
		fprintf(f, "%s[%llu", i ? "," : "",
			(unsigned long long)(se.points[i].ts_ns / 1000000));
		for (size_t v = 0; v < se.nvalues; v++)
			fprintf(f, ",%llu", (unsigned long long)se.points[i].values[v]);
		fputc(']', f);
	}
	fputs("]}\n", f);
	ret = json_close(r, f, &buf, &len);
out:
	ap_store_series_free(&se);
	qctx_free(&c);
	return ret;
}

static enum MHD_Result strings_reply(struct ap_req *r, const char *key,
				     const struct ap_store_strings *v)
{
	enum MHD_Result ret;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = json_open(r, &buf, &len, &ret);

	if (!f)
		return ret;
	fprintf(f, "{\"%s\":[", key);
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			fputc(',', f);
		ap_format_json_str(f, v->v[i]);
	}
	fputs("]}\n", f);
	return json_close(r, f, &buf, &len);
}

/* The three list routes: label names, one label's values (name != NULL), modes. */
static enum MHD_Result list_route(struct ap_req *r, const char *key, const char *name)
{
	struct ap_store *s = r->srv->store;
	struct ap_store_strings v = {0};
	enum MHD_Result ret;
	struct qctx c;
	char err[256] = "";
	int rc;

	if (parse_query(r, "query", "from", "until", NULL, ap_server_now_ns(), &c, &ret))
		return ret;
	if (name)
		rc = s->ops->label_values(s, name, &c.q, &v, err, sizeof(err));
	else if (!strcmp(key, "modes"))
		rc = s->ops->modes(s, &c.q, &v, err, sizeof(err));
	else
		rc = s->ops->label_names(s, &c.q, &v, err, sizeof(err));
	ret = rc ? store_error(r, rc, err) : strings_reply(r, key, &v);
	ap_store_strings_free(&v);
	qctx_free(&c);
	return ret;
}

enum MHD_Result ap_server_route_labels(struct ap_req *r)
{
	return list_route(r, "names", NULL);
}

enum MHD_Result ap_server_route_label_values(struct ap_req *r)
{
	const char *name = ap_server_arg(r, "name");

	if (!name || !*name)
		name = ap_server_arg(r, "label"); /* Pyroscope's spelling */
	if (!name || !*name)
		return ap_server_error(r, MHD_HTTP_BAD_REQUEST, AP_REFUSE_BAD_QUERY, 0,
				       "label-values needs name=LABEL (see /api/v1/labels)");
	return list_route(r, "values", name);
}

enum MHD_Result ap_server_route_modes(struct ap_req *r)
{
	return list_route(r, "modes", NULL);
}

/* A quantile of a merged log2 histogram (lib/hist.h), 0 when it is empty. */
static uint64_t quantile(const uint64_t *hist, double q)
{
	return ap_hist_count(hist) ? ap_hist_quantile(hist, q, 0, UINT64_MAX) : 0;
}

/* "syscall_errno" rows of one syscall: "NAME ERRNO" keys. */
static void write_errnos(FILE *f, const struct ap_store_rows *rows, const char *name)
{
	size_t nlen = strlen(name);
	bool first = true;

	fputs(",\"errnos\":{", f);
	for (size_t i = 0; i < rows->n; i++) {
		const struct ap_table_row *e = &rows->rows[i];

		if (strcmp(e->table, "syscall_errno") || strncmp(e->key, name, nlen) ||
		    e->key[nlen] != ' ')
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		ap_format_json_str(f, e->key + nlen + 1);
		fprintf(f, ":%llu", (unsigned long long)e->v[0]);
	}
	fputc('}', f);
}

static void write_holders(FILE *f, const struct ap_store_rows *rows, const char *key)
{
	size_t klen = strlen(key);
	bool first = true;

	fputs(",\"holders\":[", f);
	for (size_t i = 0; i < rows->n; i++) {
		const struct ap_table_row *h = &rows->rows[i];

		if (strcmp(h->table, "lock_holder") || strncmp(h->key, key, klen) ||
		    h->key[klen] != '\t')
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		fputs("{\"comm\":", f);
		ap_format_json_str(f, h->key + klen + 1);
		fprintf(f, ",\"count\":%llu,\"wait_ns\":%llu}", (unsigned long long)h->v[0],
			(unsigned long long)h->v[1]);
	}
	fputc(']', f);
}

/* The GPU mode's rows: kernels ("NAME\tMANGLED" keys), API calls, copies by direction. */
static void write_gpu_tables(FILE *f, const struct ap_store_rows *rows)
{
	static const char *const tables[] = {"gpu_kernel", "gpu_api", "gpu_copy"};
	static const char *const members[] = {"gpu_kernels", "gpu_api", "gpu_copies"};

	for (size_t t = 0; t < 3; t++) {
		bool first = true;

		fprintf(f, ",\"%s\":[", members[t]);
		for (size_t i = 0; i < rows->n; i++) {
			const struct ap_table_row *e = &rows->rows[i];
			const char *tab = strchr(e->key, '\t');
			unsigned long long v[4] = {e->v[0], e->v[1], e->v[2], e->v[3]};

			if (strcmp(e->table, tables[t]))
				continue;
			if (!first)
				fputc(',', f);
			first = false;
			if (t == 0) {
				char *name = strndup(e->key, tab ? (size_t)(tab - e->key)
								 : strlen(e->key));

				fputs("{\"name\":", f);
				ap_format_json_str(f, name ? name : "");
				free(name);
				fputs(",\"mangled\":", f);
				ap_format_json_str(f, tab ? tab + 1 : "");
				fprintf(f, ",\"launches\":%llu,\"errors\":%llu,\"gpu_time_ns\":%llu,"
					   "\"gpu_records\":%llu}",
					v[0], v[1], v[2], v[3]);
			} else if (t == 1) {
				fputs("{\"name\":", f);
				ap_format_json_str(f, e->key);
				fprintf(f, ",\"calls\":%llu,\"errors\":%llu,\"cpu_time_ns\":%llu}",
					v[0], v[1], v[2]);
			} else {
				fputs("{\"direction\":", f);
				ap_format_json_str(f, e->key);
				fprintf(f, ",\"calls\":%llu,\"bytes\":%llu,\"cpu_time_ns\":%llu,"
					   "\"gpu_time_ns\":%llu}",
					v[0], v[1], v[2], v[3]);
			}
		}
		fputc(']', f);
	}
}

static void write_tables(FILE *f, const char *mode, const struct ap_store_rows *rows)
{
	bool first = true;

	fputs("{\"mode\":", f);
	ap_format_json_str(f, mode);
	fputs(",\"syscalls\":[", f);
	for (size_t i = 0; i < rows->n; i++) {
		const struct ap_table_row *e = &rows->rows[i];

		if (strcmp(e->table, "syscall"))
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		fputs("{\"name\":", f);
		ap_format_json_str(f, e->key);
		fprintf(f,
			",\"calls\":%llu,\"errors\":%llu,\"total_ns\":%llu,\"avg_ns\":%llu,"
			"\"p50_ns\":%llu,\"p99_ns\":%llu,\"slow\":%llu",
			(unsigned long long)e->v[0], (unsigned long long)e->v[1],
			(unsigned long long)e->v[2],
			(unsigned long long)(e->v[0] ? e->v[2] / e->v[0] : 0),
			(unsigned long long)quantile(e->hist, 0.5),
			(unsigned long long)quantile(e->hist, 0.99), (unsigned long long)e->v[3]);
		write_errnos(f, rows, e->key);
		fputc('}', f);
	}
	fputs("],\"locks\":[", f);
	first = true;
	for (size_t i = 0; i < rows->n; i++) {
		const struct ap_table_row *e = &rows->rows[i];
		const char *sp;

		if (strcmp(e->table, "lock"))
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		sp = strchr(e->key, ' ');
		fputs("{\"kind\":", f);
		if (sp) {
			fprintf(f, "\"%.*s\"", (int)(sp - e->key), e->key);
			fputs(",\"name\":", f);
			ap_format_json_str(f, sp + 1);
		} else {
			fputs("\"\",\"name\":", f);
			ap_format_json_str(f, e->key);
		}
		fprintf(f, ",\"contentions\":%llu,\"wait_ns\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu",
			(unsigned long long)e->v[0], (unsigned long long)e->v[1],
			(unsigned long long)quantile(e->hist, 0.5),
			(unsigned long long)quantile(e->hist, 0.99));
		write_holders(f, rows, e->key);
		fputc('}', f);
	}
	fputc(']', f);
	write_gpu_tables(f, rows);
	fputs("}\n", f);
}

enum MHD_Result ap_server_route_tables(struct ap_req *r)
{
	struct ap_store *s = r->srv->store;
	struct ap_store_rows rows = {0};
	enum MHD_Result ret;
	struct qctx c;
	char err[256] = "", *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	if (parse_query(r, "query", "from", "until", NULL, ap_server_now_ns(), &c, &ret))
		return ret;
	if (single_mode(r, &c, "query", &ret))
		goto out;
	rc = s->ops->rows(s, &c.q, &rows, err, sizeof(err));
	if (rc) {
		ret = store_error(r, rc, err);
		goto out;
	}
	f = json_open(r, &buf, &len, &ret);
	if (!f)
		goto out;
	write_tables(f, c.mode, &rows);
	ret = json_close(r, f, &buf, &len);
out:
	ap_store_rows_free(&rows);
	qctx_free(&c);
	return ret;
}
