/* SPDX-License-Identifier: MIT */
/* Output and input formats of profiles. Every writer reads only the profile model. */
#ifndef AP_FORMAT_H
#define AP_FORMAT_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/profile.h"

/* 0 when everything written to `out` reached it; else why not: fflush's errno (ENOSPC on a
 * full disk, so the user is told that and not "I/O error"), -EIO when unknown. */
static inline int ap_stream_status(FILE *out)
{
	errno = 0;
	if (fflush(out) == 0 && !ferror(out))
		return 0;
	return errno ? -errno : -EIO;
}

enum ap_format {
	AP_FORMAT_NONE = 0,
	AP_FORMAT_SVG,	  /* interactive flamegraph, self-contained */
	AP_FORMAT_FOLDED, /* comm;root;...;leaf COUNT (flamegraph.pl / inferno) */
	AP_FORMAT_PPROF,  /* gzipped profile.proto */
	AP_FORMAT_JSON,	  /* documented in docs/json-format.md */
	AP_FORMAT_TEXT,	  /* top-N table for humans */
	AP_FORMAT_TRACE,  /* Chrome trace event JSON timeline: only the GPU mode writes it
			   * (docs/gpu.md); ap_format_write() answers -ENOTSUP */
};

struct ap_write_opts {
	int value_index; /* value that weights folded/svg/text output; -1 = profile default */
	size_t top_n;	 /* rows in the text table; 0 = default (25) */
	const char *title; /* flamegraph title; NULL = derived from the profile's "mode" meta */
};

/* "svg", "folded", "pprof", "json", "text", "trace" -> format. Returns 0 or -EINVAL. */
int ap_format_from_name(const char *name, enum ap_format *out);
/* By file extension: .svg, .folded/.txt, .pb.gz/.pprof/.pb, .trace.json/.perfetto.json (trace),
 * .json. Returns 0 or -EINVAL. */
int ap_format_from_path(const char *path, enum ap_format *out);
const char *ap_format_name(enum ap_format fmt);

/* Write the profile in `fmt`. Returns 0 or -errno (e.g. -EIO when the stream failed; -ENOTSUP
 * for AP_FORMAT_TRACE, which needs the GPU mode's timeline, not just a profile). */
int ap_format_write(const struct ap_profile *p, enum ap_format fmt, FILE *out,
		    const struct ap_write_opts *opts);

int ap_write_folded(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts);
int ap_write_svg(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts);
int ap_write_pprof(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts);
int ap_write_json(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts);
/* ap_write_json() without the document's closing brace: a mode that adds top-level members of
 * its own (the GPU mode's "gpu") writes `,\n  "key": value` for each, then "}\n". */
void ap_write_json_open(const struct ap_profile *p, FILE *out);
int ap_write_text(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts);

/*
 * Limits every reader and writer agree on, so that a profile one of them writes is one the
 * readers accept (a stack the writer would emit deeper than the reader takes is cut, and
 * counted, when written).
 */
/* Frames in one stack (after expanding inlined pprof lines). */
#define AP_FORMAT_MAX_STACK_DEPTH 65536
/* Bytes `aperture report` reads from a file or stdin, and bytes a gzipped profile may inflate
 * to, unless the caller raises them (report --max-size). */
#define AP_FORMAT_MAX_INPUT (1ULL << 30)
#define AP_FORMAT_MAX_INFLATED (256ULL << 20)
/* Longest function name the text table prints; longer ones end in "..." (UTF-8 "…"). */
#define AP_FORMAT_MAX_TEXT_NAME 512

struct ap_read_limits {
	uint64_t max_input;    /* bytes read from the file; 0 = AP_FORMAT_MAX_INPUT */
	uint64_t max_inflated; /* bytes a gzip stream may inflate to; 0 = AP_FORMAT_MAX_INFLATED */
};

/* Readers fill an empty profile. On failure they return -EINVAL (bad data) or -ENOMEM and
 * write a human reason (with a line number or byte offset) into err. */
int ap_read_folded(FILE *in, struct ap_profile *p, char *err, size_t errlen);
/* buf holds a pprof profile, gzipped or not (inflating to at most AP_FORMAT_MAX_INFLATED). */
int ap_read_pprof(const void *buf, size_t len, struct ap_profile *p, char *err, size_t errlen);
/* Same, with a caller-chosen cap on the inflated size (0 = the default); a stream that
 * inflates beyond it fails with -EFBIG. */
int ap_read_pprof_limited(const void *buf, size_t len, uint64_t max_inflated,
			  struct ap_profile *p, char *err, size_t errlen);
/* buf holds an Aperture JSON profile (docs/json-format.md), as ap_write_json() writes it.
 * Parsing may take up to max_mem bytes (0 = AP_FORMAT_MAX_INFLATED); a larger document fails
 * with -EFBIG. */
int ap_read_json(const char *buf, size_t len, uint64_t max_mem, struct ap_profile *p, char *err,
		 size_t errlen);
/* Reads a file ("-" = stdin), detecting pprof (gzip magic or protobuf), Aperture JSON and
 * folded text; other formats (SVG, ...) fail with a message naming the accepted ones. Only a
 * regular file, a pipe or stdin is read, and at most limits->max_input bytes (-EFBIG).
 * limits may be NULL (defaults). */
int ap_read_profile_file(const char *path, struct ap_profile **out, char *err, size_t errlen);
int ap_read_profile_file_limited(const char *path, const struct ap_read_limits *limits,
				 struct ap_profile **out, char *err, size_t errlen);

/* Display name of a frame as used in folded/svg/text: the function name, kernel frames
 * suffixed "_[k]", unresolved frames as "[unknown] (module)". Writes into buf, returns buf. */
const char *ap_frame_display_name(const struct ap_profile *p, uint32_t frame_id, char *buf,
				  size_t len);

/*
 * Helpers shared by the writers (folded, svg, json, text).
 */

/* Like ap_frame_display_name() but never truncates. Caller frees; NULL with errno on ENOMEM. */
char *ap_frame_display_dup(const struct ap_profile *p, uint32_t frame_id);

/* The value index that weights output: opts->value_index, or the last value type when it is
 * negative (or opts is NULL). Returns the index (0 when the profile has no value types) or
 * -EINVAL when it names no value type. */
int ap_format_value_index(const struct ap_profile *p, const struct ap_write_opts *opts);

/* Length (1-4) of the valid UTF-8 sequence at s (n bytes available), or 0 when the bytes at s
 * are not valid UTF-8 (overlong, surrogate, truncated, > U+10FFFF). */
size_t ap_utf8_seq_len(const char *s, size_t n);

/* A byte count for messages: "256 MiB", "1 GiB", "100 KiB", "512 bytes" (rounded down to
 * the largest unit it fills). Returns buf. */
const char *ap_format_size(uint64_t v, char *buf, size_t len);

/* a + b, or UINT64_MAX where that would wrap: the writers' sums over samples saturate as the
 * model's merged values do (see AP_STAT_VALUES_SATURATED). */
static inline uint64_t ap_sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Writes s (NULL: "") as a JSON string: escaped, invalid UTF-8 as U+FFFD. */
void ap_format_json_str(FILE *out, const char *s);

/* v with thousands separators ("1,234,567") into buf. Returns buf. */
const char *ap_format_count(uint64_t v, char *buf, size_t len);

#endif
