// SPDX-License-Identifier: MIT
/*
 * Format names, dispatch, frame display names and file-type detection. The writers live in
 * one file each (folded.c, svg.c, json.c, text.c, pprof_write.c; pprof_read.c reads); this
 * file holds what they share.
 */
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *name;
	enum ap_format fmt;
} format_names[] = {
    {"svg", AP_FORMAT_SVG},   {"folded", AP_FORMAT_FOLDED}, {"pprof", AP_FORMAT_PPROF},
    {"json", AP_FORMAT_JSON}, {"text", AP_FORMAT_TEXT},
};

/* Checked in order, so ".pb.gz" wins over a shorter suffix of the same name. */
static const struct {
	const char *ext;
	enum ap_format fmt;
} format_exts[] = {
    {".svg", AP_FORMAT_SVG},	 {".folded", AP_FORMAT_FOLDED}, {".txt", AP_FORMAT_FOLDED},
    {".pb.gz", AP_FORMAT_PPROF}, {".pprof", AP_FORMAT_PPROF},	{".pb", AP_FORMAT_PPROF},
    {".json", AP_FORMAT_JSON},
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int ap_format_from_name(const char *name, enum ap_format *out)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(format_names); i++) {
		if (strcasecmp(name, format_names[i].name) == 0) {
			*out = format_names[i].fmt;
			return 0;
		}
	}
	return -EINVAL;
}

int ap_format_from_path(const char *path, enum ap_format *out)
{
	size_t len = path ? strlen(path) : 0;

	for (size_t i = 0; i < ARRAY_SIZE(format_exts); i++) {
		size_t elen = strlen(format_exts[i].ext);

		/* a bare ".svg" is a hidden file named svg, not an svg without a name */
		if (len > elen && path[len - elen - 1] != '/' &&
		    strcasecmp(path + len - elen, format_exts[i].ext) == 0) {
			*out = format_exts[i].fmt;
			return 0;
		}
	}
	return -EINVAL;
}

const char *ap_format_name(enum ap_format fmt)
{
	for (size_t i = 0; i < ARRAY_SIZE(format_names); i++)
		if (format_names[i].fmt == fmt)
			return format_names[i].name;
	return "none";
}

int ap_format_write(const struct ap_profile *p, enum ap_format fmt, FILE *out,
		    const struct ap_write_opts *opts)
{
	struct ap_write_opts defaults = {.value_index = -1};

	if (!opts)
		opts = &defaults;
	switch (fmt) {
	case AP_FORMAT_SVG:
		return ap_write_svg(p, out, opts);
	case AP_FORMAT_FOLDED:
		return ap_write_folded(p, out, opts);
	case AP_FORMAT_PPROF:
		return ap_write_pprof(p, out, opts);
	case AP_FORMAT_JSON:
		return ap_write_json(p, out, opts);
	case AP_FORMAT_TEXT:
		return ap_write_text(p, out, opts);
	default:
		return -EINVAL;
	}
}

int ap_format_value_index(const struct ap_profile *p, const struct ap_write_opts *opts)
{
	size_t n = ap_profile_nvalues(p);
	int vi = opts ? opts->value_index : -1;

	if (vi < 0) /* the profile's default weight (CPU: samples), else the last value */
		return (int)ap_profile_default_value(p);
	/* a profile without value types still carries values[0] (hand-built ones do) */
	if ((n == 0 && vi == 0) || (size_t)vi < n)
		return vi;
	return -EINVAL;
}

/* Splits a frame into what its display name is made of. */
static void display_parts(const struct ap_profile *p, uint32_t frame_id, const char **name,
			  const char **module, bool *unknown, bool *kernel)
{
	const struct ap_frame *f = ap_profile_frame(p, frame_id);

	if (!f) {
		*name = "[unknown]";
		*module = "";
		*unknown = true;
		*kernel = false;
		return;
	}
	*name = ap_profile_str(p, f->name);
	*module = ap_profile_str(p, f->module);
	*unknown = !**name || strcmp(*name, "[unknown]") == 0;
	*kernel = f->kind == AP_FRAME_KERNEL;
}

static int display_print(const struct ap_profile *p, uint32_t frame_id, char *buf, size_t len)
{
	const char *name, *module;
	bool unknown, kernel;
	const char *ksuffix;

	display_parts(p, frame_id, &name, &module, &unknown, &kernel);
	ksuffix = kernel ? "_[k]" : "";
	if (!unknown)
		return snprintf(buf, len, "%s%s", name, ksuffix);
	if (*module)
		return snprintf(buf, len, "[unknown] (%s)%s", module, ksuffix);
	return snprintf(buf, len, "[unknown]%s", ksuffix);
}

const char *ap_frame_display_name(const struct ap_profile *p, uint32_t frame_id, char *buf,
				  size_t len)
{
	if (len)
		display_print(p, frame_id, buf, len);
	return buf;
}

char *ap_frame_display_dup(const struct ap_profile *p, uint32_t frame_id)
{
	int n = display_print(p, frame_id, NULL, 0);
	char *s;

	if (n < 0) {
		errno = EINVAL;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	display_print(p, frame_id, s, (size_t)n + 1);
	return s;
}

size_t ap_utf8_seq_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len;
	uint32_t cp;

	if (!n)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0; /* continuation byte, overlong 0xc0/0xc1, or > U+10FFFF lead */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

const char *ap_format_count(uint64_t v, char *buf, size_t len)
{
	char digits[24], out[32];
	int nd = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	size_t o = 0;

	for (int i = 0; i < nd; i++) {
		if (i && (nd - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
	snprintf(buf, len, "%s", out);
	return buf;
}

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for convenience). */
static int read_all(const char *path, char **out, size_t *outlen)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = NULL, *n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			n = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
			if (!n) {
				err = -ENOMEM;
				goto out;
			}
			buf = n;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* Folded text has no control bytes but tab and line ends; a protobuf always has some. */
static bool looks_like_text(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return false;
	}
	return true;
}

static int parse_folded_buf(const char *buf, size_t len, struct ap_profile *p, char *err,
			    size_t errlen)
{
	FILE *in;
	int ret;

	/* fmemopen refuses a zero-sized buffer on older glibc; a blank line reads the same */
	if (len == 0)
		in = fmemopen((void *)"\n", 1, "r");
	else
		in = fmemopen((void *)buf, len, "r");
	if (!in) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		return ret;
	}
	ret = ap_read_folded(in, p, err, errlen);
	fclose(in);
	return ret;
}

int ap_read_profile_file(const char *path, struct ap_profile **out, char *err, size_t errlen)
{
	struct ap_profile *p = NULL;
	char *buf = NULL, msg[512] = "";
	size_t len = 0;
	bool gzip;
	int ret;

	*out = NULL;
	ret = read_all(path, &buf, &len);
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	p = ap_profile_new();
	if (!p) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/*
	 * pprof is gzipped, or a raw protobuf, which always holds control bytes (field tags and
	 * small varints); folded text never does. Text is not tried as pprof: the protobuf
	 * decoder skips unknown fields, so a garbled text file could "succeed" as an empty
	 * profile instead of failing with a line number.
	 */
	gzip = len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b;
	if (!gzip && looks_like_text(buf, len))
		ret = parse_folded_buf(buf, len, p, msg, sizeof(msg));
	else
		ret = ap_read_pprof(buf, len, p, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, msg[0] ? msg : strerror(-ret));
		goto out;
	}
	*out = p;
	p = NULL;
out:
	ap_profile_free(p);
	free(buf);
	return ret;
}
