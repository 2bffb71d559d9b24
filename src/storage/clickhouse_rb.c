// SPDX-License-Identifier: MIT
/*
 * Byte buffers, SQL quoting, RowBinary encoding of inserts and bounded decoding of answers.
 * ClickHouse's answers are network input: every read checks the bytes left, strings and arrays
 * have size limits, and a parse must consume the answer exactly (an exception text that the
 * server appended after a partial result fails the parse instead of being read as rows).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clickhouse_internal.h"
#include "lib/errbuf.h"
#include "lib/grow.h"

void ch_buf_free(struct ch_buf *b)
{
	free(b->b);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct ch_buf *b, size_t more)
{
	size_t need, cap;
	char *nb;

	if (b->oom)
		return false;
	if (more > SIZE_MAX / 2 - b->n) {
		b->oom = true;
		return false;
	}
	need = b->n + more + 1; /* room for a NUL: text stays a C string */
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	nb = realloc(b->b, cap);
	if (!nb) {
		b->oom = true;
		return false;
	}
	b->b = nb;
	b->cap = cap;
	return true;
}

void ch_buf_put(struct ch_buf *b, const void *p, size_t n)
{
	if (!reserve(b, n))
		return;
	if (n)
		memcpy(b->b + b->n, p, n);
	b->n += n;
	b->b[b->n] = 0;
}

void ch_buf_printf(struct ch_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n)) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->b + b->n, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)n;
}

void ch_sql_str(struct ch_buf *b, const char *s)
{
	ch_buf_put(b, "'", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\'' || *p == '\\') {
			char e[2] = {'\\', (char)*p};

			ch_buf_put(b, e, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			ch_buf_printf(b, "\\x%02X", *p);
		} else {
			ch_buf_put(b, p, 1);
		}
	}
	ch_buf_put(b, "'", 1);
}

void ch_rb_u8(struct ch_buf *b, uint8_t v) { ch_buf_put(b, &v, 1); }

void ch_rb_u16(struct ch_buf *b, uint16_t v)
{
	unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};

	ch_buf_put(b, x, 2);
}

void ch_rb_u32(struct ch_buf *b, uint32_t v)
{
	unsigned char x[4];

	for (int i = 0; i < 4; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	ch_buf_put(b, x, 4);
}

void ch_rb_u64(struct ch_buf *b, uint64_t v)
{
	unsigned char x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	ch_buf_put(b, x, 8);
}

void ch_rb_len(struct ch_buf *b, uint64_t n)
{
	unsigned char x[10];
	size_t k = 0;

	do {
		x[k] = (unsigned char)(n & 0x7f);
		n >>= 7;
		if (n)
			x[k] |= 0x80;
		k++;
	} while (n);
	ch_buf_put(b, x, k);
}

void ch_rb_strn(struct ch_buf *b, const char *s, size_t n)
{
	ch_rb_len(b, n);
	ch_buf_put(b, s, n);
}

void ch_rb_str(struct ch_buf *b, const char *s) { ch_rb_strn(b, s ? s : "", s ? strlen(s) : 0); }

/* ---- decoding ---- */

static bool need(struct ch_cur *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return false;
	}
	return true;
}

uint8_t ch_get_u8(struct ch_cur *c)
{
	if (!need(c, 1))
		return 0;
	return *c->p++;
}

uint32_t ch_get_u32(struct ch_cur *c)
{
	uint32_t v = 0;

	if (!need(c, 4))
		return 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)c->p[i] << (8 * i);
	c->p += 4;
	return v;
}

uint64_t ch_get_u64(struct ch_cur *c)
{
	uint64_t v = 0;

	if (!need(c, 8))
		return 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += 8;
	return v;
}

static uint64_t get_len(struct ch_cur *c)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t x;

		if (!need(c, 1))
			return 0;
		x = *c->p++;
		v |= (uint64_t)(x & 0x7f) << shift;
		if (!(x & 0x80))
			return v;
	}
	c->bad = true; /* longer than 10 bytes */
	return 0;
}

const char *ch_get_str(struct ch_cur *c, size_t *len)
{
	uint64_t n = get_len(c);
	const char *s;

	*len = 0;
	if (c->bad || n > CH_MAX_STR || !need(c, (size_t)n)) {
		c->bad = true;
		return "";
	}
	s = (const char *)c->p;
	c->p += n;
	*len = (size_t)n;
	return s;
}

size_t ch_get_arr(struct ch_cur *c, size_t max)
{
	uint64_t n = get_len(c);

	/* every element takes at least one byte: a count beyond the bytes left is a lie */
	if (c->bad || n > max || n > CH_MAX_ARRAY || n > (uint64_t)(c->end - c->p)) {
		c->bad = true;
		return 0;
	}
	return (size_t)n;
}

void ch_series_clear(struct ch_series *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].labels);
		free(v[i].mem);
		v[i].labels = NULL;
		v[i].mem = NULL;
	}
}

void ch_series_free(struct ch_series *v, size_t n)
{
	if (v)
		ch_series_clear(v, n);
	free(v);
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct ap_label_kv *)a)->name, ((const struct ap_label_kv *)b)->name);
}

/* One row of CH_SQL_PICK into e. */
static int parse_one(struct ch_cur *c, struct ch_series *e)
{
	const char *lk[AP_STORE_MAX_LABELS], *lv[AP_STORE_MAX_LABELS];
	size_t lkn[AP_STORE_MAX_LABELS], lvn[AP_STORE_MAX_LABELS];
	const char *vt[2 + 2 * AP_MAX_VALUES];
	size_t vtn[2 + 2 * AP_MAX_VALUES], nk, nv, nvt, total = 0;
	char *m;

	e->id = ch_get_u64(c);
	nk = ch_get_arr(c, AP_STORE_MAX_LABELS);
	for (size_t i = 0; i < nk; i++)
		lk[i] = ch_get_str(c, &lkn[i]);
	nv = ch_get_arr(c, AP_STORE_MAX_LABELS);
	for (size_t i = 0; i < nv; i++)
		lv[i] = ch_get_str(c, &lvn[i]);
	nvt = ch_get_arr(c, 2 + 2 * AP_MAX_VALUES);
	for (size_t i = 0; i < nvt; i++)
		vt[i] = ch_get_str(c, &vtn[i]);
	e->period = ch_get_u64(c);
	e->gk = ch_get_u64(c);
	if (c->bad || nk != nv || nvt < 2 || nvt % 2)
		return -EPROTO;
	for (size_t i = 0; i < nk; i++)
		total += lkn[i] + lvn[i] + 2;
	for (size_t i = 0; i < nvt; i++)
		total += vtn[i] + 1;
	m = e->mem = malloc(total + 1);
	e->labels = calloc(nk ? nk : 1, sizeof(*e->labels));
	if (!m || !e->labels)
		return -ENOMEM;
	e->mode = e->comm = "";
	for (size_t i = 0; i < nk; i++) {
		/* a NUL inside a name or value would make two different strings equal */
		if (memchr(lk[i], 0, lkn[i]) || memchr(lv[i], 0, lvn[i]) || !lkn[i])
			return -EPROTO;
		memcpy(m, lk[i], lkn[i]);
		m[lkn[i]] = 0;
		e->labels[i].name = m;
		m += lkn[i] + 1;
		memcpy(m, lv[i], lvn[i]);
		m[lvn[i]] = 0;
		e->labels[i].value = m;
		m += lvn[i] + 1;
	}
	e->nlabels = nk;
	for (size_t i = 0; i < nvt; i++) {
		if (memchr(vt[i], 0, vtn[i]))
			return -EPROTO;
		memcpy(m, vt[i], vtn[i]);
		m[vtn[i]] = 0;
		e->vt[i] = m;
		m += vtn[i] + 1;
	}
	e->nvalues = nvt / 2 - 1;
	if (nk > 1)
		qsort(e->labels, nk, sizeof(*e->labels), cmp_label);
	for (size_t i = 0; i < nk; i++) {
		if (i && !strcmp(e->labels[i - 1].name, e->labels[i].name))
			return -EPROTO;
		if (!strcmp(e->labels[i].name, "mode"))
			e->mode = e->labels[i].value;
		else if (!strcmp(e->labels[i].name, "comm"))
			e->comm = e->labels[i].value;
	}
	return 0;
}

int ch_parse_series(const void *data, size_t len, size_t max, struct ch_series **out, size_t *n,
		    char *err, size_t errlen)
{
	struct ch_cur c = {data, (const unsigned char *)data + len, false};
	struct ch_series *v = NULL;
	size_t cnt = 0, cap = 0;
	int ret = 0;

	while (ch_cur_more(&c)) {
		if (cnt == max) {
			ret = ap_errf(err, errlen, -E2BIG,
				      "the query selects more than %zu series: narrow it", max);
			break;
		}
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct ch_series *nv = realloc(v, nc * sizeof(*v));

			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		ret = parse_one(&c, &v[cnt]);
		cnt++;
		if (ret)
			break;
	}
	if (!ret && c.bad)
		ret = -EPROTO;
	if (ret) {
		ch_series_free(v, cnt);
		if (ret == -EPROTO)
			ap_errf(err, errlen, ret,
				"ClickHouse sent a malformed series list (byte %zu)",
				(size_t)(c.p - (const unsigned char *)data));
		else if (ret == -ENOMEM)
			ap_errf(err, errlen, ret, "out of memory reading the series");
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

uint32_t ch_gkey_find(const struct ch_gkey *keys, size_t n, uint64_t gk)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (keys[mid].gk == gk)
			return keys[mid].g;
		if (keys[mid].gk < gk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int ch_parse_mrows(const void *data, size_t len, const struct ch_gkey *keys, size_t nkeys,
		   uint64_t key_max, struct ch_mrow **out, size_t *n, uint64_t *late, char *err,
		   size_t errlen)
{
	struct ch_cur c = {data, (const unsigned char *)data + len, false};
	struct ch_mrow *v = NULL;
	size_t cnt = 0, cap = 0;

	*out = NULL;
	*n = 0;
	while (ch_cur_more(&c)) {
		struct ch_mrow r;
		uint64_t gk;

		r.key = ch_get_u64(&c);
		gk = ch_get_u64(&c);
		for (int k = 0; k < AP_MAX_VALUES; k++)
			r.v[k] = ch_get_u64(&c);
		if (c.bad || (key_max && r.key >= key_max)) {
			c.bad = true;
			break;
		}
		r.g = ch_gkey_find(keys, nkeys, gk);
		if (!r.g) {
			++*late;
			continue;
		}
		if (ap_grow_array((void **)&v, &cap, cnt + 1, sizeof(*v))) {
			free(v);
			return ap_errf(err, errlen, -ENOMEM,
				       "out of memory reading ClickHouse's answer");
		}
		v[cnt++] = r;
	}
	if (c.bad) {
		free(v);
		return ap_errf(err, errlen, -EPROTO,
			       "ClickHouse sent malformed rows (byte %zu of %zu)",
			       (size_t)(c.p - (const unsigned char *)data), len);
	}
	*out = v;
	*n = cnt;
	return 0;
}

int ch_parse_trows(const void *data, size_t len, struct ap_store_rows *out, char *err,
		   size_t errlen)
{
	struct ch_cur c = {data, (const unsigned char *)data + len, false};
	size_t cap = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	while (!ret && ch_cur_more(&c)) {
		size_t tn, kn, nh;
		const char *t = ch_get_str(&c, &tn), *k = ch_get_str(&c, &kn);
		struct ap_table_row *r;

		if (c.bad)
			break;
		if (ap_grow_array((void **)&out->rows, &cap, out->n + 1, sizeof(*out->rows))) {
			ret = -ENOMEM;
			break;
		}
		r = &out->rows[out->n];
		memset(r, 0, sizeof(*r));
		r->table = strndup(t, tn);
		r->key = strndup(k, kn);
		out->n++;
		if (!r->table || !r->key) {
			ret = -ENOMEM;
			break;
		}
		for (int x = 0; x < AP_STORE_TABLE_VALUES; x++)
			r->v[x] = ch_get_u64(&c);
		nh = ch_get_arr(&c, AP_HIST_SLOTS);
		for (size_t x = 0; x < nh; x++)
			r->hist[x] = ch_get_u64(&c);
	}
	if (!ret && c.bad)
		ret = ap_errf(err, errlen, -EPROTO, "ClickHouse: malformed answer (rows)");
	else if (ret)
		ap_errf(err, errlen, ret, "out of memory");
	if (ret)
		ap_store_rows_free(out);
	return ret;
}
