// SPDX-License-Identifier: MIT
/* Strict JSON parser: recursive descent over a bounded nesting depth. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_parse.h"

struct parser {
	const char *p, *end, *line_start;
	uint32_t line;
	char *err;
	size_t errlen;
	int error; /* -EINVAL or -ENOMEM once failed */
	size_t nodes, max_nodes; /* values parsed so far; 0 = no limit */
};

static void fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct parser *ps, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (ps->error)
		return;
	ps->error = -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "line %u, column %u: %s", ps->line,
			 (unsigned)(ps->p - ps->line_start) + 1, msg);
}

static void oom(struct parser *ps)
{
	if (ps->error)
		return;
	ps->error = -ENOMEM;
	if (ps->err && ps->errlen)
		snprintf(ps->err, ps->errlen, "out of memory");
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == '\n') {
			ps->line++;
			ps->line_start = ps->p + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		ps->p++;
	}
}

static void free_value(struct ap_json *j)
{
	if (j->type == AP_JSON_ARRAY || j->type == AP_JSON_OBJECT) {
		for (size_t i = 0; i < j->len; i++) {
			free_value(&j->items[i]);
			if (j->keys)
				free(j->keys[i]);
		}
		free(j->items);
		free(j->keys);
	}
	free(j->str);
	memset(j, 0, sizeof(*j));
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static int hex4(struct parser *ps, uint32_t *out)
{
	uint32_t v = 0;
	if (ps->end - ps->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the valid UTF-8 sequence at p (0 when invalid). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A string starting after its opening quote; the decoded copy is never longer. */
static char *parse_string(struct parser *ps, size_t *len)
{
	const char *start = ps->p;
	char *out, *o;

	while (ps->p < ps->end && *ps->p != '"')
		ps->p += *ps->p == '\\' && ps->p + 1 < ps->end ? 2 : 1;
	if (ps->p >= ps->end) {
		fail(ps, "unterminated string");
		return NULL;
	}
	out = o = malloc((size_t)(ps->p - start) + 1);
	if (!out) {
		oom(ps);
		return NULL;
	}
	ps->p = start;
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			fail(ps, "control character in string");
			goto bad;
		}
		if (c == '\\') {
			uint32_t cp, lo;
			ps->p++;
			switch (*ps->p++) {
			case '"':
				*o++ = '"';
				break;
			case '\\':
				*o++ = '\\';
				break;
			case '/':
				*o++ = '/';
				break;
			case 'b':
				*o++ = '\b';
				break;
			case 'f':
				*o++ = '\f';
				break;
			case 'n':
				*o++ = '\n';
				break;
			case 'r':
				*o++ = '\r';
				break;
			case 't':
				*o++ = '\t';
				break;
			case 'u':
				if (hex4(ps, &cp)) {
					fail(ps, "bad \\u escape");
					goto bad;
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (!literal(ps, "\\u") || hex4(ps, &lo) || lo < 0xdc00 ||
					    lo > 0xdfff) {
						fail(ps, "unpaired surrogate in \\u escape");
						goto bad;
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					fail(ps, "unpaired surrogate in \\u escape");
					goto bad;
				}
				o += put_utf8(o, cp);
				break;
			default:
				ps->p--;
				fail(ps, "bad escape");
				goto bad;
			}
			continue;
		}
		{
			size_t n =
			    utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!n) {
				fail(ps, "invalid UTF-8 in string");
				goto bad;
			}
			memcpy(o, ps->p, n);
			o += n;
			ps->p += n;
		}
	}
	ps->p++; /* closing quote */
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
bad:
	free(out);
	return NULL;
}

static int parse_number(struct parser *ps, struct ap_json *j)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0') {
		ps->p++;
	} else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		fail(ps, "invalid number");
		return -1;
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail(ps, "invalid number");
			return -1;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail(ps, "invalid number");
			return -1;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	j->type = AP_JSON_NUMBER;
	/* not strndup(): the input need not be NUL-terminated, and a checker that treats the
	 * source as a C string (ASan's strict_string_checks) would read past it */
	j->str = malloc((size_t)(ps->p - s) + 1);
	if (j->str) {
		memcpy(j->str, s, (size_t)(ps->p - s));
		j->str[ps->p - s] = '\0';
	}
	if (!j->str) {
		oom(ps);
		return -1;
	}
	return 0;
}

static int parse_value(struct parser *ps, struct ap_json *j, int depth);

static int push_item(struct parser *ps, struct ap_json *j, size_t *cap, char *key)
{
	if (j->len == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct ap_json *items = realloc(j->items, nc * sizeof(*items));
		char **keys;
		if (!items) {
			free(key);
			oom(ps);
			return -1;
		}
		j->items = items;
		if (j->type == AP_JSON_OBJECT) {
			keys = realloc(j->keys, nc * sizeof(*keys));
			if (!keys) {
				free(key);
				oom(ps);
				return -1;
			}
			j->keys = keys;
		}
		*cap = nc;
	}
	memset(&j->items[j->len], 0, sizeof(j->items[0]));
	if (j->type == AP_JSON_OBJECT)
		j->keys[j->len] = key;
	j->len++;
	return 0;
}

static int parse_container(struct parser *ps, struct ap_json *j, int depth)
{
	bool object = *ps->p == '{';
	char close = object ? '}' : ']';
	size_t cap = 0;

	if (depth >= AP_JSON_MAX_DEPTH) {
		fail(ps, "nesting deeper than %d", AP_JSON_MAX_DEPTH);
		return -1;
	}
	j->type = object ? AP_JSON_OBJECT : AP_JSON_ARRAY;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		size_t klen;
		skip_ws(ps);
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a string key");
				return -1;
			}
			ps->p++;
			key = parse_string(ps, &klen);
			if (!key)
				return -1;
			/* the duplicate check is linear: bound it so that it stays cheap */
			if (j->len >= AP_JSON_MAX_KEYS) {
				fail(ps, "object with more than %d keys", AP_JSON_MAX_KEYS);
				free(key);
				return -1;
			}
			if (strlen(key) != klen || ap_json_get(j, key)) {
				fail(ps, "duplicate or invalid key \"%.40s\"", key);
				free(key);
				return -1;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(key);
				fail(ps, "expected ':'");
				return -1;
			}
			ps->p++;
			skip_ws(ps);
		}
		if (push_item(ps, j, &cap, key) ||
		    parse_value(ps, &j->items[j->len - 1], depth + 1))
			return -1;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		fail(ps, "expected ',' or '%c'", close);
		return -1;
	}
}

static int parse_value(struct parser *ps, struct ap_json *j, int depth)
{
	skip_ws(ps);
	j->line = ps->line;
	j->column = (uint32_t)(ps->p - ps->line_start) + 1;
	/* each value costs ~100 bytes of tree for as little as 2 bytes of text */
	if (ps->max_nodes && ++ps->nodes > ps->max_nodes) {
		fail(ps, "more than %zu values", ps->max_nodes);
		return -1;
	}
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return -1;
	}
	switch (*ps->p) {
	case '{':
	case '[':
		return parse_container(ps, j, depth);
	case '"':
		ps->p++;
		j->type = AP_JSON_STRING;
		j->str = parse_string(ps, &j->len);
		return j->str ? 0 : -1;
	case 't':
	case 'f':
		j->type = AP_JSON_BOOL;
		j->boolean = *ps->p == 't';
		if (literal(ps, j->boolean ? "true" : "false"))
			return 0;
		break;
	case 'n':
		j->type = AP_JSON_NULL;
		if (literal(ps, "null"))
			return 0;
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, j);
		break;
	}
	fail(ps, "unexpected character '%c'", *ps->p);
	return -1;
}

struct ap_json *ap_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	return ap_json_parse_max(text, len, 0, err, errlen);
}

struct ap_json *ap_json_parse_max(const char *text, size_t len, size_t max_values, char *err,
				  size_t errlen)
{
	struct parser ps = { .p = text,
			     .end = text + len,
			     .line_start = text,
			     .line = 1,
			     .err = err,
			     .errlen = errlen,
			     .max_nodes = max_values };
	struct ap_json *root = calloc(1, sizeof(*root));

	if (!root) {
		errno = ENOMEM;
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_value(&ps, root, 0) == 0) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			fail(&ps, "trailing characters after the value");
	}
	if (ps.error) {
		ap_json_free(root);
		errno = -ps.error;
		return NULL;
	}
	return root;
}

void ap_json_free(struct ap_json *root)
{
	if (!root)
		return;
	free_value(root);
	free(root);
}

const struct ap_json *ap_json_get(const struct ap_json *j, const char *key)
{
	if (!j || j->type != AP_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->len; i++)
		if (j->keys[i] && strcmp(j->keys[i], key) == 0)
			return &j->items[i];
	return NULL;
}

static int parse_int_text(const char *s, bool allow_hex, bool neg_ok, uint64_t *mag, bool *neg)
{
	uint64_t v = 0;
	unsigned base = 10;

	*neg = false;
	if (*s == '-') {
		if (!neg_ok)
			return -ERANGE;
		*neg = true;
		s++;
	}
	if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*mag = v;
	return 0;
}

static int json_int(const struct ap_json *j, bool neg_ok, uint64_t *mag, bool *neg)
{
	if (!j)
		return -EINVAL;
	if (j->type == AP_JSON_NUMBER) {
		if (strpbrk(j->str, ".eE"))
			return -EINVAL;
		return parse_int_text(j->str, false, neg_ok, mag, neg);
	}
	if (j->type == AP_JSON_STRING && strlen(j->str) == j->len)
		return parse_int_text(j->str, true, neg_ok, mag, neg);
	return -EINVAL;
}

int ap_json_u64(const struct ap_json *j, uint64_t *out)
{
	uint64_t v;
	bool neg;
	int ret = json_int(j, true, &v, &neg);
	if (ret)
		return ret;
	if (neg && v != 0)
		return -ERANGE;
	*out = v;
	return 0;
}

int ap_json_i64(const struct ap_json *j, int64_t *out)
{
	uint64_t v;
	bool neg;
	int ret = json_int(j, true, &v, &neg);
	if (ret)
		return ret;
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > INT64_MAX)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

const char *ap_json_type_name(enum ap_json_type t)
{
	static const char *const names[] = { "null",   "boolean", "number",
					     "string", "array",	  "object" };
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}
