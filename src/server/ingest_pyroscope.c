// SPDX-License-Identifier: MIT
/*
 * Pyroscope's POST /ingest in every shape its clients use (docs/api.md, "Pyroscope
 * compatibility"; ../shared/notes/aggregator.md §1-2):
 * - format=pprof: the body is a pprof profile, gzipped or not (@pyroscope/nodejs 0.6);
 * - no format and a multipart/form-data body: field `profile` (+ `sample_type_config`),
 *   as pyroscope-go, the Python example and @pyroscope/nodejs 0.4 send it;
 * - format=groups (the default) / folded: `a;b;c 123` per line, root first;
 * - format=lines: `a;b;c` per line, one sample each.
 * Labels: service_name = the app name of name=app{k=v,...}, mode = Pyroscope's profile name
 * for the sample types, the name's own labels as they are, tenant = X-Scope-OrgID.
 */
#define _GNU_SOURCE /* memrchr */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "format/format.h"
#include "ingest_internal.h"
#include "lib/errbuf.h"
#include "lib/json_parse.h"
#include "lib/parse.h"
#include "multipart.h"

#define fail(...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)
#define NS 1000000000ull
#define MAX_NAME_LABELS AP_STORE_MAX_LABELS

/* name=app{k=v,...}: pointers into the (NUL-terminated) argument, lengths trimmed */
struct pname {
	const char *app;
	size_t app_len;
	struct {
		const char *k, *v;
		size_t klen, vlen;
	} l[MAX_NAME_LABELS];
	size_t n;
};

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static int parse_name(const char *name, struct pname *pn, char *err, size_t errlen)
{
	const char *brace = strchr(name, '{'), *p, *end;
	size_t n = strlen(name);

	memset(pn, 0, sizeof(*pn));
	pn->app = name;
	pn->app_len = brace ? (size_t)(brace - name) : n;
	trim(&pn->app, &pn->app_len);
	if (!pn->app_len)
		return fail("pyroscope ingest: name=\"%.80s\" has no application name before "
			    "its labels (expected app or app{key=value,...})",
			    name);
	if (!brace)
		return 0;
	end = name + n;
	while (end > brace && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end - brace < 2 || end[-1] != '}')
		return fail("pyroscope ingest: name=\"%.80s\": the labels do not end with '}'",
			    name);
	end--;
	for (p = brace + 1; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *eq;
		const char *pe = comma ? comma : end;
		const char *k = p, *v;
		size_t klen, vlen;

		eq = memchr(p, '=', (size_t)(pe - p));
		if (!eq) {
			klen = (size_t)(pe - p);
			trim(&k, &klen);
			if (klen) /* "{}" and a trailing ',' hold no pair */
				return fail("pyroscope ingest: name: label \"%.*s\" (at character "
					    "%zu) has no '='",
					    (int)(klen > 60 ? 60 : klen), k, (size_t)(k - name) + 1);
		} else {
			klen = (size_t)(eq - p);
			v = eq + 1;
			vlen = (size_t)(pe - v);
			trim(&k, &klen);
			trim(&v, &vlen);
			if (memchr(v, '{', vlen) || memchr(v, '}', vlen))
				return fail("pyroscope ingest: name: the value of label %.*s holds "
					    "a brace",
					    (int)(klen > 60 ? 60 : klen), k);
			if (pn->n == MAX_NAME_LABELS)
				return fail("pyroscope ingest: name has more than %d labels",
					    MAX_NAME_LABELS);
			pn->l[pn->n].k = k;
			pn->l[pn->n].klen = klen;
			pn->l[pn->n].v = v;
			pn->l[pn->n].vlen = vlen;
			pn->n++;
		}
		p = comma ? comma + 1 : end;
	}
	return 0;
}

/* YYYYMMDD when it is a real date (Pyroscope parses 8 digits with Go's "20060102"). */
static bool parse_date(const char *s, uint64_t *ns)
{
	struct tm tm = {0}, chk;
	time_t t;
	int v = atoi(s);

	tm.tm_year = v / 10000 - 1900;
	tm.tm_mon = v / 100 % 100 - 1;
	tm.tm_mday = v % 100;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1)
		return false;
	t = timegm(&tm);
	if (t < 0 || !gmtime_r(&t, &chk) || chk.tm_mday != tm.tm_mday || chk.tm_mon != tm.tm_mon)
		return false;
	*ns = (uint64_t)t * NS;
	return true;
}

static int parse_time_any(const char *name, const char *v, uint64_t now, uint64_t *out,
			  char *err, size_t errlen);

/*
 * from/until: digits whose count picks the unit (13 ms, 16 µs, 19 ns, 8 a YYYYMMDD date when
 * it is one, any other count seconds), now, or now-N with s/m/h/d.
 */
static int parse_time(const char *name, const char *v, uint64_t now, uint64_t *out, char *err,
		      size_t errlen)
{
	int rc = parse_time_any(name, v, now, out, err, errlen);

	/* pprof holds times as int64 ns: past 2262 is no time a profile was taken */
	if (!rc && *out > INT64_MAX)
		return fail("pyroscope ingest: query parameter %s=\"%.40s\" is after the year 2262",
			    name, v);
	return rc;
}

static int parse_time_any(const char *name, const char *v, uint64_t now, uint64_t *out,
			  char *err, size_t errlen)
{
	size_t n = strlen(v);
	uint64_t x;

	if (!strcmp(v, "now")) {
		*out = now;
		return 0;
	}
	if (!strncmp(v, "now-", 4) && n > 5 && strchr("smhd", v[n - 1])) {
		static const uint64_t mul[] = {['s' - 'a'] = NS, ['m' - 'a'] = 60 * NS,
					       ['h' - 'a'] = 3600 * NS, ['d' - 'a'] = 86400 * NS};
		char num[24];
		uint64_t m = mul[v[n - 1] - 'a'];

		if (n - 5 < sizeof(num)) {
			memcpy(num, v + 4, n - 5);
			num[n - 5] = '\0';
			if (!ap_parse_u64(num, 0, now / m, &x)) {
				*out = now - x * m;
				return 0;
			}
		}
	} else if (n && strspn(v, "0123456789") == n && !ap_parse_u64(v, 0, UINT64_MAX, &x)) {
		if (n == 19) {
			*out = x;
			return 0;
		}
		if (n == 16 || n == 13) {
			*out = x * (n == 16 ? 1000 : 1000000);
			return 0;
		}
		if (n == 8 && parse_date(v, out))
			return 0;
		if (x <= UINT64_MAX / NS) {
			*out = x * NS;
			return 0;
		}
	}
	return fail("pyroscope ingest: query parameter %s=\"%.40s\": expected unix time (the "
		    "digit count picks the unit: 10 s, 13 ms, 16 us, 19 ns; 8 digits YYYYMMDD), "
		    "now or now-1h (s, m, h, d)",
		    name, v);
}

/* ---- profile names (Pyroscope's __name__) ---- */

static bool prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The mode for value-type names, or NULL when no rule applies. */
static const char *mode_of_types(const char *const *types, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(types[i], "wall"))
			return "wall";
	for (size_t i = 0; i < n; i++)
		if (strstr(types[i], "cpu"))
			return "process_cpu";
	for (size_t i = 0; i < n; i++)
		if (prefix(types[i], "alloc_") || prefix(types[i], "inuse_") ||
		    !strcmp(types[i], "space") || !strcmp(types[i], "objects"))
			return "memory";
	for (size_t i = 0; i < n; i++)
		if (prefix(types[i], "mutex_"))
			return "mutex";
	for (size_t i = 0; i < n; i++)
		if (prefix(types[i], "block_"))
			return "block";
	for (size_t i = 0; i < n; i++)
		if (!strcmp(types[i], "goroutine") || !strcmp(types[i], "goroutines"))
			return "goroutines";
	return NULL;
}

/* The mode of a decoded pprof profile: the rules above, else its first sample type that is
 * not "samples" (a Go mutex profile without sample_type_config: "contentions"). */
static int pprof_mode(const struct ap_profile *p, char *buf, size_t len, char *err,
		      size_t errlen)
{
	const char *types[AP_MAX_VALUES];
	size_t n = ap_profile_nvalues(p);
	const char *m;

	if (!n)
		return fail("pyroscope ingest: the pprof profile has no sample types");
	for (size_t i = 0; i < n; i++)
		types[i] = ap_profile_str(p, ap_profile_value_type(p, i)->type);
	m = mode_of_types(types, n);
	for (size_t i = 0; !m && i < n; i++)
		if (strcmp(types[i], "samples") != 0)
			m = types[i];
	if (!m)
		m = types[0];
	if (!ap_ing_label_name_ok(m, strlen(m)))
		return fail("pyroscope ingest: the pprof sample type \"%.60s\" names no profile "
			    "type (expected names such as cpu, wall, alloc_space, mutex_count)",
			    m);
	snprintf(buf, len, "%s", m);
	return 0;
}

/* ---- pprof ---- */

/*
 * sample_type_config: {"TYPE": {"units": U, "display-name": D, "aggregation": A, ...}}.
 * display-name renames the sample type (pyroscope-go names its mutex and block types
 * mutex_count/block_duration this way, which decides the mode). units ("lock_nanoseconds",
 * "objects": Pyroscope's display vocabulary) is checked but the pprof's own unit is kept, as
 * the output formats read it; aggregation, sampled and cumulative change nothing here
 * (deltas are the client's: prev_profile is refused).
 */
static int apply_type_config(struct ap_profile *p, const uint8_t *json, size_t len, char *err,
			     size_t errlen)
{
	struct ap_json *root;
	char why[256];
	int rc = 0;

	root = ap_json_parse_max((const char *)json, len, 4096, why, sizeof(why));
	if (!root)
		return errno == ENOMEM ? -ENOMEM
				       : fail("pyroscope ingest: form field sample_type_config is "
					      "not valid JSON: %s",
					      why);
	if (root->type != AP_JSON_OBJECT) {
		rc = fail("pyroscope ingest: sample_type_config: expected a JSON object");
		goto out;
	}
	for (size_t i = 0; i < ap_profile_nvalues(p); i++) {
		/* the model has no rename; the value types live in the profile's own array, so
		 * writing through the getter's pointer is writing the profile's memory */
		struct ap_value_type *vt = (struct ap_value_type *)ap_profile_value_type(p, i);
		const struct ap_json *c = ap_json_get(root, ap_profile_str(p, vt->type));
		const struct ap_json *dn, *un;

		if (!c)
			continue;
		if (c->type != AP_JSON_OBJECT) {
			rc = fail("pyroscope ingest: sample_type_config.%.40s: expected an object",
				  ap_profile_str(p, vt->type));
			goto out;
		}
		dn = ap_json_get(c, "display-name");
		un = ap_json_get(c, "units");
		if ((dn && dn->type != AP_JSON_STRING) || (un && un->type != AP_JSON_STRING)) {
			rc = fail("pyroscope ingest: sample_type_config.%.40s: display-name and "
				  "units must be strings",
				  ap_profile_str(p, vt->type));
			goto out;
		}
		if (dn && dn->str[0]) {
			uint32_t id = ap_profile_intern(p, dn->str);

			if (id == UINT32_MAX) {
				rc = -ENOMEM;
				goto out;
			}
			vt->type = id;
		}
	}
out:
	ap_json_free(root);
	return rc;
}

static int decode_form(const struct ap_ingest_req *r, const char *boundary, struct ap_ingest *out,
		       char *err, size_t errlen)
{
	struct ap_mp_part parts[AP_MP_MAX_PARTS];
	const struct ap_mp_part *prof, *cfg;
	size_t n;
	int rc;

	rc = ap_mp_parse(r->body, r->len, boundary, parts, AP_MP_MAX_PARTS, &n, err, errlen);
	if (rc)
		return -EINVAL;
	if (ap_mp_find(parts, n, "prev_profile"))
		return fail("pyroscope ingest: unsupported client version: the form has a "
			    "prev_profile field (cumulative profiles sent with their previous "
			    "one); upgrade the client so that it sends deltas");
	prof = ap_mp_find(parts, n, "profile");
	if (!prof)
		return fail("pyroscope ingest: the multipart form has no field \"profile\" (the "
			    "pprof profile)");
	rc = ap_ing_read_pprof(prof->data, prof->len, r->max_inflated,
			       "pyroscope ingest: form field profile", out, err, errlen);
	if (rc)
		return rc;
	cfg = ap_mp_find(parts, n, "sample_type_config");
	if (cfg)
		rc = apply_type_config(out->profile, cfg->data, cfg->len, err, errlen);
	return rc;
}

/* ---- folded (groups) and lines ---- */

/* Value type and period of a text push's type (the app name's last dot component). */
static int text_types(const char *type, const char *units, struct ap_profile *p,
		      uint64_t rate, const char **mode, char *err, size_t errlen)
{
	const char *vt = type, *unit = "count", *m;
	int rc;

	if (!strcmp(type, "cpu") || !strcmp(type, "wall")) {
		m = type[0] == 'c' ? "process_cpu" : "wall";
		vt = "samples";
		ap_profile_set_period(p, type, "nanoseconds", NS / rate);
	} else {
		m = mode_of_types(&type, 1);
		if (!m)
			return fail("pyroscope ingest: unknown profile type \"%.40s\": in the "
				    "folded and lines formats the last dot component of the app "
				    "name is the type (app.cpu, app.wall, app.alloc_space, "
				    "app.inuse_objects, app.mutex_count, app.block_duration, "
				    "app.goroutines)",
				    type);
		if (strstr(type, "space"))
			unit = "bytes";
		else if (strstr(type, "duration"))
			unit = "nanoseconds";
	}
	/* units=samples|objects|goroutines|bytes|lock_samples|lock_nanoseconds */
	if (units && (!strcmp(units, "bytes") || !strcmp(units, "lock_nanoseconds")))
		unit = units[0] == 'b' ? "bytes" : "nanoseconds";
	rc = ap_profile_add_value_type(p, vt, unit);
	*mode = m;
	return rc;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One line [s, s+n) of a text body: 0, -EINVAL, -ENOMEM. */
static int text_line(struct ap_profile *p, char *s, size_t n, bool lines, size_t lineno,
		     uint32_t **ids, size_t *cap, char *err, size_t errlen)
{
	struct ap_sample smp = {0};
	uint64_t count = 1;
	size_t depth = 0;
	char *f, *end;

	while (n && blank(s[n - 1]))
		n--;
	while (n && blank(*s)) {
		s++;
		n--;
	}
	if (!n)
		return 0;
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return fail("pyroscope ingest: line %zu: control character 0x%02x at "
				    "column %zu",
				    lineno, (unsigned char)s[i], i + 1);
	if (!lines) {
		char *sp = strrchr(s, ' ');

		if (!sp || ap_parse_u64(sp + 1, 0, UINT64_MAX, &count))
			return fail("pyroscope ingest: line %zu: expected \"frame;frame;... COUNT\" "
				    "(format=groups; send format=lines for a stack per line "
				    "without counts)",
				    lineno);
		while (sp > s && blank(sp[-1]))
			sp--;
		*sp = '\0';
		n = (size_t)(sp - s);
		if (!n)
			return fail("pyroscope ingest: line %zu: no stack before the count",
				    lineno);
	}
	/* root first in the text, leaf first in the model: fill from the end */
	for (f = s;; f = end + 1) {
		end = strchr(f, ';');
		if (end)
			*end = '\0';
		if (!*f)
			return fail("pyroscope ingest: line %zu: empty frame name", lineno);
		if (depth == AP_FORMAT_MAX_STACK_DEPTH)
			return fail("pyroscope ingest: line %zu: stack deeper than %d frames",
				    lineno, AP_FORMAT_MAX_STACK_DEPTH);
		if (depth == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			uint32_t *ni = realloc(*ids, nc * sizeof(*ni));

			if (!ni)
				return -ENOMEM;
			*ids = ni;
			*cap = nc;
		}
		(*ids)[depth] = ap_profile_add_named_frame(p, f, NULL, AP_FRAME_USER);
		if ((*ids)[depth++] == UINT32_MAX)
			return -ENOMEM;
		if (!end)
			break;
	}
	if (!count)
		return 0;
	for (size_t i = 0, j = depth; i + 1 < j; i++, j--) {
		uint32_t t = (*ids)[i];

		(*ids)[i] = (*ids)[j - 1];
		(*ids)[j - 1] = t;
	}
	smp.stack = ap_profile_add_stack(p, *ids, depth);
	if (smp.stack == UINT32_MAX)
		return -ENOMEM;
	smp.values[0] = count;
	return ap_profile_add_sample(p, &smp);
}

static int decode_text(const struct ap_ingest_req *r, bool lines, struct ap_profile *p,
		       char *err, size_t errlen)
{
	char *line = NULL;
	uint32_t *ids = NULL;
	size_t lcap = 0, icap = 0, lineno = 0, pos = 0;
	int rc = 0;

	if (memchr(r->body, '\0', r->len))
		return fail("pyroscope ingest: the %s body holds a NUL byte (binary data? send "
			    "pprof with format=pprof)",
			    lines ? "lines" : "folded");
	while (pos < r->len && !rc) {
		const uint8_t *nl = memchr(r->body + pos, '\n', r->len - pos);
		size_t n = nl ? (size_t)(nl - r->body) - pos : r->len - pos;

		lineno++;
		if (n + 1 > lcap) {
			char *nb = realloc(line, n + 1);

			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			line = nb;
			lcap = n + 1;
		}
		memcpy(line, r->body + pos, n);
		line[n] = '\0';
		rc = text_line(p, line, n, lines, lineno, &ids, &icap, err, errlen);
		pos += n + 1;
	}
	free(line);
	free(ids);
	return rc;
}

/* ---- the request ---- */

static int add_labels(const struct ap_ingest_req *r, const struct pname *pn, const char *app,
		      size_t app_len, const char *mode, struct ap_ingest *out, char *err,
		      size_t errlen)
{
	bool has_service = false;
	int rc;

	for (size_t i = 0; i < pn->n; i++) {
		if (pn->l[i].klen == 4 && !memcmp(pn->l[i].k, "mode", 4))
			return fail("pyroscope ingest: name: the label mode is reserved (Aperture "
				    "sets it to the profile type, here %s); rename it",
				    mode);
		has_service |= pn->l[i].klen == 12 && !memcmp(pn->l[i].k, "service_name", 12);
	}
	if (!has_service &&
	    (rc = ap_ing_add_label(out, "service_name", 12, app, app_len,
				   "pyroscope ingest: name (the application name)", err, errlen)))
		return rc;
	if ((rc = ap_ing_add_label(out, "mode", 4, mode, strlen(mode), "pyroscope ingest", err,
				   errlen)))
		return rc;
	for (size_t i = 0; i < pn->n; i++)
		if ((rc = ap_ing_add_label(out, pn->l[i].k, pn->l[i].klen, pn->l[i].v,
					   pn->l[i].vlen, "pyroscope ingest: name", err, errlen)))
			return rc;
	if (r->tenant && *r->tenant)
		return ap_ing_add_label(out, "tenant", 6, r->tenant, strlen(r->tenant),
					"pyroscope ingest: header X-Scope-OrgID", err, errlen);
	return 0;
}

static int time_range(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
		      size_t errlen)
{
	const char *from = ap_ing_arg(r, "from"), *until = ap_ing_arg(r, "until");
	uint64_t pstart = out->profile ? ap_profile_start_ns(out->profile) : 0;
	uint64_t pdur = out->profile ? ap_profile_duration_ns(out->profile) : 0;
	int rc;

	/* absent: the profile's own time, else now (Pyroscope: now) */
	if (from && *from) {
		if ((rc = parse_time("from", from, r->now_ns, &out->from_ns, err, errlen)))
			return rc;
	} else {
		out->from_ns = pstart ? pstart : r->now_ns;
	}
	if (until && *until) {
		if ((rc = parse_time("until", until, r->now_ns, &out->until_ns, err, errlen)))
			return rc;
	} else if (!(from && *from) && pstart && pdur && pstart + pdur > pstart) {
		out->until_ns = pstart + pdur;
	} else {
		out->until_ns = out->from_ns > r->now_ns ? out->from_ns : r->now_ns;
	}
	if (out->until_ns > INT64_MAX) /* from the profile's own time + duration */
		return fail("pyroscope ingest: the pprof's time and duration end after the year "
			    "2262");
	if (out->until_ns < out->from_ns)
		return fail("pyroscope ingest: until (%llu ns) is before from (%llu ns)",
			    (unsigned long long)out->until_ns, (unsigned long long)out->from_ns);
	return 0;
}

int ap_ingest_decode_pyroscope(const struct ap_ingest_req *r, struct ap_ingest *out, char *err,
			       size_t errlen)
{
	const char *name = ap_ing_arg(r, "name"), *format = ap_ing_arg(r, "format");
	const char *rate_s = ap_ing_arg(r, "sampleRate"), *app, *mode = NULL;
	const char *ct = r->content_type ? r->content_type : "";
	char boundary[AP_MP_MAX_BOUNDARY + 1], modebuf[AP_STORE_MAX_LABEL_NAME + 1];
	struct pname pn;
	size_t app_len;
	uint64_t rate = 100;
	bool form;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!name || !*name)
		return fail("pyroscope ingest: query parameter name is missing (expected "
			    "name=app or name=app{key=value,...})");
	if ((rc = parse_name(name, &pn, err, errlen)))
		return rc;
	app = pn.app;
	app_len = pn.app_len;
	if (format && !*format)
		format = NULL;
	/* Pyroscope takes a bad sampleRate as 100 too; for pprof it is unused */
	if (rate_s && (ap_parse_u64(rate_s, 1, NS, &rate)))
		rate = 100;

	rc = ap_mp_boundary(ct, boundary, sizeof(boundary), err, errlen);
	if (rc && rc != -ENOENT)
		return rc;
	form = rc == 0;
	if ((format && (!strcmp(format, "trie") || !strcmp(format, "tree"))) ||
	    !strncmp(ct, "binary/octet-stream+trie", 24) ||
	    !strncmp(ct, "binary/octet-stream+tree", 24))
		return fail("pyroscope ingest: the legacy trie/tree formats are not supported; "
			    "send pprof (format=pprof or a multipart form), folded "
			    "(format=groups) or lines (format=lines)");
	if (format && (!strcmp(format, "jfr") || !strcmp(format, "speedscope")))
		return fail("pyroscope ingest: format=%s is not supported; send pprof, folded "
			    "(format=groups) or lines",
			    format);
	if ((format && !strcmp(format, "pprof")) || (!format && form)) {
		/* a form with format=pprof is read as the form its Content-Type says it is */
		rc = form ? decode_form(r, boundary, out, err, errlen)
			  : ap_ing_read_pprof(r->body, r->len, r->max_inflated,
					      "pyroscope ingest: pprof body", out, err, errlen);
		if (!rc)
			rc = pprof_mode(out->profile, modebuf, sizeof(modebuf), err, errlen);
		mode = modebuf;
	} else if (!format || !strcmp(format, "groups") || !strcmp(format, "folded") ||
		   !strcmp(format, "lines")) {
		const char *dot = memrchr(app, '.', app_len);
		char type[64];

		if (r->content_encoding && *r->content_encoding &&
		    strcasecmp(r->content_encoding, "identity") != 0)
			return fail("pyroscope ingest: Content-Encoding %.40s is not decoded for "
				    "the text formats; send the text as is",
				    r->content_encoding);
		snprintf(type, sizeof(type), "%.*s", dot ? (int)(app + app_len - dot - 1) : 3,
			 dot ? dot + 1 : "cpu");
		if (dot)
			app_len = (size_t)(dot - app);
		out->profile = ap_profile_new();
		if (!out->profile)
			return -ENOMEM;
		rc = text_types(type, ap_ing_arg(r, "units"), out->profile, rate, &mode, err,
				errlen);
		if (!rc)
			rc = decode_text(r, format && !strcmp(format, "lines"), out->profile, err,
					 errlen);
	} else {
		return fail("pyroscope ingest: unknown format=%.40s (accepted: pprof, groups, "
			    "folded, lines)",
			    format);
	}
	if (!rc)
		rc = time_range(r, out, err, errlen);
	if (!rc && out->profile && !ap_profile_start_ns(out->profile))
		ap_profile_set_time(out->profile, out->from_ns, out->until_ns - out->from_ns);
	if (!rc)
		rc = add_labels(r, &pn, app, app_len, mode, out, err, errlen);
	if (!rc)
		rc = ap_ing_check_profile(out, err, errlen);
	if (rc)
		ap_ingest_free(out);
	return rc;
}
