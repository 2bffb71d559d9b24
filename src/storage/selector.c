// SPDX-License-Identifier: MIT
/*
 * Label selectors in the Prometheus/Parca form: `cpu{host="db1",comm=~"post.*",pid!="1"}`.
 * A selector is user input from a URL: every size is bounded, every error names the byte
 * where it was found, and regexes are checked for what makes glibc's matcher slow or huge
 * (back-references, nested counted repetitions) before they are compiled.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "lib/label_name.h"
#include "storage.h"

#define SEL_MAX_MATCHERS 64
#define SEL_MAX_TEXT (64 * 1024)
/* The product of the counts of {m,n} repetitions in one regex: glibc expands each into
 * copies of the repeated part, so (a{100}){100} costs 10^4 states. */
#define SEL_MAX_REPEAT 1000UL

struct parser {
	const char *s;
	size_t pos, len;
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, const char *what)
{
	if (p->pos >= p->len)
		return ap_errf(p->err, p->errlen, -EINVAL,
			       "selector: %s at the end (byte %zu); the form is "
			       "{name=\"value\",name=~\"regex\",...}",
			       what, p->pos);
	return ap_errf(p->err, p->errlen, -EINVAL,
		       "selector: %s at byte %zu ('%c'); the form is "
		       "{name=\"value\",name=~\"regex\",...}",
		       what, p->pos, p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7f ? p->s[p->pos] : '?');
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]))
		p->pos++;
}

/* A label name; returns its length (0 when none is there). */
static size_t scan_name(struct parser *p)
{
	size_t start = p->pos;

	if (p->pos < p->len && ap_label_name_start(p->s[p->pos]))
		while (p->pos < p->len && ap_label_name_char(p->s[p->pos]))
			p->pos++;
	return p->pos - start;
}

/* A quoted value ("..." or '...') with \" \' \\ \n \t escapes, into a new string. */
static int scan_value(struct parser *p, char **out)
{
	char q, *v;
	size_t n = 0;

	if (p->pos >= p->len || (p->s[p->pos] != '"' && p->s[p->pos] != '\''))
		return perr(p, "expected a double-quoted value");
	q = p->s[p->pos++];
	v = malloc(AP_STORE_MAX_LABEL_VALUE + 1);
	if (!v)
		return -ENOMEM;
	for (;;) {
		char c;

		if (p->pos >= p->len) {
			free(v);
			return perr(p, "unterminated quoted value");
		}
		c = p->s[p->pos];
		if (c == q) {
			p->pos++;
			break;
		}
		if (c == '\\') {
			char e = p->pos + 1 < p->len ? p->s[p->pos + 1] : 0;

			switch (e) {
			case '"': case '\'': case '\\': c = e; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			default:
				p->pos++;
				free(v);
				return perr(p, "unknown escape (use \\\" \\\\ \\n or \\t)");
			}
			p->pos++;
		} else if (c == '\n' || c == 0) {
			free(v);
			return perr(p, "newline or NUL inside a quoted value");
		}
		if (n >= AP_STORE_MAX_LABEL_VALUE) {
			free(v);
			return ap_errf(p->err, p->errlen, -EINVAL,
				       "selector: value longer than %d bytes at byte %zu",
				       AP_STORE_MAX_LABEL_VALUE, p->pos);
		}
		v[n++] = c;
		p->pos++;
	}
	v[n] = 0;
	*out = v;
	return 0;
}

static int re_refuse(char *err, size_t errlen, size_t at, const char *why)
{
	return ap_errf(err, errlen, -EINVAL, "selector: regex of the matcher at byte %zu %s", at,
		       why);
}

/* Refuse what glibc's regcomp handles in exponential time or memory (it takes minutes for
 * `a` followed by 24 `+`, or 24 nested `(...)+`): a repetition of a repetition (`a+*`),
 * repetitions nested deeper than SEL_MAX_NESTING, counted repetitions multiplying past
 * SEL_MAX_REPEAT, and back-references. Prometheus's RE2 takes all of these in linear time;
 * no selector a person writes needs them. */
#define SEL_MAX_NESTING 2
#define SEL_MAX_GROUPS 32
static int check_regex(const char *re, char *err, size_t errlen, size_t at)
{
	int saved[SEL_MAX_GROUPS + 1], level = 0, cur = 0, atom = -1;
	unsigned long product = 1;
	bool after_quant = false;

	for (const char *c = re; *c; c++) {
		switch (*c) {
		case '\\':
			if (c[1] >= '1' && c[1] <= '9')
				return re_refuse(err, errlen, at,
						 "uses a back-reference, which is not supported");
			if (c[1])
				c++;
			atom = 0;
			after_quant = false;
			break;
		case '[': /* a bracket expression is one atom; ']' first is a member */
			c++;
			if (*c == '^')
				c++;
			if (*c == ']')
				c++;
			while (*c && *c != ']')
				c++;
			if (!*c)
				return 0; /* "Unmatched [": regcomp refuses it */
			atom = 0;
			after_quant = false;
			break;
		case '(':
			if (level >= SEL_MAX_GROUPS)
				return re_refuse(err, errlen, at, "nests groups too deep");
			saved[level++] = cur;
			cur = 0;
			atom = -1;
			after_quant = false;
			break;
		case ')':
			if (!level) { /* glibc takes an unmatched ')' as a character */
				atom = 0;
				after_quant = false;
				break;
			}
			atom = cur;
			cur = saved[--level] > cur ? saved[level] : cur;
			after_quant = false;
			break;
		case '*': case '+': case '?': case '{':
			if (*c == '{') {
				char *end;
				unsigned long lo = strtoul(c + 1, &end, 10), hi = lo;

				if (end == c + 1) { /* a literal brace */
					atom = 0;
					after_quant = false;
					break;
				}
				if (*end == ',')
					hi = end[1] == '}' ? lo : strtoul(end + 1, &end, 10);
				hi = hi < lo ? lo : hi ? hi : 1;
				if (hi > SEL_MAX_REPEAT || (product *= hi) > SEL_MAX_REPEAT)
					return re_refuse(err, errlen, at,
							 "repeats too much (counted repetitions "
							 "multiply past 1000); use * or + instead");
				while (*c && *c != '}')
					c++;
				if (!*c)
					return 0; /* "Unmatched {": regcomp refuses it */
			}
			if (after_quant)
				return re_refuse(err, errlen, at,
						 "repeats a repetition (like a+* or a{2}+)");
			if (atom < 0) { /* nothing to repeat: glibc may take it as a character */
				atom = 0;
				break;
			}
			if (++atom > SEL_MAX_NESTING)
				return re_refuse(err, errlen, at,
						 "nests repetitions more than 2 deep (like "
						 "((a+)+)+)");
			cur = atom > cur ? atom : cur;
			after_quant = true;
			break;
		case '|':
			atom = -1;
			after_quant = false;
			break;
		default:
			atom = 0;
			after_quant = false;
		}
	}
	return 0;
}

static int add_matcher(struct ap_selector *s, char *name, char *value, enum ap_match_op op,
		       char *err, size_t errlen, size_t at)
{
	struct ap_matcher *m;
	int ret;

	if (s->n >= SEL_MAX_MATCHERS) {
		free(name);
		free(value);
		return ap_errf(err, errlen, -EINVAL,
			       "selector: more than %d matchers (at byte %zu)", SEL_MAX_MATCHERS,
			       at);
	}
	if (!s->m) {
		s->m = calloc(SEL_MAX_MATCHERS, sizeof(*s->m));
		if (!s->m) {
			free(name);
			free(value);
			return -ENOMEM;
		}
	}
	m = &s->m[s->n];
	m->name = name;
	m->value = value;
	m->op = op;
	m->compiled = false;
	s->n++;
	if (op == AP_MATCH_RE || op == AP_MATCH_NRE) {
		size_t n = strlen(value);
		char *anchored;

		ret = check_regex(value, err, errlen, at);
		if (ret)
			return ret;
		anchored = malloc(n + 5);
		if (!anchored)
			return -ENOMEM;
		memcpy(anchored, "^(", 2);
		memcpy(anchored + 2, value, n);
		memcpy(anchored + 2 + n, ")$", 3);
		ret = regcomp(&m->re, anchored, REG_EXTENDED | REG_NOSUB);
		free(anchored);
		if (ret) {
			char why[128];

			regerror(ret, NULL, why, sizeof(why));
			return ap_errf(err, errlen, -EINVAL,
				       "selector: bad regex \"%s\" for %s at byte %zu: %s", value,
				       name, at, why);
		}
		m->compiled = true;
	}
	return 0;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static int parse(struct parser *p, struct ap_selector *out)
{
	size_t n, start;
	int ret;

	skip_ws(p);
	/* a bare profile type: `cpu`, `cpu{...}`, or Pyroscope's
	 * `process_cpu:cpu:nanoseconds:cpu:nanoseconds{...}` (the part before ':' is the mode) */
	start = p->pos;
	if (scan_name(p)) {
		size_t end = p->pos;
		char *mode, *name;

		if (p->pos < p->len && p->s[p->pos] == ':')
			while (p->pos < p->len &&
			       (ap_label_name_char(p->s[p->pos]) || p->s[p->pos] == ':'))
				p->pos++;
		n = end - start;
		if (n > AP_STORE_MAX_LABEL_VALUE)
			return perr(p, "profile type too long");
		mode = dup_n(p->s + start, n);
		name = strdup("mode");
		if (!mode || !name) {
			free(mode);
			free(name);
			return -ENOMEM;
		}
		ret = add_matcher(out, name, mode, AP_MATCH_EQ, p->err, p->errlen, start);
		if (ret)
			return ret;
		skip_ws(p);
	}
	if (p->pos >= p->len)
		return 0;
	if (p->s[p->pos] != '{')
		return perr(p, "expected '{'");
	p->pos++;
	for (;;) {
		enum ap_match_op op;
		char *name, *value = NULL;
		size_t at;

		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			break;
		}
		at = p->pos;
		n = scan_name(p);
		if (!n)
			return perr(p, "expected a label name ([A-Za-z_][A-Za-z0-9_.]*) or '}'");
		if (n > AP_STORE_MAX_LABEL_NAME) {
			p->pos = at;
			return perr(p, "label name too long");
		}
		skip_ws(p);
		if (p->pos + 1 < p->len && p->s[p->pos] == '=' && p->s[p->pos + 1] == '~')
			op = AP_MATCH_RE, p->pos += 2;
		else if (p->pos + 1 < p->len && p->s[p->pos] == '!' && p->s[p->pos + 1] == '~')
			op = AP_MATCH_NRE, p->pos += 2;
		else if (p->pos + 1 < p->len && p->s[p->pos] == '!' && p->s[p->pos + 1] == '=')
			op = AP_MATCH_NE, p->pos += 2;
		else if (p->pos < p->len && p->s[p->pos] == '=')
			op = AP_MATCH_EQ, p->pos += 1;
		else
			return perr(p, "expected an operator (=, !=, =~ or !~)");
		skip_ws(p);
		ret = scan_value(p, &value);
		if (ret)
			return ret;
		name = dup_n(p->s + at, n);
		if (!name) {
			free(value);
			return -ENOMEM;
		}
		ret = add_matcher(out, name, value, op, p->err, p->errlen, at);
		if (ret)
			return ret;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			break;
		}
		return perr(p, "expected ',' or '}'");
	}
	skip_ws(p);
	if (p->pos < p->len)
		return perr(p, "unexpected text after '}'");
	return 0;
}

int ap_selector_parse(const char *text, struct ap_selector *out, char *err, size_t errlen)
{
	struct parser p = { .s = text ? text : "", .err = err, .errlen = errlen };
	int ret;

	out->m = NULL;
	out->n = 0;
	p.len = strnlen(p.s, SEL_MAX_TEXT + 1);
	if (p.len > SEL_MAX_TEXT)
		return ap_errf(err, errlen, -EINVAL, "selector: longer than %d bytes",
			       SEL_MAX_TEXT);
	ret = parse(&p, out);
	if (ret) {
		if (ret == -ENOMEM)
			ap_errf(err, errlen, ret, "selector: out of memory");
		ap_selector_free(out);
	}
	return ret;
}

void ap_selector_free(struct ap_selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->m[i].name);
		free(s->m[i].value);
		if (s->m[i].compiled)
			regfree(&s->m[i].re);
	}
	free(s->m);
	s->m = NULL;
	s->n = 0;
}

bool ap_selector_match(const struct ap_selector *s, const struct ap_label_kv *labels, size_t n)
{
	if (!s)
		return true;
	for (size_t i = 0; i < s->n; i++) {
		const struct ap_matcher *m = &s->m[i];
		const char *v = "";
		bool hit;

		for (size_t j = 0; j < n; j++)
			if (!strcmp(labels[j].name, m->name)) {
				v = labels[j].value ? labels[j].value : "";
				break;
			}
		switch (m->op) {
		case AP_MATCH_EQ: hit = !strcmp(v, m->value); break;
		case AP_MATCH_NE: hit = strcmp(v, m->value) != 0; break;
		case AP_MATCH_RE: hit = m->compiled && !regexec(&m->re, v, 0, NULL, 0); break;
		case AP_MATCH_NRE: hit = m->compiled && regexec(&m->re, v, 0, NULL, 0) != 0; break;
		default: hit = false;
		}
		if (!hit)
			return false;
	}
	return true;
}

const char *ap_selector_mode(const struct ap_selector *s)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->m[i].op == AP_MATCH_EQ && !strcmp(s->m[i].name, "mode"))
			return s->m[i].value;
	return NULL;
}
