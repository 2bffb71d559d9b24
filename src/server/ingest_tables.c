// SPDX-License-Identifier: MIT
/*
 * A push's `tables` part (the lock or syscall mode's JSON report, as src/agent/lock_report.c
 * and syscall_report.c write it) into the storage's table rows (storage/storage.h):
 * - lock report: every entry of "locks", "condvars" and "other_waits" (the kind tells them
 *   apart) is a "lock" row keyed "KIND NAME-OR-ADDR" {contentions, wait_ns} + its histogram,
 *   and each holder with waits a "lock_holder" row "KIND NAME-OR-ADDR\tHOLDER_COMM"
 *   {count, wait_ns} (holders of one lock with the same comm summed);
 * - syscall report: every entry is a "syscall" row keyed by the syscall's name
 *   {calls, errors, total_ns, slow} + its histogram, and each errno a "syscall_errno" row
 *   "NAME ERRNO" {count}.
 * Rows carry the entry's pid and comm.
 * And the `agent` part: the agent's counters.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_internal.h"
#include "lib/errbuf.h"
#include "lib/hist.h"
#include "lib/json_parse.h"

#define fail(...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)

struct tctx {
	struct ap_ingest *out;
	size_t cap;
	char *err;
	size_t errlen;
};

/* A string member (NULL when absent or null); -EINVAL when of another type or holding NUL. */
static int get_str(struct tctx *t, const struct ap_json *o, const char *key, const char *where,
		   const char **out)
{
	const struct ap_json *j = ap_json_get(o, key);

	*out = NULL;
	if (!j || j->type == AP_JSON_NULL)
		return 0;
	if (j->type != AP_JSON_STRING || strlen(j->str) != j->len)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.%s (line %u): expected a string without "
			       "NUL bytes",
			       where, key, j->line);
	*out = j->str;
	return 0;
}

/* A required non-negative integer member. */
static int get_u64(struct tctx *t, const struct ap_json *o, const char *key, const char *where,
		   uint64_t *out)
{
	const struct ap_json *j = ap_json_get(o, key);

	if (!j)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s has no member %s", where, key);
	if (j->type != AP_JSON_NUMBER || ap_json_u64(j, out))
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.%s (line %u): expected a non-negative "
			       "integer",
			       where, key, j->line);
	return 0;
}

static struct ap_table_row *add_row(struct tctx *t, const char *table, const char *key,
				    uint32_t pid, const char *comm)
{
	struct ap_ingest *o = t->out;
	struct ap_table_row *r;

	if (o->nrows >= AP_INGEST_MAX_ROWS) {
		ap_errf(t->err, t->errlen, -EINVAL,
			"push: part tables: more than %d table rows in one push", AP_INGEST_MAX_ROWS);
		errno = EINVAL;
		return NULL;
	}
	if (o->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;

		r = realloc(o->rows, ncap * sizeof(*r));
		if (!r)
			goto nomem;
		o->rows = r;
		t->cap = ncap;
	}
	r = &o->rows[o->nrows];
	memset(r, 0, sizeof(*r));
	r->table = strdup(table);
	r->key = strdup(key);
	r->comm = comm && *comm ? strdup(comm) : NULL;
	o->nrows++; /* counted now so that ap_ingest_free releases what was allocated */
	if (!r->table || !r->key || (comm && *comm && !r->comm))
		goto nomem;
	r->pid = pid;
	return r;
nomem:
	errno = ENOMEM;
	return NULL;
}

#define fail_t(t, ...) ap_errf((t)->err, (t)->errlen, -EINVAL, __VA_ARGS__)

static int row_err(void)
{
	return errno == ENOMEM ? -ENOMEM : -EINVAL;
}

static int get_pid(struct tctx *t, const struct ap_json *o, const char *where, uint32_t *pid)
{
	uint64_t v;
	int rc = get_u64(t, o, "pid", where, &v);

	if (rc)
		return rc;
	if (v > UINT32_MAX)
		return ap_errf(t->err, t->errlen, -EINVAL, "push: part tables: %s.pid: %llu is "
			       "not a pid", where, (unsigned long long)v);
	*pid = (uint32_t)v;
	return 0;
}

static int lock_holders(struct tctx *t, const struct ap_json *e, const char *lkey, uint32_t pid,
			const char *comm, const char *where)
{
	const struct ap_json *hs = ap_json_get(e, "holders");
	size_t first = t->out->nrows;
	char hwhere[96], *key = NULL;
	int rc = 0;

	if (!hs)
		return 0;
	if (hs->type != AP_JSON_ARRAY)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.holders: expected an array", where);
	for (size_t i = 0; i < hs->len && !rc; i++) {
		const struct ap_json *h = &hs->items[i];
		const char *hc;
		uint64_t count, wait;
		struct ap_table_row *r = NULL;

		snprintf(hwhere, sizeof(hwhere), "%s.holders[%zu]", where, i);
		if (h->type != AP_JSON_OBJECT) {
			rc = ap_errf(t->err, t->errlen, -EINVAL,
				     "push: part tables: %s: expected an object", hwhere);
			break;
		}
		if ((rc = get_str(t, h, "comm", hwhere, &hc)) ||
		    (rc = get_u64(t, h, "count", hwhere, &count)) ||
		    (rc = get_u64(t, h, "wait_ns", hwhere, &wait)))
			break;
		if (!count && !wait)
			continue; /* EAGAIN-only holders: no wait to attribute */
		free(key);
		if (asprintf(&key, "%s\t%s", lkey, hc && *hc ? hc : "[unknown]") < 0) {
			key = NULL;
			rc = -ENOMEM;
			break;
		}
		/* two holder threads with one comm: one row */
		for (size_t k = first; k < t->out->nrows && !r; k++)
			if (strcmp(t->out->rows[k].key, key) == 0)
				r = &t->out->rows[k];
		if (!r && !(r = add_row(t, "lock_holder", key, pid, comm))) {
			rc = row_err();
			break;
		}
		r->v[0] += count;
		r->v[1] += wait;
	}
	free(key);
	return rc;
}

static int lock_entry(struct tctx *t, const struct ap_json *e, const char *where)
{
	const char *kind, *name, *addr, *comm;
	const struct ap_json *hist;
	uint64_t contentions, wait;
	uint32_t pid;
	char *key = NULL;
	struct ap_table_row *r;
	int rc;

	if (e->type != AP_JSON_OBJECT)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s: expected an object", where);
	if ((rc = get_str(t, e, "kind", where, &kind)) ||
	    (rc = get_str(t, e, "name", where, &name)) ||
	    (rc = get_str(t, e, "addr", where, &addr)) ||
	    (rc = get_str(t, e, "comm", where, &comm)) || (rc = get_pid(t, e, where, &pid)) ||
	    (rc = get_u64(t, e, "contentions", where, &contentions)) ||
	    (rc = get_u64(t, e, "wait_ns_total", where, &wait)))
		return rc;
	if (!kind || !*kind || (!(name && *name) && !(addr && *addr)))
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s needs a kind and a name or an addr", where);
	if (asprintf(&key, "%s %s", kind, name && *name ? name : addr) < 0)
		return -ENOMEM;
	r = add_row(t, "lock", key, pid, comm);
	if (!r) {
		free(key);
		return row_err();
	}
	r->v[0] = contentions;
	r->v[1] = wait;
	hist = ap_json_get(e, "hist");
	if (hist) {
		if (hist->type != AP_JSON_ARRAY || hist->len > AP_HIST_SLOTS) {
			free(key);
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s.hist: expected an array of at most "
				       "%d counts",
				       where, AP_HIST_SLOTS);
		}
		for (size_t i = 0; i < hist->len; i++) {
			if (hist->items[i].type != AP_JSON_NUMBER ||
			    ap_json_u64(&hist->items[i], &r->hist[i])) {
				free(key);
				return ap_errf(t->err, t->errlen, -EINVAL,
					       "push: part tables: %s.hist[%zu]: expected a "
					       "non-negative integer",
					       where, i);
			}
		}
	}
	rc = lock_holders(t, e, key, pid, comm, where);
	free(key);
	return rc;
}

static int lock_report(struct tctx *t, const struct ap_json *root)
{
	static const char *const groups[] = {"locks", "condvars", "other_waits"};
	char where[64];
	int rc;

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		const struct ap_json *a = ap_json_get(root, groups[g]);

		if (!a)
			continue;
		if (a->type != AP_JSON_ARRAY)
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s: expected an array", groups[g]);
		for (size_t i = 0; i < a->len; i++) {
			snprintf(where, sizeof(where), "%s[%zu]", groups[g], i);
			rc = lock_entry(t, &a->items[i], where);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int syscall_entry(struct tctx *t, const struct ap_json *e, const char *where)
{
	const struct ap_json *errs, *hist;
	const char *name, *comm;
	uint64_t v[4];
	uint32_t pid;
	struct ap_table_row *r;
	char *key = NULL;
	int rc;

	if (e->type != AP_JSON_OBJECT)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s: expected an object", where);
	if ((rc = get_str(t, e, "name", where, &name)) ||
	    (rc = get_str(t, e, "comm", where, &comm)) || (rc = get_pid(t, e, where, &pid)) ||
	    (rc = get_u64(t, e, "count", where, &v[0])) ||
	    (rc = get_u64(t, e, "error_count", where, &v[1])) ||
	    (rc = get_u64(t, e, "total_ns", where, &v[2])))
		return rc;
	v[3] = 0;
	if (ap_json_get(e, "slow") && (rc = get_u64(t, e, "slow", where, &v[3])))
		return rc;
	if (!name || !*name)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s has no syscall name", where);
	r = add_row(t, "syscall", name, pid, comm);
	if (!r)
		return row_err();
	memcpy(r->v, v, sizeof(v));
	hist = ap_json_get(e, "hist");
	if (hist && hist->type != AP_JSON_ARRAY)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.hist: expected an array", where);
	for (size_t i = 0; hist && i < hist->len; i++) {
		const struct ap_json *b = &hist->items[i];
		uint64_t low, count;
		char bw[96];

		snprintf(bw, sizeof(bw), "%s.hist[%zu]", where, i);
		if (b->type != AP_JSON_OBJECT)
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s: expected an object", bw);
		if ((rc = get_u64(t, b, "low_ns", bw, &low)) ||
		    (rc = get_u64(t, b, "count", bw, &count)))
			return rc;
		/* the report names slots by their bounds; the slot of the lower bound is the
		 * slot (lib/hist.h) */
		r->hist[ap_hist_slot(low)] += count;
	}
	errs = ap_json_get(e, "errors");
	if (errs && errs->type != AP_JSON_OBJECT)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.errors: expected an object", where);
	for (size_t i = 0; errs && i < errs->len; i++) {
		uint64_t n;

		if (errs->items[i].type != AP_JSON_NUMBER || ap_json_u64(&errs->items[i], &n))
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s.errors.%.40s: expected a "
				       "non-negative integer",
				       where, errs->keys[i]);
		if (!errs->keys[i][0] || strchr(errs->keys[i], ' '))
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s.errors: bad errno name \"%.40s\"",
				       where, errs->keys[i]);
		if (asprintf(&key, "%s %s", name, errs->keys[i]) < 0)
			return -ENOMEM;
		r = add_row(t, "syscall_errno", key, pid, comm);
		free(key);
		if (!r)
			return row_err();
		r->v[0] = n;
	}
	return 0;
}

static int syscall_report(struct tctx *t, const struct ap_json *root)
{
	const struct ap_json *a = ap_json_get(root, "entries");
	char where[48];
	int rc;

	if (!a || a->type != AP_JSON_ARRAY)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: the syscall report has no \"entries\" array");
	for (size_t i = 0; i < a->len; i++) {
		snprintf(where, sizeof(where), "entries[%zu]", i);
		rc = syscall_entry(t, &a->items[i], where);
		if (rc)
			return rc;
	}
	return 0;
}

/* A member that is an object of non-negative integers: their sum (the errors by name). */
static int sum_members(struct tctx *t, const struct ap_json *o, const char *key,
		       const char *where, uint64_t *out)
{
	const struct ap_json *j = ap_json_get(o, key);
	uint64_t v;

	*out = 0;
	if (!j || j->type == AP_JSON_NULL)
		return 0;
	if (j->type != AP_JSON_OBJECT)
		return ap_errf(t->err, t->errlen, -EINVAL,
			       "push: part tables: %s.%s (line %u): expected an object", where,
			       key, j->line);
	for (size_t i = 0; i < j->len; i++) {
		if (j->items[i].type != AP_JSON_NUMBER || ap_json_u64(&j->items[i], &v))
			return ap_errf(t->err, t->errlen, -EINVAL,
				       "push: part tables: %s.%s (line %u): expected counts",
				       where, key, j->items[i].line);
		*out += v;
	}
	return 0;
}

/* GPU kernels: a "gpu_kernel" row keyed "NAME\tMANGLED" {launches, errors, gpu_time_ns,
 * gpu records}. */
static int gpu_kernels(struct tctx *t, const struct ap_json *gpu)
{
	const struct ap_json *a = ap_json_get(gpu, "kernels");
	char where[64], key[1024];
	int rc;

	if (!a || a->type != AP_JSON_ARRAY)
		return fail_t(t, "push: part tables: the GPU report has no \"kernels\" array");
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *e = &a->items[i], *gt;
		const char *name, *mangled;
		struct ap_table_row *r;
		uint32_t pid = 0;

		snprintf(where, sizeof(where), "gpu.kernels[%zu]", i);
		if ((rc = get_str(t, e, "name", where, &name)) ||
		    (rc = get_str(t, e, "mangled", where, &mangled)))
			return rc;
		if (!name)
			return fail_t(t, "push: part tables: %s has no kernel name", where);
		if (ap_json_get(e, "pid") && (rc = get_pid(t, e, where, &pid)))
			return rc;
		snprintf(key, sizeof(key), "%s\t%s", name, mangled ? mangled : "");
		if (!(r = add_row(t, "gpu_kernel", key, pid, NULL)))
			return row_err();
		if ((rc = get_u64(t, e, "launches", where, &r->v[0])) ||
		    (rc = get_u64(t, e, "errors", where, &r->v[1])))
			return rc;
		gt = ap_json_get(e, "gpu_time_ns");
		if (gt && gt->type == AP_JSON_OBJECT &&
		    ((rc = get_u64(t, gt, "total", where, &r->v[2])) ||
		     (rc = get_u64(t, gt, "records", where, &r->v[3]))))
			return rc;
	}
	return 0;
}

/* GPU API calls: a "gpu_api" row keyed by the call {calls, errors, cpu_time_ns}; copies: a
 * "gpu_copy" row keyed by the direction {calls, bytes, cpu_time_ns, gpu_time_ns}. */
static int gpu_api_copies(struct tctx *t, const struct ap_json *gpu)
{
	const struct ap_json *a = ap_json_get(gpu, "api"), *c = ap_json_get(gpu, "copies");
	char where[64];
	int rc;

	if (!a || a->type != AP_JSON_ARRAY)
		return fail_t(t, "push: part tables: the GPU report has no \"api\" array");
	for (size_t i = 0; i < a->len; i++) {
		const struct ap_json *e = &a->items[i];
		struct ap_table_row *r;
		const char *name;

		snprintf(where, sizeof(where), "gpu.api[%zu]", i);
		if ((rc = get_str(t, e, "name", where, &name)))
			return rc;
		if (!name)
			return fail_t(t, "push: part tables: %s has no API name", where);
		if (!(r = add_row(t, "gpu_api", name, 0, NULL)))
			return row_err();
		if ((rc = get_u64(t, e, "calls", where, &r->v[0])) ||
		    (rc = sum_members(t, e, "errors", where, &r->v[1])) ||
		    (rc = get_u64(t, e, "cpu_time_ns", where, &r->v[2])))
			return rc;
	}
	if (!c || c->type != AP_JSON_OBJECT)
		return 0;
	for (size_t i = 0; i < c->len; i++) {
		const struct ap_json *e = &c->items[i];
		struct ap_table_row *r;

		snprintf(where, sizeof(where), "gpu.copies.%.40s", c->keys[i]);
		if (e->type != AP_JSON_OBJECT)
			return fail_t(t, "push: part tables: %s: expected an object", where);
		if (!(r = add_row(t, "gpu_copy", c->keys[i], 0, NULL)))
			return row_err();
		if ((rc = get_u64(t, e, "calls", where, &r->v[0])) ||
		    (rc = get_u64(t, e, "bytes", where, &r->v[1])) ||
		    (rc = get_u64(t, e, "cpu_time_ns", where, &r->v[2])) ||
		    (rc = get_u64(t, e, "gpu_time_ns", where, &r->v[3])))
			return rc;
	}
	return 0;
}

static int gpu_report(struct tctx *t, const struct ap_json *root)
{
	const struct ap_json *gpu = ap_json_get(root, "gpu");
	int rc;

	if (!gpu || gpu->type != AP_JSON_OBJECT)
		return fail_t(t, "push: part tables: the GPU report has no \"gpu\" object");
	rc = gpu_kernels(t, gpu);
	return rc ? rc : gpu_api_copies(t, gpu);
}

int ap_ing_decode_tables(const char *mode, const uint8_t *json, size_t len,
			 struct ap_ingest *out, char *err, size_t errlen)
{
	struct tctx t = {.out = out, .cap = out->nrows, .err = err, .errlen = errlen};
	const struct ap_json *fmt, *jm;
	struct ap_json *root;
	char why[256];
	const char *rmode;
	int rc;

	root = ap_json_parse_max((const char *)json, len, AP_INGEST_MAX_JSON_VALUES, why,
				 sizeof(why));
	if (!root)
		return errno == ENOMEM ? -ENOMEM
				       : fail("push: part tables is not valid JSON: %s", why);
	if (root->type != AP_JSON_OBJECT) {
		rc = fail("push: part tables: expected a JSON object (the mode's report)");
		goto out;
	}
	fmt = ap_json_get(root, "format");
	jm = ap_json_get(root, "mode");
	rmode = jm && jm->type == AP_JSON_STRING ? jm->str : "";
	if (strcmp(rmode, mode) != 0) {
		rc = fail("push: part tables is a report of mode \"%.40s\" but the push's mode is "
			  "\"%.40s\"",
			  rmode, mode);
		goto out;
	}
	if (!strcmp(rmode, "lock") && fmt && fmt->type == AP_JSON_STRING &&
	    !strcmp(fmt->str, "aperture-lock-report"))
		rc = lock_report(&t, root);
	else if (!strcmp(rmode, "syscall"))
		rc = syscall_report(&t, root);
	else if (!strcmp(rmode, "gpu") && fmt && fmt->type == AP_JSON_STRING &&
		 !strcmp(fmt->str, "aperture-gpu-report"))
		rc = gpu_report(&t, root);
	else
		rc = fail("push: part tables: not a lock report (\"format\": "
			  "\"aperture-lock-report\"), a syscall report (\"mode\": \"syscall\") "
			  "or a GPU report (\"format\": \"aperture-gpu-report\"); only those "
			  "modes have tables");
out:
	ap_json_free(root);
	return rc;
}

int ap_ing_decode_agent(const uint8_t *json, size_t len, struct ap_ingest *out, char *err,
			size_t errlen)
{
	struct ap_json *root;
	char why[256];
	int rc = 0;

	root = ap_json_parse_max((const char *)json, len, AP_INGEST_MAX_AGENT_COUNTERS + 1, why,
				 sizeof(why));
	if (!root)
		return errno == ENOMEM ? -ENOMEM
				       : fail("push: part agent is not valid JSON (at most %d "
					      "counters): %s",
					      AP_INGEST_MAX_AGENT_COUNTERS, why);
	if (root->type != AP_JSON_OBJECT) {
		rc = fail("push: part agent: expected a JSON object {\"counter\": number, ...}");
		goto out;
	}
	out->agent = calloc(root->len ? root->len : 1, sizeof(*out->agent));
	if (!out->agent) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < root->len; i++) {
		const char *k = root->keys[i];
		size_t n = strlen(k);

		if (!n || n > AP_INGEST_MAX_COUNTER_NAME ||
		    strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
			n ||
		    (k[0] >= '0' && k[0] <= '9')) {
			rc = fail("push: part agent: counter name \"%.80s\" is not 1-%d of "
				  "[A-Za-z_][A-Za-z0-9_]*",
				  k, AP_INGEST_MAX_COUNTER_NAME);
			goto out;
		}
		if (root->items[i].type != AP_JSON_NUMBER ||
		    ap_json_u64(&root->items[i], &out->agent[i].value)) {
			rc = fail("push: part agent: counter %s: expected a non-negative integer",
				  k);
			goto out;
		}
		out->agent[i].name = strdup(k);
		if (!out->agent[i].name) {
			rc = -ENOMEM;
			goto out;
		}
		out->nagent++;
	}
out:
	ap_json_free(root);
	return rc;
}
