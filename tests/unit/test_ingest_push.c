// SPDX-License-Identifier: MIT
/*
 * The Aperture push decoder (POST /api/v1/push; src/server/ingest.c, ingest_tables.c) on real
 * agent pushes (tests/data/agent_push, made by make_fixtures.py from aperture-agent runs in
 * cpu, lock and syscall mode), checked against the agent's own outputs read independently;
 * then malformed pushes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format/format.h"
#include "lib/json_parse.h"
#include "test_ingest_util.h"

static void decode_ok(struct fixture *f, const char *name, struct ap_ingest *in)
{
	char err[512] = "";
	int rc;

	assert_int_equal(fix_load(f, name), 0);
	rc = ap_ingest_decode_push(&f->req, in, err, sizeof(err));
	if (rc)
		fail_msg("%s: %d: %s", name, rc, err);
}

static const char *arg(const struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->req.nargs; i++)
		if (!strcmp(f->args[i].name, name))
			return f->args[i].value;
	return NULL;
}

static struct ap_profile *read_profile(const char *name)
{
	char path[512];
	struct ap_profile *p = NULL;
	char err[256];

	snprintf(path, sizeof(path), "%s/agent_push/%s", AP_TEST_DATA_DIR, name);
	if (ap_read_profile_file(path, &p, err, sizeof(err)))
		fail_msg("%s: %s", path, err);
	return p;
}

static struct ap_json *read_json(const char *name)
{
	char path[512], err[256];
	size_t len = 0;
	uint8_t *buf;
	struct ap_json *j;

	snprintf(path, sizeof(path), "%s/agent_push/%s", AP_TEST_DATA_DIR, name);
	buf = fix_read_file(path, &len);
	assert_non_null(buf);
	j = ap_json_parse((const char *)buf, len, err, sizeof(err));
	free(buf);
	if (!j)
		fail_msg("%s: %s", path, err);
	return j;
}

static uint64_t jnum(const struct ap_json *o, const char *key)
{
	uint64_t v = 0;
	const struct ap_json *j = ap_json_get(o, key);

	assert_non_null(j);
	assert_int_equal(ap_json_u64(j, &v), 0);
	return v;
}

static const struct ap_table_row *find_row(const struct ap_ingest *in, const char *table,
					   const char *key, size_t *count)
{
	const struct ap_table_row *r = NULL;

	*count = 0;
	for (size_t i = 0; i < in->nrows; i++)
		if (!strcmp(in->rows[i].table, table) && !strcmp(in->rows[i].key, key)) {
			r = &in->rows[i];
			(*count)++;
		}
	return r;
}

static void common_checks(const struct fixture *f, const struct ap_ingest *in, const char *mode)
{
	struct ap_store_write w;

	assert_string_equal(in->push_id, arg(f, "push_id"));
	assert_int_equal(strlen(in->push_id), 32);
	assert_int_equal(in->from_ns, strtoull(arg(f, "from"), NULL, 10));
	assert_int_equal(in->until_ns, strtoull(arg(f, "until"), NULL, 10));
	assert_string_equal(fix_label(in, "mode"), mode);
	assert_string_equal(fix_label(in, "host"), "fixture-host");
	assert_string_equal(fix_label(in, "k8s.cluster"), "c1");
	assert_int_equal(in->nlabels, 4);
	assert_int_equal(in->nagent, 3);
	assert_string_equal(in->agent[0].name, "pushes_ok");
	assert_int_equal(in->agent[0].value, 12);
	assert_string_equal(in->agent[1].name, "pushes_failed");
	assert_int_equal(in->agent[1].value, 1);
	ap_ingest_to_write(in, &w);
	assert_ptr_equal(w.push_id, in->push_id);
	assert_ptr_equal(w.labels, in->labels);
	assert_int_equal(w.nlabels, in->nlabels);
	assert_int_equal(w.from_ns, in->from_ns);
	assert_int_equal(w.until_ns, in->until_ns);
	assert_ptr_equal(w.profile, in->profile);
	assert_ptr_equal(w.rows, in->rows);
	assert_int_equal(w.nrows, in->nrows);
}

/* The pushed profile is the agent's file, sample for sample. */
static void same_profile(const struct ap_profile *pushed, const char *file)
{
	struct ap_profile *ref = read_profile(file);

	assert_int_equal(ap_profile_nvalues(pushed), ap_profile_nvalues(ref));
	assert_int_equal(ap_profile_nsamples(pushed), ap_profile_nsamples(ref));
	assert_true(ap_profile_nsamples(pushed) > 0);
	for (size_t v = 0; v < ap_profile_nvalues(ref); v++)
		assert_int_equal(ap_profile_total(pushed, v), ap_profile_total(ref, v));
	ap_profile_free(ref);
}

static void test_cpu_push(void **state)
{
	struct fixture f;
	struct ap_ingest in;
	bool pid = false;
	(void)state;

	decode_ok(&f, "agent_push/push_cpu", &in);
	common_checks(&f, &in, "cpu");
	assert_int_equal(in.nrows, 0);
	same_profile(in.profile, "cpu.pb.gz");
	for (size_t i = 0; i < ap_profile_nsamples(in.profile); i++)
		pid |= ap_profile_sample(in.profile, i)->pid != 0;
	assert_true(pid);
	ap_ingest_free(&in);
	fix_free(&f);
}

static void test_lock_push(void **state)
{
	static const char *const groups[] = {"locks", "condvars", "other_waits"};
	struct fixture f;
	struct ap_ingest in;
	struct ap_json *rep = read_json("lock.json");
	size_t nlocks = 0, n;
	uint64_t contentions = 0, rows_contentions = 0;
	(void)state;

	decode_ok(&f, "agent_push/push_lock", &in);
	common_checks(&f, &in, "lock");
	same_profile(in.profile, "lock.pb.gz");
	/* every entry of the report is a "lock" row with its counters and histogram */
	for (size_t g = 0; g < 3; g++) {
		const struct ap_json *a = ap_json_get(rep, groups[g]);

		for (size_t i = 0; a && i < a->len; i++) {
			const struct ap_json *e = &a->items[i], *name = ap_json_get(e, "name");
			const struct ap_json *hs = ap_json_get(e, "holders");
			const struct ap_table_row *r;
			char key[256];
			uint64_t hsum = 0;

			snprintf(key, sizeof(key), "%s %s", ap_json_get(e, "kind")->str,
				 name->type == AP_JSON_STRING ? name->str
							       : ap_json_get(e, "addr")->str);
			r = find_row(&in, "lock", key, &n);
			assert_non_null(r);
			assert_int_equal(r->v[0], jnum(e, "contentions"));
			assert_int_equal(r->v[1], jnum(e, "wait_ns_total"));
			assert_int_equal(r->pid, jnum(e, "pid"));
			assert_string_equal(r->comm, ap_json_get(e, "comm")->str);
			for (size_t s = 0; s < AP_HIST_SLOTS; s++)
				hsum += r->hist[s];
			assert_int_equal(hsum, jnum(e, "contentions"));
			contentions += jnum(e, "contentions");
			nlocks++;
			/* holders: one row per comm, counts of same-comm holders summed */
			for (size_t h = 0; h < hs->len; h++) {
				const struct ap_json *hc = ap_json_get(&hs->items[h], "comm");
				char hkey[512];
				uint64_t want = 0;

				if (!jnum(&hs->items[h], "count") && !jnum(&hs->items[h], "wait_ns"))
					continue;
				snprintf(hkey, sizeof(hkey), "%s\t%s", key, hc->str);
				for (size_t k = 0; k < hs->len; k++)
					if (!strcmp(ap_json_get(&hs->items[k], "comm")->str, hc->str))
						want += jnum(&hs->items[k], "count");
				r = find_row(&in, "lock_holder", hkey, &n);
				assert_non_null(r);
				assert_int_equal(n, 1);
				assert_int_equal(r->v[0], want);
			}
		}
	}
	assert_true(nlocks >= 3);
	for (size_t i = 0; i < in.nrows; i++)
		if (!strcmp(in.rows[i].table, "lock"))
			rows_contentions += in.rows[i].v[0];
	assert_int_equal(rows_contentions, contentions);
	/* the workload's hog holds the mutex its waiters wait for */
	assert_non_null(find_row(&in, "lock_holder", "mutex g_hog_mutex\thog", &n));
	ap_json_free(rep);
	ap_ingest_free(&in);
	fix_free(&f);
}

static void test_syscall_push(void **state)
{
	struct fixture f;
	struct ap_ingest in;
	struct ap_json *rep = read_json("syscall.json");
	const struct ap_json *entries = ap_json_get(rep, "entries");
	size_t n, nerr = 0, nrows = 0;
	(void)state;

	decode_ok(&f, "agent_push/push_syscall", &in);
	common_checks(&f, &in, "syscall");
	same_profile(in.profile, "syscall.pb.gz");
	for (size_t i = 0; i < entries->len; i++) {
		const struct ap_json *e = &entries->items[i], *errs = ap_json_get(e, "errors");
		const struct ap_json *hist = ap_json_get(e, "hist");
		const struct ap_table_row *r = find_row(&in, "syscall", ap_json_get(e, "name")->str,
							&n);
		uint64_t hsum = 0, jsum = 0;

		assert_non_null(r);
		assert_int_equal(r->v[0], jnum(e, "count"));
		assert_int_equal(r->v[1], jnum(e, "error_count"));
		assert_int_equal(r->v[2], jnum(e, "total_ns"));
		assert_int_equal(r->v[3], jnum(e, "slow"));
		assert_string_equal(r->comm, "ap_syscalls");
		for (size_t s = 0; s < AP_HIST_SLOTS; s++)
			hsum += r->hist[s];
		for (size_t s = 0; s < hist->len; s++) {
			jsum += jnum(&hist->items[s], "count");
			/* the bucket lands in the slot whose bounds the report printed */
			assert_true(r->hist[ap_hist_slot(jnum(&hist->items[s], "low_ns"))] > 0);
		}
		assert_int_equal(hsum, jsum);
		for (size_t k = 0; k < errs->len; k++) {
			char key[128];
			uint64_t v;

			snprintf(key, sizeof(key), "%s %s", ap_json_get(e, "name")->str,
				 errs->keys[k]);
			r = find_row(&in, "syscall_errno", key, &n);
			assert_non_null(r);
			assert_int_equal(ap_json_u64(&errs->items[k], &v), 0);
			assert_int_equal(r->v[0], v);
			nerr++;
		}
		nrows++;
	}
	/* the workload's failing openat calls */
	assert_non_null(find_row(&in, "syscall_errno", "openat ENOENT", &n));
	assert_int_equal(in.nrows, nrows + nerr);
	ap_json_free(rep);
	ap_ingest_free(&in);
	fix_free(&f);
}

/* ---- malformed pushes, built here ---- */

struct part {
	const char *name;
	const void *data;
	size_t len;
};

static uint8_t *form(const struct part *p, size_t n, size_t *len)
{
	size_t cap = 256;
	uint8_t *b;

	for (size_t i = 0; i < n; i++)
		cap += p[i].len + 128;
	b = malloc(cap);
	assert_non_null(b);
	*len = 0;
	for (size_t i = 0; i < n; i++) {
		*len += (size_t)sprintf((char *)b + *len,
					"--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n",
					p[i].name);
		memcpy(b + *len, p[i].data, p[i].len);
		*len += p[i].len;
		memcpy(b + *len, "\r\n", 2);
		*len += 2;
	}
	*len += (size_t)sprintf((char *)b + *len, "--XyZ--\r\n");
	return b;
}

static uint8_t *agent_file(const char *name, size_t *len)
{
	char path[512];
	uint8_t *b;

	snprintf(path, sizeof(path), "%s/agent_push/%s", AP_TEST_DATA_DIR, name);
	b = fix_read_file(path, len);
	assert_non_null(b);
	return b;
}

#define GOOD_Q "push_id=abc-123_X&from=100&until=200&label=host%3Dh&label=mode%3D"

static int decode(const char *query, const char *ctype, const struct part *p, size_t n,
		  struct ap_ingest *in, char *err, size_t errlen)
{
	struct fixture f;
	size_t len;
	uint8_t *body = form(p, n, &len);
	int rc;

	memset(&f, 0, sizeof(f));
	f.req.args = f.args;
	fix_set_query(&f, query);
	f.req.content_type = ctype ? ctype : "multipart/form-data; boundary=\"XyZ\"";
	f.req.body = body;
	f.req.len = len;
	f.req.max_inflated = 1 << 20;
	rc = ap_ingest_decode_push(&f.req, in, err, errlen);
	fix_free(&f);
	free(body);
	return rc;
}

static void expect(int want, const char *query, const char *ctype, const struct part *p,
		   size_t n, const char *needle)
{
	struct ap_ingest in;
	char err[512] = "";
	int rc = decode(query, ctype, p, n, &in, err, sizeof(err));

	if (rc != want)
		fail_msg("%s: expected %d, got %d (%s)", query, want, rc, err);
	if (!strstr(err, needle))
		fail_msg("%s: message \"%s\" does not say \"%s\"", query, err, needle);
	assert_null(in.profile);
	assert_null(in.push_id);
	assert_int_equal(in.nlabels + in.nrows + in.nagent, 0);
}

/* A one-sample profile with the given sample label, as gzipped pprof. */
static uint8_t *profile_with_label(const char *key, size_t *len)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_sample s = {.values = {1}};
	struct ap_label l = {0};
	uint32_t fr;
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	assert_non_null(out);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	fr = ap_profile_add_named_frame(p, "main", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, &fr, 1);
	l.key = ap_profile_intern(p, key);
	l.str = ap_profile_intern(p, "v");
	s.labels = ap_profile_add_labels(p, &l, 1);
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	assert_int_equal(ap_write_pprof(p, out, NULL), 0);
	fclose(out);
	ap_profile_free(p);
	return (uint8_t *)buf;
}

static void test_malformed(void **state)
{
	size_t plen = 0, llen = 0, slen = 0, blen = 0;
	uint8_t *prof = agent_file("cpu.pb.gz", &plen);
	uint8_t *lockj = agent_file("lock.json", &llen);
	uint8_t *bad = profile_with_label("bad-name", &blen);
	uint8_t *host = profile_with_label("host", &slen);
	struct part pr = {"profile", prof, plen};
	struct part two[2] = {pr, pr};
	struct part unk[2] = {pr, {"extra", "x", 1}};
	struct part lockt[1] = {{"tables", lockj, llen}};
	char longid[100];
	(void)state;

	{ /* the well-formed base case decodes, so every refusal below is for its reason */
		struct ap_ingest in;
		char err[256];

		assert_int_equal(decode(GOOD_Q "cpu", NULL, &pr, 1, &in, err, sizeof(err)), 0);
		assert_int_equal(in.nlabels, 2);
		ap_ingest_free(&in);
		assert_int_equal(decode(GOOD_Q "lock", NULL, lockt, 1, &in, err, sizeof(err)), 0);
		assert_null(in.profile);
		assert_true(in.nrows > 0);
		ap_ingest_free(&in);
	}
	expect(-EINVAL, "from=1&until=2&label=mode%3Dcpu", NULL, &pr, 1, "push_id is missing");
	expect(-EINVAL, "push_id=a%2Fb&from=1&until=2&label=mode%3Dcpu", NULL, &pr, 1,
	       "push_id \"a/b\"");
	memset(longid, 'a', 65);
	strcpy(longid + 65, "&from=1&until=2");
	{
		char q[160] = "push_id=";

		strcat(q, longid);
		expect(-EINVAL, q, NULL, &pr, 1, "is not 1-64");
	}
	expect(-EINVAL, "push_id=a&until=2&label=mode%3Dcpu", NULL, &pr, 1, "from is missing");
	expect(-EINVAL, "push_id=a&from=1x&until=2&label=mode%3Dcpu", NULL, &pr, 1,
	       "from=\"1x\"");
	expect(-EINVAL, "push_id=a&from=3&until=2&label=mode%3Dcpu", NULL, &pr, 1, "before");
	expect(-EINVAL, "push_id=a&from=1&until=9223372036854775808&label=mode%3Dcpu", NULL, &pr,
	       1, "year 2262");
	expect(-EINVAL, "push_id=a&from=1&until=2&label=mode", NULL, &pr, 1, "label #1");
	expect(-EINVAL, "push_id=a&from=1&until=2&label=mode%3Dcpu&label=9x%3Dy", NULL, &pr, 1,
	       "label #2: label name \"9x\"");
	expect(-EINVAL, "push_id=a&from=1&until=2&label=mode%3Dcpu&label=mode%3Dlock", NULL, &pr,
	       1, "twice");
	expect(-EINVAL, "push_id=a&from=1&until=2&label=host%3Dh", NULL, &pr, 1, "no label mode");
	expect(-EINVAL, GOOD_Q "cpu", "application/octet-stream", &pr, 1,
	       "must be multipart/form-data");
	expect(-EINVAL, GOOD_Q "cpu", NULL, two, 2, "given twice");
	expect(-EINVAL, GOOD_Q "cpu", NULL, unk, 2, "unknown form part \"extra\"");
	{
		struct part a = {"agent", "{}", 2};

		expect(-EINVAL, GOOD_Q "cpu", NULL, &a, 1, "neither a profile nor a tables part");
	}
	/* tables */
	expect(-EINVAL, GOOD_Q "syscall", NULL, lockt, 1, "mode \"lock\" but the push's mode");
	{
		struct part t = {"tables", "{\"mode\":\"lock\",", 15};

		expect(-EINVAL, GOOD_Q "lock", NULL, &t, 1, "part tables is not valid JSON");
	}
	{
		static const char j[] = "{\"format\":\"aperture-lock-report\",\"mode\":\"lock\","
					"\"locks\":[{\"kind\":\"mutex\",\"name\":\"m\",\"pid\":1}]}";
		struct part t = {"tables", j, sizeof(j) - 1};

		expect(-EINVAL, GOOD_Q "lock", NULL, &t, 1, "locks[0] has no member contentions");
	}
	{ /* an error in a later holder (fuzz_ingest_push found its key leaking) */
		static const char j[] =
		    "{\"format\":\"aperture-lock-report\",\"mode\":\"lock\",\"locks\":[{\"kind\":"
		    "\"mutex\",\"name\":\"m\",\"pid\":1,\"comm\":\"c\",\"contentions\":2,"
		    "\"wait_ns_total\":5,\"holders\":[{\"comm\":\"a\",\"count\":1,\"wait_ns\":1},"
		    "{\"comm\":\"b\"}]}]}";
		struct part t = {"tables", j, sizeof(j) - 1};

		expect(-EINVAL, GOOD_Q "lock", NULL, &t, 1, "holders[1] has no member count");
	}
	{
		static const char j[] = "{\"mode\":\"syscall\",\"entries\":[{\"name\":\"read\","
					"\"pid\":1,\"comm\":\"x\",\"count\":-1}]}";
		struct part t = {"tables", j, sizeof(j) - 1};

		expect(-EINVAL, GOOD_Q "syscall", NULL, &t, 1, "entries[0].count");
	}
	{
		struct part a[2] = {pr, {"agent", "{\"bad name\":1}", 14}};

		expect(-EINVAL, GOOD_Q "cpu", NULL, a, 2, "counter name \"bad name\"");
		a[1] = (struct part){"agent", "{\"ok\":-1}", 9};
		expect(-EINVAL, GOOD_Q "cpu", NULL, a, 2, "counter ok");
		a[1] = (struct part){"agent", "[1]", 3};
		expect(-EINVAL, GOOD_Q "cpu", NULL, a, 2, "expected a JSON object");
	}
	/* profiles */
	{
		struct part p = {"profile", "garbage!", 8};

		expect(-EINVAL, GOOD_Q "cpu", NULL, &p, 1, "part profile: pprof");
		p = (struct part){"profile", bad, blen};
		expect(-EINVAL, GOOD_Q "cpu", NULL, &p, 1, "label name \"bad-name\"");
		p = (struct part){"profile", host, slen};
		expect(-EINVAL, GOOD_Q "cpu", NULL, &p, 1, "label host is also a label");
	}
	{
		size_t zlen = 1 << 21;
		uint8_t *zeros = calloc(1, zlen);
		char *gz = NULL;
		size_t gzlen = 0;
		FILE *out = open_memstream(&gz, &gzlen);
		struct ap_profile *big = ap_profile_new();
		struct part p;

		/* a real profile that inflates past max_inflated (1 MiB): 413 */
		assert_non_null(out);
		assert_int_equal(ap_profile_add_value_type(big, "samples", "count"), 0);
		for (int i = 0; i < 20000; i++) {
			char name[64];
			struct ap_sample s = {.values = {1}};
			uint32_t fr;

			snprintf(name, sizeof(name), "function_with_a_long_name_number_%d", i);
			fr = ap_profile_add_named_frame(big, name, "app", AP_FRAME_USER);
			s.stack = ap_profile_add_stack(big, &fr, 1);
			assert_int_equal(ap_profile_add_sample(big, &s), 0);
		}
		assert_int_equal(ap_write_pprof(big, out, NULL), 0);
		fclose(out);
		p = (struct part){"profile", gz, gzlen};
		expect(-EFBIG, GOOD_Q "cpu", NULL, &p, 1, "limit of 1 MiB");
		ap_profile_free(big);
		free(gz);
		free(zeros);
	}
	free(prof);
	free(lockj);
	free(bad);
	free(host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_push),
		cmocka_unit_test(test_lock_push),
		cmocka_unit_test(test_syscall_push),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
