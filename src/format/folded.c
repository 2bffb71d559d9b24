// SPDX-License-Identifier: MIT
/*
 * Folded stacks, the text format of flamegraph.pl and inferno: one line per distinct stack,
 * "comm;root;...;leaf COUNT". ';' separates frames and the count follows the last space, so
 * names may hold spaces but not ';' or line breaks; those are replaced when writing.
 */
#include "flame_internal.h"
#include "format.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lib/parse.h"

#define KERNEL_SUFFIX "_[k]"
#define KERNEL_MODULE "[kernel.kallsyms]"
#define UNKNOWN_PREFIX "[unknown] ("

struct sbuf {
	char *s;
	size_t len, cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *ns;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns)
			return -ENOMEM;
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

/* ';' would split the frame and control bytes would break the line: replace them in place. */
void ap_folded_sanitize(char *s)
{
	for (; *s; s++) {
		if (*s == ';')
			*s = ':';
		else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	}
}

struct folded_line {
	char *text;
	uint64_t weight;
};

static int line_cmp(const void *a, const void *b)
{
	const struct folded_line *x = a, *y = b;

	return strcmp(x->text, y->text);
}

/* Builds "comm;root;...;leaf" for one sample. names[] holds sanitized frame names. */
static int build_line(const struct ap_profile *p, const struct ap_sample *s, char **names,
		      struct sbuf *b)
{
	const uint32_t *frames;
	const char *comm;
	char *copy;
	size_t n;
	int err;

	b->len = 0;
	comm = ap_profile_str(p, s->comm);
	copy = strdup(*comm ? comm : "[unknown]");
	if (!copy)
		return -ENOMEM;
	ap_folded_sanitize(copy);
	err = sbuf_add(b, copy, strlen(copy));
	free(copy);
	if (err)
		return err;
	frames = ap_profile_stack(p, s->stack, &n);
	/* leaf first in the model, root first on the line */
	for (size_t i = n; i-- > 0;) {
		const char *name =
		    frames[i] < ap_profile_nframes(p) ? names[frames[i]] : "[unknown]";

		if (sbuf_add(b, ";", 1) || sbuf_add(b, name, strlen(name)))
			return -ENOMEM;
	}
	return 0;
}

int ap_write_folded(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts)
{
	size_t nframes = ap_profile_nframes(p), nsamples = ap_profile_nsamples(p), nlines = 0;
	struct folded_line *lines = NULL;
	struct sbuf b = {0};
	char **names = NULL;
	int vi, err = 0;

	vi = ap_format_value_index(p, opts);
	if (vi < 0)
		return vi;
	names = calloc(nframes ? nframes : 1, sizeof(*names));
	lines = calloc(nsamples ? nsamples : 1, sizeof(*lines));
	if (!names || !lines) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nframes; i++) {
		names[i] = ap_frame_display_dup(p, (uint32_t)i);
		if (!names[i]) {
			err = -ENOMEM;
			goto out;
		}
		ap_folded_sanitize(names[i]);
	}
	for (size_t i = 0; i < nsamples; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);

		if (!s->values[vi])
			continue;
		err = build_line(p, s, names, &b);
		if (err)
			goto out;
		lines[nlines].text = strdup(b.s);
		if (!lines[nlines].text) {
			err = -ENOMEM;
			goto out;
		}
		lines[nlines++].weight = s->values[vi];
	}
	/* samples that differ only in pid/tid/labels fold to the same line: sort, then merge */
	if (nlines > 1) /* qsort(NULL, 0) is UB */
		qsort(lines, nlines, sizeof(*lines), line_cmp);
	for (size_t i = 0; i < nlines;) {
		uint64_t w = lines[i].weight;
		size_t j = i + 1;

		for (; j < nlines && strcmp(lines[j].text, lines[i].text) == 0; j++)
			w = ap_sat_add(w, lines[j].weight);
		fprintf(out, "%s %llu\n", lines[i].text, (unsigned long long)w);
		i = j;
	}
	err = ap_stream_status(out);
out:
	for (size_t i = 0; lines && i < nlines; i++)
		free(lines[i].text);
	for (size_t i = 0; names && i < nframes; i++)
		free(names[i]);
	free(lines);
	free(names);
	free(b.s);
	return err;
}

/* One root-first field of a folded line -> frame id (UINT32_MAX on ENOMEM). */
static uint32_t parse_frame(struct ap_profile *p, const char *s, size_t len)
{
	size_t klen = strlen(KERNEL_SUFFIX), plen = strlen(UNKNOWN_PREFIX);
	struct ap_frame f = {0};
	const char *module = "";
	size_t mlen = 0;

	if (len > klen && memcmp(s + len - klen, KERNEL_SUFFIX, klen) == 0) {
		f.kind = AP_FRAME_KERNEL;
		len -= klen;
		module = KERNEL_MODULE;
		mlen = strlen(KERNEL_MODULE);
	}
	/* "[unknown] (module)" is how unresolved frames are written: keep the module apart */
	if (len > plen + 1 && memcmp(s, UNKNOWN_PREFIX, plen) == 0 && s[len - 1] == ')') {
		module = s + plen;
		mlen = len - plen - 1;
		len = strlen("[unknown]");
	}
	f.name = ap_profile_intern_n(p, s, len);
	f.module = ap_profile_intern_n(p, module, mlen);
	if (f.name == UINT32_MAX || f.module == UINT32_MAX)
		return UINT32_MAX;
	return ap_profile_add_frame(p, &f);
}

struct id_buf {
	uint32_t *ids;
	size_t n, cap;
};

static int id_push(struct id_buf *b, uint32_t id)
{
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		uint32_t *n = realloc(b->ids, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->ids = n;
		b->cap = ncap;
	}
	b->ids[b->n++] = id;
	return 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Parses one line (len bytes, NUL-terminated). Returns 0, -EINVAL with a reason, or -ENOMEM. */
static int parse_line(struct ap_profile *p, char *line, size_t len, struct id_buf *ids, char *why,
		      size_t whylen)
{
	struct ap_sample smp = {0};
	size_t field = 0, stack_len;
	char *sp, *start, *end;
	uint64_t count;

	if (memchr(line, '\0', len)) {
		snprintf(why, whylen, "NUL byte (binary data?)");
		return -EINVAL;
	}
	while (len && is_blank(line[len - 1]))
		line[--len] = '\0';
	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(why, whylen, "control character 0x%02x at column %zu", c, i + 1);
			return -EINVAL;
		}
	}
	sp = strrchr(line, ' ');
	if (!sp) {
		snprintf(why, whylen, "missing count (expected \"comm;frame;... COUNT\")");
		return -EINVAL;
	}
	if (ap_parse_u64(sp + 1, 0, UINT64_MAX, &count)) {
		snprintf(why, whylen, "invalid count \"%.40s\"", sp + 1);
		return -EINVAL;
	}
	stack_len = (size_t)(sp - line);
	while (stack_len && is_blank(line[stack_len - 1]))
		stack_len--;
	if (!stack_len) {
		snprintf(why, whylen, "empty stack before the count");
		return -EINVAL;
	}
	line[stack_len] = '\0';

	ids->n = 0;
	for (start = line;; start = end + 1) {
		end = strchr(start, ';');
		if (!end)
			end = line + stack_len;
		field++;
		if (end == start) {
			snprintf(why, whylen, "empty name in field %zu", field);
			return -EINVAL;
		}
		if (field == 1) {
			smp.comm = ap_profile_intern_n(p, start, (size_t)(end - start));
			if (smp.comm == UINT32_MAX)
				goto nomem;
		} else {
			uint32_t id;

			/* the pprof writer and reader take no deeper stack: refuse it here rather
			 * than write a file that does not read back */
			if (ids->n == AP_FORMAT_MAX_STACK_DEPTH) {
				snprintf(why, whylen, "stack deeper than %d frames",
					 AP_FORMAT_MAX_STACK_DEPTH);
				return -EINVAL;
			}
			id = parse_frame(p, start, (size_t)(end - start));
			if (id == UINT32_MAX || id_push(ids, id))
				goto nomem;
		}
		if (end == line + stack_len)
			break;
	}
	if (!count)
		return 0; /* valid, but a zero sample adds nothing */
	/* the line is root first, the model leaf first */
	for (size_t i = 0, j = ids->n; i + 1 < j; i++, j--) {
		uint32_t t = ids->ids[i];

		ids->ids[i] = ids->ids[j - 1];
		ids->ids[j - 1] = t;
	}
	smp.stack = ap_profile_add_stack(p, ids->ids, ids->n);
	if (smp.stack == UINT32_MAX)
		goto nomem;
	smp.values[0] = count;
	if (ap_profile_add_sample(p, &smp))
		goto nomem;
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -ENOMEM;
}

int ap_read_folded(FILE *in, struct ap_profile *p, char *err, size_t errlen)
{
	struct id_buf ids = {0};
	char *line = NULL, why[160];
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int ret = 0;

	if (ap_profile_nvalues(p) == 0) {
		ret = ap_profile_add_value_type(p, "samples", "count");
		if (ret) {
			snprintf(err, errlen, "out of memory");
			return ret;
		}
	}
	errno = 0;
	while ((n = getline(&line, &cap, in)) >= 0) {
		lineno++;
		ret = parse_line(p, line, (size_t)n, &ids, why, sizeof(why));
		if (ret) {
			snprintf(err, errlen, "line %zu: %s", lineno, why);
			goto out;
		}
	}
	if (ferror(in)) {
		ret = errno ? -errno : -EIO;
		snprintf(err, errlen, "line %zu: read error: %s", lineno + 1, strerror(-ret));
	}
out:
	free(line);
	free(ids.ids);
	return ret;
}
