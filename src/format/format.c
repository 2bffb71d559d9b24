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
    {"json", AP_FORMAT_JSON}, {"text", AP_FORMAT_TEXT}, {"trace", AP_FORMAT_TRACE},
};

/* Checked in order, so ".pb.gz" wins over a shorter suffix of the same name. */
static const struct {
	const char *ext;
	enum ap_format fmt;
} format_exts[] = {
    {".svg", AP_FORMAT_SVG},	 {".folded", AP_FORMAT_FOLDED}, {".txt", AP_FORMAT_FOLDED},
    {".pb.gz", AP_FORMAT_PPROF}, {".pprof", AP_FORMAT_PPROF},	{".pb", AP_FORMAT_PPROF},
    {".trace.json", AP_FORMAT_TRACE}, {".perfetto.json", AP_FORMAT_TRACE},
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
	case AP_FORMAT_TRACE: /* the GPU collector writes it from its timeline */
		return -ENOTSUP;
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

const char *ap_format_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	while (u + 1 < ARRAY_SIZE(units) && v >= 1024) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	return buf;
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

/* Reads a whole file into a malloc'ed buffer (NUL-terminated for convenience): a regular file,
 * a pipe or stdin ("-"), never a device (/dev/zero would never end), at most `max` bytes. */
static int read_all(const char *path, uint64_t max, char **out, size_t *outlen, char *err,
		    size_t errlen)
{
	bool is_stdin = strcmp(path, "-") == 0;
	size_t cap = 64 * 1024, len = 0;
	char szbuf[32];
	char *buf = NULL, *n;
	struct stat st;
	int fd, ret = 0;

	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (S_ISDIR(st.st_mode) || (!is_stdin && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
		snprintf(err, errlen,
			 "%s: not a regular file (a %s); give a profile file, or '-' to read "
			 "stdin",
			 path, S_ISDIR(st.st_mode) ? "directory" : "device or socket");
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size > max)
			goto too_big;
		cap = (size_t)st.st_size + 2;
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto nomem;
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			size_t ncap = cap * 2 > max + 2 ? (size_t)max + 2 : cap * 2;

			if (ncap <= cap)
				goto too_big;
			n = realloc(buf, ncap);
			if (!n) {
				ret = -ENOMEM;
				goto nomem;
			}
			buf = n;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			snprintf(err, errlen, "%s: read error: %s", path, strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max)
			goto too_big;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	goto out;
too_big:
	ret = -EFBIG;
	snprintf(err, errlen, "%s: larger than %s; refusing (raise with --max-size)", path,
		 ap_format_size(max, szbuf, sizeof(szbuf)));
	goto out;
nomem:
	snprintf(err, errlen, "%s: out of memory", path);
out:
	free(buf);
	if (!is_stdin)
		close(fd);
	return ret;
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

#define ACCEPTED_FORMATS                                                                          \
	"aperture report reads pprof (.pb.gz or raw protobuf), Aperture JSON (--format json) and " \
	"folded text"

/* What the first bytes say the file is. Text is not tried as pprof: the protobuf decoder
 * skips unknown fields, so a garbled text file could "succeed" as an empty profile instead of
 * failing with a line number; pprof is gzipped, or a raw protobuf, which always holds control
 * bytes (field tags and small varints), and folded text never does. */
enum sniffed { SNIFF_PPROF, SNIFF_JSON, SNIFF_FOLDED, SNIFF_XML };

static enum sniffed sniff(const char *buf, size_t len)
{
	size_t i = 0;

	if (len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b)
		return SNIFF_PPROF;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		i = 3; /* a UTF-8 byte order mark some editors add */
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < len && buf[i] == '{')
		return SNIFF_JSON;
	if (i < len && buf[i] == '<')
		return SNIFF_XML;
	return looks_like_text(buf, len) ? SNIFF_FOLDED : SNIFF_PPROF;
}

int ap_read_profile_file(const char *path, struct ap_profile **out, char *err, size_t errlen)
{
	return ap_read_profile_file_limited(path, NULL, out, err, errlen);
}

int ap_read_profile_file_limited(const char *path, const struct ap_read_limits *limits,
				 struct ap_profile **out, char *err, size_t errlen)
{
	uint64_t max_input = limits && limits->max_input ? limits->max_input : AP_FORMAT_MAX_INPUT;
	uint64_t max_inflated =
	    limits && limits->max_inflated ? limits->max_inflated : AP_FORMAT_MAX_INFLATED;
	struct ap_profile *p = NULL;
	char *buf = NULL, msg[512] = "";
	size_t len = 0;
	enum sniffed kind;
	int ret;

	*out = NULL;
	if (max_input > SIZE_MAX / 4)
		max_input = SIZE_MAX / 4;
	ret = read_all(path, max_input, &buf, &len, err, errlen);
	if (ret)
		return ret;
	p = ap_profile_new();
	if (!p) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	kind = sniff(buf, len);
	switch (kind) {
	case SNIFF_XML:
		ret = -EINVAL;
		snprintf(msg, sizeof(msg),
			 "starts with '<': an SVG flamegraph or other XML/HTML, which is an output "
			 "format only; %s",
			 ACCEPTED_FORMATS);
		break;
	case SNIFF_JSON:
		ret = ap_read_json(buf, len, max_inflated, p, msg, sizeof(msg));
		if (ret == -EINVAL) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof(msg) - l,
				 " (read as Aperture JSON, see docs/json-format.md; other JSON "
				 "formats are not read)");
		}
		break;
	case SNIFF_FOLDED:
		ret = parse_folded_buf(buf, len, p, msg, sizeof(msg));
		if (ret == -EINVAL) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof(msg) - l, " (read as folded text; %s)",
				 ACCEPTED_FORMATS);
		}
		break;
	default:
		ret = ap_read_pprof_limited(buf, len, max_inflated, p, msg, sizeof(msg));
		/* a binary file that is not gzip: say what else we would have taken */
		if (ret == -EINVAL && !(len >= 2 && (unsigned char)buf[0] == 0x1f &&
					(unsigned char)buf[1] == 0x8b)) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof(msg) - l, " (binary, not gzip; %s)",
				 ACCEPTED_FORMATS);
		}
		break;
	}
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
